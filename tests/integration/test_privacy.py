"""Privacy on the real parts: images and data keys encrypted at rest and private, no NIK in object keys, erasure on
request (see also test_sealed_kafka.py: personal data sealed in Kafka, crypto-shredding)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from minio import Minio
from minio.versioningconfig import VersioningConfig

from intake.crypto import key_object
from intake.settings import Settings, to_environ
from intake.status import claim_key, photo_key, status_key
from intake.storage import MinioStore, StoreUnfit
from intake.store_probe import probe_store
from processors.screening import nik_hash_hex
from tests.conftest import ON_EVERY_S3_BACKEND
from tests.corpus.ktp import SceneSpec, encode, scene
from tests.integration.conftest import Consumers, wait_until
from tests.support import make_registration, multipart

pytestmark = [pytest.mark.integration, ON_EVERY_S3_BACKEND]


async def _processed(api: TestClient[Any, Any], consumers: Consumers) -> tuple[dict[str, Any], dict[str, Any]]:
    reg = make_registration()
    resp = await api.post("/v1/registrations", data=multipart(reg, encode(scene(SceneSpec(seed=21)))))
    accepted = await resp.json()
    assert resp.status == 202, accepted
    consumers.start()
    auth = {"Authorization": f"Bearer {accepted['status_token']}"}

    async def eligible() -> bool:
        body = await (await api.get(accepted["status_url"], headers=auth)).json()
        return bool(body["state"] == "eligible")

    await wait_until(eligible, 90, "the submission to be processed")
    return reg, accepted


async def test_objects_are_encrypted_at_rest_and_private(
    api: TestClient[Any, Any], consumers: Consumers, minio_store: MinioStore, topics_ready: Settings
) -> None:
    """Every object the pipeline wrote, in both buckets (images, status record, claim), reads back encrypted
    (the server's ``x-amz-server-side-encryption``), and an anonymous read of each is refused."""
    reg, accepted = await _processed(api, consumers)
    sid, s3 = accepted["submission_id"], topics_ready.s3
    digest = nik_hash_hex(reg["nik"], topics_ready.security.nik_pepper.encode())
    written = [
        (s3.bucket_photos, photo_key(sid, "card")),
        (s3.bucket_photos, photo_key(sid, "frame")),
        (s3.bucket_status, status_key(sid)),
        (s3.bucket_status, claim_key(topics_ready.wave.number, digest)),
        (s3.bucket_keys, key_object(digest)),  # the applicant's data key, wrapped, encrypted at rest again
    ]
    for bucket, key in written:
        assert await minio_store.server_side_encryption(bucket, key) == "AES256", (bucket, key)
        url = f"http://{s3.endpoint}/{bucket}/{key}"
        with pytest.raises(urllib.error.HTTPError) as denied:
            await asyncio.to_thread(urllib.request.urlopen, url, timeout=5)  # anonymous, on purpose
        assert denied.value.code == 403, (bucket, key)
        denied.value.close()


async def test_no_nik_in_any_object_key(
    api: TestClient[Any, Any], consumers: Consumers, minio_store: MinioStore, topics_ready: Settings
) -> None:
    reg, _ = await _processed(api, consumers)
    keys = [
        *await minio_store.list_keys(topics_ready.s3.bucket_photos),
        *await minio_store.list_keys(topics_ready.s3.bucket_status),
        *await minio_store.list_keys(topics_ready.s3.bucket_registrations),
        *await minio_store.list_keys(topics_ready.s3.bucket_keys),
    ]
    assert keys
    assert not [k for k in keys if reg["nik"] in k or re.search(r"(?<![0-9a-f])\d{16}(?![0-9a-f])", k)]


async def test_erase_removes_everything(
    api: TestClient[Any, Any], consumers: Consumers, minio_store: MinioStore, topics_ready: Settings
) -> None:
    reg, accepted = await _processed(api, consumers)
    sid = accepted["submission_id"]
    env = {**os.environ, **to_environ(topics_ready)}
    done = await asyncio.to_thread(_erase_cli, reg["nik"], env)
    assert reg["nik"] not in done.stdout + done.stderr
    assert sid in done.stdout
    s3 = topics_ready.s3
    assert await minio_store.get(s3.bucket_photos, photo_key(sid, "card")) is None
    assert await minio_store.get(s3.bucket_photos, photo_key(sid, "frame")) is None
    digest = nik_hash_hex(reg["nik"], topics_ready.security.nik_pepper.encode())
    assert await minio_store.get(s3.bucket_status, claim_key(topics_ready.wave.number, digest)) is None
    assert await minio_store.list_keys(s3.bucket_status, f"applicants/{digest}/") == []
    assert await minio_store.get(s3.bucket_keys, key_object(digest)) is None  # crypto-shredded
    status = await (
        await api.get(accepted["status_url"], headers={"Authorization": f"Bearer {accepted['status_token']}"})
    ).json()
    assert status["state"] == "erased"
    assert status["objects"] == {} and status["facts"] == {}


def _erase_cli(nik: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``intake erase`` with the NIK on standard input, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "cli", "erase"],
        input=nik + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


async def test_a_versioned_keys_bucket_is_refused(live_settings: Settings, minio_store: MinioStore) -> None:
    """Under versioning a data key deleted by an erasure survives as an older version, so crypto-shredding would
    shred nothing: the start-up probe refuses a keys bucket that has (or had: suspended) versioning."""
    s3 = live_settings.s3
    bucket = f"{s3.bucket_keys}-ver-{uuid.uuid4().hex[:8]}"
    await minio_store.ensure_buckets([bucket])
    await probe_store(minio_store, [bucket], encrypt=True, unversioned=[bucket])  # never versioned: fit
    sdk = Minio(s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key, secure=s3.secure, region=s3.region)
    for status in ("Enabled", "Suspended"):
        await asyncio.to_thread(sdk.set_bucket_versioning, bucket, VersioningConfig(status))
        assert await minio_store.versioning(bucket) == status
        with pytest.raises(StoreUnfit, match=f"versioning {status}"):
            await probe_store(minio_store, [bucket], encrypt=True, unversioned=[bucket])
