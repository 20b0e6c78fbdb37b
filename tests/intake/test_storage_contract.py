"""One contract suite for object stores, run against the in-memory fake and against the real MinIO."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from intake.settings import Settings
from intake.storage import MemoryStore, MinioStore, ObjectStore, build_store

BUCKET = "intake-status"


@pytest.fixture(params=["memory", pytest.param("minio", marks=pytest.mark.integration)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ObjectStore]:
    if request.param == "memory":
        fake = MemoryStore()
        await fake.ensure_buckets([BUCKET, "intake-ktp"])
        yield fake
    else:
        settings: Settings = request.getfixturevalue("live_settings")
        real: MinioStore = build_store(settings)
        try:
            await real.ensure_buckets([BUCKET, "intake-ktp"])
            yield real
        finally:
            real.close()


def _key(name: str) -> str:
    return f"contract/{uuid.uuid4().hex}/{name}"


async def test_put_then_get(store: ObjectStore) -> None:
    key = _key("a.json")
    await store.put(BUCKET, key, b'{"x":1}', "application/json")
    got = await store.get(BUCKET, key)
    assert got is not None
    assert got.data == b'{"x":1}'
    assert got.content_type == "application/json"


async def test_missing_is_none(store: ObjectStore) -> None:
    assert await store.get(BUCKET, _key("missing")) is None


async def test_put_is_idempotent(store: ObjectStore) -> None:
    key = _key("same")
    for _ in range(3):
        await store.put(BUCKET, key, b"same bytes", "application/octet-stream")
    prefix = key.rsplit("/", 1)[0] + "/"
    assert await store.list_keys(BUCKET, prefix) == [key]


async def test_overwrite_replaces(store: ObjectStore) -> None:
    key = _key("v")
    await store.put(BUCKET, key, b"one", "text/plain")
    await store.put(BUCKET, key, b"two", "text/plain")
    got = await store.get(BUCKET, key)
    assert got is not None and got.data == b"two"


async def test_delete(store: ObjectStore) -> None:
    key = _key("d")
    await store.put(BUCKET, key, b"x", "text/plain")
    await store.delete(BUCKET, key)
    assert await store.get(BUCKET, key) is None
    await store.delete(BUCKET, key)  # deleting again is not an error


async def test_list_by_prefix(store: ObjectStore) -> None:
    base = f"contract/{uuid.uuid4().hex}/"
    for name in ("b", "a", "c/d"):
        await store.put(BUCKET, base + name, b"x", "text/plain")
    assert await store.list_keys(BUCKET, base) == [base + "a", base + "b", base + "c/d"]


async def test_binary_round_trip(store: ObjectStore) -> None:
    key = _key("bin")
    data = bytes(range(256)) * 4096
    await store.put(BUCKET, key, data, "image/jpeg")
    got = await store.get(BUCKET, key)
    assert got is not None and got.data == data


async def test_ensure_buckets_is_idempotent(store: ObjectStore) -> None:
    """Ensuring buckets that exist (also one named twice) keeps them and what they hold, and they stay usable."""
    kept, added = _key("kept"), _key("added")
    await store.put(BUCKET, kept, b"before", "text/plain")
    await store.ensure_buckets([BUCKET, BUCKET])
    await store.ensure_buckets([BUCKET])
    await store.put(BUCKET, added, b"after", "text/plain")
    got = [await store.get(BUCKET, key) for key in (kept, added)]
    assert [g.data if g else None for g in got] == [b"before", b"after"]


async def test_put_if_absent_creates_once(store: ObjectStore) -> None:
    key = _key("claim")
    assert await store.put_if_absent(BUCKET, key, b"first", "application/json") is True
    assert await store.put_if_absent(BUCKET, key, b"second", "application/json") is False
    got = await store.get(BUCKET, key)
    assert got is not None and got.data == b"first"


async def test_put_if_absent_concurrent_has_one_winner(store: ObjectStore) -> None:
    import asyncio

    key = _key("race")
    results = await asyncio.gather(*(store.put_if_absent(BUCKET, key, b"%d" % i, "text/plain") for i in range(8)))
    assert sorted(results) == [False] * 7 + [True]
    got = await store.get(BUCKET, key)
    assert got is not None and got.data == b"%d" % results.index(True)
