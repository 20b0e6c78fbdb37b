"""Rotating the key-encryption key over the in-memory store: every key rewrapped once, page by page and a window at
a time, resumable, never bringing back a key an erasure destroyed; the census that says when an old KEK may go."""

from __future__ import annotations

import hashlib

import pytest

from intake.crypto import KeyRing, KeyStore, key_object, new_kek_entry, parse_keks, unwrap, wrap
from intake.key_rotation import LIST_PAGE, KeyCensus, census, rotate_keys
from intake.settings import SettingsError, load_settings
from intake.storage import MemoryStore, StorageUnavailable, StoredObject, StoreUnfit
from intake.store_probe import probe_conditional_replace
from tests.intake.test_settings import ENV
from tests.store_doubles import IgnoresIfMatch

BUCKET = "intake-keys"
OLD, NEW = parse_keks(new_kek_entry("k1")), parse_keks(new_kek_entry("k2"))
BOTH = KeyRing((*NEW.keks, *OLD.keks))  # the new KEK first, the old one still unwraps


def applicant(n: int) -> str:
    return hashlib.sha256(b"applicant %d" % n).hexdigest()


class Spy(MemoryStore):
    """Records the listing calls and the most reads in flight at once; refuses a whole-bucket listing."""

    def __init__(self) -> None:
        super().__init__()
        self.pages: list[tuple[str, int]] = []
        self.in_flight = self.most_in_flight = 0

    async def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        raise AssertionError("a rotation never lists the whole bucket at once")

    async def list_page(self, bucket: str, prefix: str, start_after: str, limit: int) -> list[str]:
        self.pages.append((start_after, limit))
        return await super().list_page(bucket, prefix, start_after, limit)

    async def get(self, bucket: str, key: str) -> StoredObject | None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await super().get(bucket, key)
        finally:
            self.in_flight -= 1


async def stored_keys(store: MemoryStore, ring: KeyRing, count: int, first: int = 0) -> dict[str, bytes]:
    """``count`` applicants' data keys, created under ``ring``; their DEKs by applicant."""
    await store.ensure_buckets([BUCKET])
    keys = KeyStore(store, BUCKET, ring)
    return {applicant(n): await keys.get_or_create(applicant(n)) for n in range(first, first + count)}


async def test_rotation_rewraps_every_key_page_by_page_and_a_rerun_skips_them() -> None:
    store = Spy()
    deks = await stored_keys(store, OLD, LIST_PAGE + 150)
    deks |= await stored_keys(store, NEW, 40, first=10_000)  # created after the new KEK was deployed
    before = await census(store, BUCKET, BOTH, 8)
    assert (before.by_kek, before.to_rewrap, before.removable) == ({"k2": 40, "k1": LIST_PAGE + 150}, 1150, [])
    seen: list[int] = []
    summary = await rotate_keys(store, BUCKET, BOTH, 8, lambda s: seen.append(s.scanned))
    assert (summary.scanned, summary.rewrapped, summary.current, summary.gone, summary.failed) == (
        LIST_PAGE + 190,
        LIST_PAGE + 150,
        40,
        0,
        0,
    )
    assert [after for after, _ in store.pages][:2] == ["", sorted(key_object(a) for a in deks)[LIST_PAGE - 1]]
    assert {limit for _, limit in store.pages} == {LIST_PAGE}
    assert store.most_in_flight <= 8 and seen == sorted(seen) and seen[-1] == LIST_PAGE + 190
    again = await rotate_keys(store, BUCKET, BOTH, 8)
    assert (again.rewrapped, again.current) == (0, LIST_PAGE + 190)  # resumable: what is done is skipped
    after = await census(store, BUCKET, BOTH, 8)
    assert (after.by_kek, after.to_rewrap, after.removable) == ({"k2": LIST_PAGE + 190, "k1": 0}, 0, ["k1"])
    only_new = KeyStore(store, BUCKET, NEW)  # the old entry removed: every key still gives the same DEK
    assert {a: await only_new.get(a) for a in deks} == deks


async def test_a_key_that_does_not_unwrap_is_counted_and_named_and_the_rest_goes_on() -> None:
    store = MemoryStore()
    await stored_keys(store, OLD, 5)
    lost = applicant(99)
    await store.put(BUCKET, key_object(lost), wrap(parse_keks(new_kek_entry("k0")), lost, b"\0" * 32), "x")
    await store.put(BUCKET, "keys/notes.txt", b"not a key", "text/plain")
    summary = await rotate_keys(store, BUCKET, BOTH, 3)
    assert (summary.rewrapped, summary.failed) == (5, 2)
    assert any(f.startswith(f"keys/{lost[:16]}…: ") and "unknown key-encryption key" in f for f in summary.failures)
    assert all(lost not in f for f in summary.failures)  # a prefix of the keyed hash, never the whole
    counted = await census(store, BUCKET, BOTH, 3)
    assert (counted.by_kek, counted.unknown, counted.unreadable) == ({"k2": 5, "k1": 0, "k0": 1}, 1, 1)


class ErasedMidway(MemoryStore):
    """An erasure (or an erasure and a new upload) of ``target`` lands between a rewrap's read and its write."""

    def __init__(self, target: str, recreate: bool) -> None:
        super().__init__()
        self.target, self.recreate = target, recreate

    async def get(self, bucket: str, key: str) -> StoredObject | None:
        read = await super().get(bucket, key)
        if key == key_object(self.target) and read is not None:
            self.objects.pop((bucket, key))  # intake erase destroys the key
            if self.recreate:  # ... and a later upload of the same NIK gets a fresh key
                await self.put(bucket, key, wrap(NEW, self.target, b"\1" * 32), "application/json")
        return read


@pytest.mark.parametrize("recreate", [False, True])
async def test_a_rotation_never_brings_back_a_key_an_erasure_destroyed(recreate: bool) -> None:
    target = applicant(2)
    store = ErasedMidway(target, recreate)
    await stored_keys(store, OLD, 4)
    summary = await rotate_keys(store, BUCKET, BOTH, 2)
    assert (summary.rewrapped, summary.gone) == (3, 1)
    left = store.objects.get((BUCKET, key_object(target)))
    if recreate:
        assert left is not None and unwrap(BOTH, target, left.data) == (b"\1" * 32, "k2")  # the fresh key, untouched
    else:
        assert left is None  # still destroyed


async def test_a_store_that_fails_propagates_and_a_rerun_finishes() -> None:
    store = MemoryStore()
    await stored_keys(store, OLD, 6)
    store.fail_next = 1
    with pytest.raises(StorageUnavailable):
        await rotate_keys(store, BUCKET, BOTH, 2)
    assert (await rotate_keys(store, BUCKET, BOTH, 2)).rewrapped == 6


async def test_the_conditional_replace_probe_passes_a_store_that_honours_if_match_only() -> None:
    good, bad = MemoryStore(), IgnoresIfMatch()
    for store in (good, bad):
        await store.ensure_buckets([BUCKET])
    await probe_conditional_replace(good, BUCKET)
    assert good.objects == {}  # leaves nothing behind
    with pytest.raises(StoreUnfit, match="If-Match"):
        await probe_conditional_replace(bad, BUCKET)
    assert bad.objects == {}


def test_census_names_removable_keks_only_when_nothing_is_left_under_them() -> None:
    c = KeyCensus("k3", ("k3", "k2", "k1"), {"k3": 4, "k2": 1, "k1": 0})
    assert (c.to_rewrap, c.unknown, c.removable) == (1, 0, ["k1"])


def test_the_rotation_window_is_a_validated_setting() -> None:
    assert load_settings(ENV).security.key_rotation_window == 32
    with pytest.raises(SettingsError, match="INTAKE_KEY_ROTATION_WINDOW"):
        load_settings({**ENV, "INTAKE_KEY_ROTATION_WINDOW": "0"})
