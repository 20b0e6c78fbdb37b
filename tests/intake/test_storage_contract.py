"""One contract suite for object stores, run against the in-memory fake and against every real S3 server we claim
(MinIO and SeaweedFS, from the local stack; they fail, never skip, when the stack does not run them)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest

from intake.storage import BucketMissing, MemoryStore, MinioStore, ObjectStore, StorageUnavailable, build_store
from intake.store_probe import probe_store
from tests.conftest import S3_BACKENDS, stack_settings

BUCKET = "intake-status"
BUCKETS = [BUCKET, "intake-ktp"]
RACERS = 32


@pytest.fixture(params=["memory", *(pytest.param(backend, marks=pytest.mark.integration) for backend in S3_BACKENDS)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ObjectStore]:
    if request.param == "memory":
        fake = MemoryStore()
        await fake.ensure_buckets(BUCKETS)
        yield fake
    else:
        settings = stack_settings(request.param)
        real: MinioStore = build_store(replace(settings, s3=replace(settings.s3, io_threads=RACERS)))
        try:
            await real.ensure_buckets(BUCKETS)
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


async def test_list_page_walks_a_prefix_in_key_order(store: ObjectStore) -> None:
    """Pages of at most ``limit`` keys, each starting after the last key of the one before, cover the prefix
    exactly once; keys outside the prefix never show."""
    base = f"contract/{uuid.uuid4().hex}/"
    names = [f"{base}k{i:02d}" for i in range(7)]
    for name in reversed(names):
        await store.put(BUCKET, name, b"x", "text/plain")
    await store.put(BUCKET, base[:-1] + "-beside", b"x", "text/plain")  # sorts after the prefix, not under it
    pages, after = [], ""
    while True:
        page = await store.list_page(BUCKET, base, after, 3)
        pages.append(page)
        if len(page) < 3:
            break
        after = page[-1]
    assert pages == [names[0:3], names[3:6], names[6:7]]
    assert await store.list_page(BUCKET, base, names[-1], 3) == []


async def test_put_if_match_replaces_only_the_version_read(store: ObjectStore) -> None:
    """A conditional replace with the ETag of the version read wins once; a stale ETag and a deleted object
    refuse, and a deleted object is never re-created."""
    key = _key("versioned")
    await store.put(BUCKET, key, b"one", "application/json")
    first = await store.get(BUCKET, key)
    assert first is not None and first.etag
    assert await store.put_if_match(BUCKET, key, b"two", "application/json", first.etag) is True
    second = await store.get(BUCKET, key)
    assert second is not None and second.data == b"two" and second.etag and second.etag != first.etag
    assert await store.put_if_match(BUCKET, key, b"three", "application/json", first.etag) is False  # stale
    got = await store.get(BUCKET, key)
    assert got is not None and got.data == b"two"
    await store.delete(BUCKET, key)
    assert await store.put_if_match(BUCKET, key, b"four", "application/json", second.etag) is False
    assert await store.get(BUCKET, key) is None


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
    """32 concurrent creates of one key (the real stores get 32 I/O threads, so all 32 requests are in flight at
    once): exactly one wins, and the stored object is the winner's."""
    key = _key("race")
    racers = (store.put_if_absent(BUCKET, key, b"%d" % i, "text/plain") for i in range(RACERS))
    results = await asyncio.gather(*racers)
    assert sorted(results) == [False] * (RACERS - 1) + [True]
    got = await store.get(BUCKET, key)
    assert got is not None and got.data == b"%d" % results.index(True)


@pytest.mark.parametrize("bucket", BUCKETS)
async def test_objects_read_back_encrypted(store: ObjectStore, bucket: str) -> None:
    """Every bucket the service ensures encrypts by default: the server reports SSE on a plain put and on a
    conditional create, and nothing for a missing object."""
    plain, claimed = _key("plain"), _key("claimed")
    await store.put(bucket, plain, b"x", "text/plain")
    assert await store.put_if_absent(bucket, claimed, b"y", "text/plain")
    assert await store.server_side_encryption(bucket, plain) == "AES256"
    assert await store.server_side_encryption(bucket, claimed) == "AES256"
    assert await store.server_side_encryption(bucket, _key("missing")) is None


async def test_missing_bucket_is_bucket_missing_everywhere(store: ObjectStore) -> None:
    """Every call on a bucket that does not exist raises BucketMissing, a retryable StorageUnavailable."""
    absent = f"absent-{uuid.uuid4().hex[:12]}"
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "put": lambda: store.put(absent, "k", b"x", "text/plain"),
        "put_if_absent": lambda: store.put_if_absent(absent, "k", b"x", "text/plain"),
        "get": lambda: store.get(absent, "k"),
        "delete": lambda: store.delete(absent, "k"),
        "list_keys": lambda: store.list_keys(absent),
        "list_page": lambda: store.list_page(absent, "", "", 10),
        "put_if_match": lambda: store.put_if_match(absent, "k", b"x", "text/plain", '"0"'),
        "versioning": lambda: store.versioning(absent),
    }
    for name, call in calls.items():
        with pytest.raises(BucketMissing) as raised:
            await call()
        assert isinstance(raised.value, StorageUnavailable), name


async def test_a_bucket_never_versioned_says_so(store: ObjectStore) -> None:
    """What the probe of the keys bucket reads: None for a bucket whose versioning was never turned on."""
    assert await store.versioning(BUCKET) is None


async def test_the_start_up_probe_passes(store: ObjectStore) -> None:
    """The probe the API and consumers run at start accepts this store, and leaves nothing behind."""
    await probe_store(store, BUCKETS, encrypt=True, unversioned=BUCKETS)
    for bucket in BUCKETS:
        assert await store.list_keys(bucket, "_probe/") == []
