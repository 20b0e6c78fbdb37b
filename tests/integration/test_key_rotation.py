"""``intake keys rotate`` on every real S3 server: a census, the rotation (resumable, page by page), the census that
says the old KEK may go, and the race with an erasure on the real store (the conditional replace never brings a
destroyed key back)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from intake.crypto import KeyStore, key_object, new_kek_entry, parse_keks, wrap
from intake.settings import Settings, to_environ
from intake.storage import MinioStore, StoredObject, build_store
from processors.screening import nik_hash_hex
from tests.conftest import ON_EVERY_S3_BACKEND

pytestmark = [pytest.mark.integration, ON_EVERY_S3_BACKEND]

OLD, NEW = new_kek_entry("old"), new_kek_entry("new")


@pytest.fixture
async def keys_bucket(live_settings: Settings) -> AsyncIterator[tuple[Settings, MinioStore]]:
    """A keys bucket of its own (other tests' keys would change the counts), and the store; fails when the server
    does not answer."""
    s = live_settings
    settings = replace(
        s,
        s3=replace(s.s3, bucket_keys=f"{s.s3.bucket_keys}-rot-{uuid.uuid4().hex[:8]}"),
        security=replace(s.security, data_keks=f"{NEW},{OLD}", key_rotation_window=4),
    )
    store = build_store(settings)
    try:
        await asyncio.wait_for(store.ensure_buckets([settings.s3.bucket_keys]), 20)
    except Exception as exc:
        store.close()
        pytest.fail(f"the S3 server at {settings.s3.endpoint} is not reachable: {exc!r}")
    yield settings, store
    store.close()


def _rotate(settings: Settings, *args: str) -> tuple[int, dict[str, object], str]:
    """``intake keys rotate ARGS`` as an operator runs it: exit code, JSON summary, stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "cli", "keys", "rotate", *args],
        env={**os.environ, **to_environ(settings)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    summary = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, summary, done.stderr


class ErasedAfterRead:
    """The real store, where an erasure (``KeyStore.destroy``) of the key read lands before the rewrap writes."""

    def __init__(self, store: MinioStore, keys: KeyStore) -> None:
        self.store, self.keys = store, keys

    async def get(self, bucket: str, key: str) -> StoredObject | None:
        read = await self.store.get(bucket, key)
        await self.keys.destroy(key.removeprefix("keys/").removesuffix(".json"))
        return read

    async def put_if_match(self, bucket: str, key: str, data: bytes, content_type: str, etag: str) -> bool:
        return await self.store.put_if_match(bucket, key, data, content_type, etag)


async def test_rotation_moves_every_key_to_the_new_kek_and_the_check_says_when_the_old_one_may_go(
    keys_bucket: tuple[Settings, MinioStore],
) -> None:
    settings, store = keys_bucket
    bucket, both = settings.s3.bucket_keys, parse_keks(settings.security.data_keks)
    old, new = KeyStore(store, bucket, parse_keks(OLD)), KeyStore(store, bucket, parse_keks(NEW))
    applicants = [nik_hash_hex(f"31710157059{n:05d}", b"rotation test pepper") for n in range(26)]
    deks = {a: await old.get_or_create(a) for a in applicants[:23]}
    deks |= {a: await new.get_or_create(a) for a in applicants[23:]}

    code, counted, _ = await asyncio.to_thread(_rotate, settings, "--check")
    assert (code, counted["by_kek"], counted["to_rewrap"], counted["removable"]) == (3, {"new": 3, "old": 23}, 23, [])

    # An erasure between a rewrap's read and its write, on the real server: the key stays destroyed.
    erased = applicants[0]
    racing = KeyStore(ErasedAfterRead(store, KeyStore(store, bucket, both)), bucket, both)  # type: ignore[arg-type]
    assert await racing.rewrap(erased) == "gone"
    assert await store.get(bucket, key_object(erased)) is None
    del deks[erased]

    code, summary, err = await asyncio.to_thread(_rotate, settings)
    assert code == 0, err
    assert (summary["scanned"], summary["rewrapped"], summary["current"], summary["failed"]) == (25, 22, 3, 0)
    assert "25 key(s): 22 rewrapped" in err
    code, summary, err = await asyncio.to_thread(_rotate, settings)  # idempotent: a re-run skips what is done
    assert (code, summary["rewrapped"], summary["current"]) == (0, 0, 25), err
    code, counted, err = await asyncio.to_thread(_rotate, settings, "--check")
    assert (code, counted["by_kek"], counted["removable"]) == (0, {"new": 25, "old": 0}, ["old"]), err
    assert {a: await new.get(a) for a in deks} == deks  # the old KEK removed: every key opens with the new one

    # A key under a KEK nobody lists is counted and named, never rewrapped; both commands exit 4.
    lost = applicants[0]
    await store.put(bucket, key_object(lost), wrap(parse_keks(new_kek_entry("gone")), lost, b"\0" * 32), "x")
    code, summary, err = await asyncio.to_thread(_rotate, settings)
    assert (code, summary["failed"], summary["current"]) == (4, 1, 25) and f"keys/{lost[:16]}" in err
    code, counted, _ = await asyncio.to_thread(_rotate, settings, "--check")
    assert (code, counted["unknown"]) == (4, 1)
