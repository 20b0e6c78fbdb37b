"""The start-up probe accepts a store that honours conditional create and encrypts, and refuses the others."""

from __future__ import annotations

import pytest

from intake.storage import MemoryStore, StoreUnfit
from intake.store_probe import PROBE_PREFIX, probe_store
from tests.store_doubles import FailsWritesInto, IgnoresIfNoneMatch, IgnoresSse

BUCKETS = ["intake-ktp", "intake-status"]


async def _ready(store: MemoryStore) -> MemoryStore:
    await store.ensure_buckets(BUCKETS)
    return store


async def test_a_fit_store_passes_and_keeps_nothing() -> None:
    store = await _ready(MemoryStore())
    await probe_store(store, BUCKETS, encrypt=True)
    assert store.objects == {}


async def test_a_store_ignoring_if_none_match_is_refused() -> None:
    store = await _ready(IgnoresIfNoneMatch())
    with pytest.raises(StoreUnfit, match="If-None-Match") as refused:
        await probe_store(store, BUCKETS, encrypt=True)
    assert "'intake-ktp'" in str(refused.value)
    assert not [key for _, key in store.objects if key.startswith(PROBE_PREFIX)]


@pytest.mark.parametrize("bucket", BUCKETS)
async def test_a_store_ignoring_sse_in_either_bucket_is_refused(bucket: str) -> None:
    store = await _ready(IgnoresSse(bucket))
    with pytest.raises(StoreUnfit, match="unencrypted") as refused:
        await probe_store(store, BUCKETS, encrypt=True)
    assert repr(bucket) in str(refused.value)


async def test_sse_is_not_checked_when_encryption_is_off() -> None:
    """INTAKE_S3_ENCRYPT=false (a development store): conditional create is still required."""
    await probe_store(await _ready(IgnoresSse()), BUCKETS, encrypt=False)
    with pytest.raises(StoreUnfit):
        await probe_store(await _ready(IgnoresIfNoneMatch()), BUCKETS, encrypt=False)


async def test_a_store_failing_every_write_into_a_bucket_is_refused() -> None:
    store = await _ready(FailsWritesInto("intake-status"))
    with pytest.raises(StoreUnfit, match="failed 3 times") as refused:
        await probe_store(store, BUCKETS, encrypt=True)
    assert "'intake-status'" in str(refused.value)


async def test_one_transient_failure_is_retried() -> None:
    store = await _ready(MemoryStore())
    store.fail_next = 1
    await probe_store(store, BUCKETS, encrypt=True)


@pytest.mark.parametrize("status", ["Enabled", "Suspended"])
async def test_a_keys_bucket_that_has_or_had_versioning_is_refused(status: str) -> None:
    """Under versioning a destroyed data key survives as an older version: crypto-shredding would not shred."""
    store = await _ready(MemoryStore())
    await probe_store(store, BUCKETS, encrypt=True, unversioned=["intake-status"])
    store.versioned["intake-status"] = status
    await probe_store(store, BUCKETS, encrypt=True)  # only the buckets named unversioned are checked
    with pytest.raises(StoreUnfit, match=f"versioning {status}") as refused:
        await probe_store(store, BUCKETS, encrypt=True, unversioned=["intake-status"])
    assert "'intake-status'" in str(refused.value)
