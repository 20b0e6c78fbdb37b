"""Envelope encryption: sealing, KEK parsing and rotation, per-applicant keys and their cache, crypto-shredding."""

from __future__ import annotations

import asyncio
import base64
import json
import pickle

import pytest

from intake.crypto import (
    OVERHEAD,
    CryptoError,
    KeyCache,
    KeyDestroyed,
    KeyRing,
    KeyStore,
    key_object,
    new_kek_entry,
    open_sealed,
    parse_keks,
    seal,
    seal_into,
    unwrap,
    wrap,
)
from intake.settings import SettingsError, load_settings
from intake.storage import MemoryStore
from processors.screening import nik_hash_hex
from tests.intake.test_settings import ENV
from tests.support import TEST_PEPPER, make_registration

KEY = b"\x01" * 32
APPLICANT = nik_hash_hex(make_registration()["nik"], TEST_PEPPER.encode())
BUCKET = "intake-keys"


def ring(*kids: str) -> KeyRing:
    return parse_keks(",".join(new_kek_entry(k) for k in kids))


async def keystore(r: KeyRing) -> tuple[MemoryStore, KeyStore]:
    store = MemoryStore()
    await store.ensure_buckets([BUCKET])
    return store, KeyStore(store, BUCKET, r)


def test_seal_round_trips_and_hides_the_plaintext() -> None:
    plaintext = make_registration()["nik"].encode()
    sealed = seal(KEY, plaintext, b"sub-1|registration")
    assert plaintext not in sealed
    assert seal(KEY, plaintext, b"sub-1|registration") != sealed  # a fresh nonce each time
    assert open_sealed(KEY, sealed, b"sub-1|registration") == plaintext


@pytest.mark.parametrize("change", ["key", "aad", "bit", "truncate", "magic"])
def test_open_refuses_anything_altered(change: str) -> None:
    sealed: bytes | bytearray = seal(KEY, b"photo bytes", b"sub-1|photo")
    key, aad = KEY, b"sub-1|photo"
    if change == "key":
        key = b"\x02" * 32
    elif change == "aad":
        aad = b"sub-2|photo"  # moved to another record
    elif change == "bit":
        sealed = sealed[:-1] + bytes([sealed[-1] ^ 1])
    elif change == "truncate":
        sealed = sealed[:20]
    else:
        sealed = b"XXX" + sealed[3:]
    with pytest.raises(CryptoError) as refused:
        open_sealed(key, sealed, aad)
    assert "photo bytes" not in str(refused.value)


def test_parse_keks_first_is_active_and_errors_name_no_key() -> None:
    r = ring("k2", "k1")
    assert [k.kid for k in r.keks] == ["k2", "k1"] and r.active.kid == "k2"
    assert base64.b64encode(r.active.key).decode() not in repr(r)
    short = f"k1:{base64.b64encode(b'x' * 16).decode()}"
    for bad, message in [
        ("", "no key"),
        ("k1", "expected kid"),
        ("k 1:AAAA", "expected kid"),
        ("k1:not base64!", "not base64"),
        (short, "32 bytes"),
        (f"{new_kek_entry('k1')},{new_kek_entry('k1')}", "twice"),
    ]:
        with pytest.raises(CryptoError, match=message) as refused:
            parse_keks(bad)
        assert "eHh4" not in str(refused.value)  # base64 of the short key's bytes


def test_settings_validate_the_keks() -> None:
    assert load_settings({**ENV, "INTAKE_DATA_KEKS": new_kek_entry("k1")}).security.data_keks
    with pytest.raises(SettingsError, match="INTAKE_DATA_KEKS"):
        load_settings({**ENV, "INTAKE_DATA_KEKS": "k1:short"})


def test_wrapped_key_is_bound_to_its_applicant() -> None:
    r = ring("k1")
    stored = wrap(r, APPLICANT, KEY)
    assert unwrap(r, APPLICANT, stored) == (KEY, "k1")
    with pytest.raises(CryptoError):
        unwrap(r, "0" * 64, stored)  # another applicant's slot
    with pytest.raises(CryptoError, match="unknown key-encryption key"):
        unwrap(ring("k9"), APPLICANT, stored)
    with pytest.raises(CryptoError):
        unwrap(r, APPLICANT, b"{}")


@pytest.mark.parametrize("kid", ["k1", "Kek_2026.11-a", "x" * 32])
def test_a_wrapped_key_is_the_json_of_a_sealed_key_as_json_dumps_writes_it(kid: str) -> None:
    r = ring(kid)
    stored = wrap(r, APPLICANT, KEY)
    data = json.loads(stored)
    assert stored == json.dumps(data).encode()  # the stored form is byte-for-byte what json.dumps writes
    assert set(data) == {"v", "kek", "dek"} and data["v"] == 1 and data["kek"] == kid
    sealed = base64.b64decode(data["dek"], validate=True)
    assert len(sealed) == OVERHEAD + len(KEY)
    aad = f"intake-dek/v1|{APPLICANT}|{kid}".encode()  # the layout of seal(): open_sealed reads it
    assert open_sealed(r.active.key, sealed, aad) == KEY
    assert wrap(r, APPLICANT, KEY) != stored  # a fresh nonce each time


def test_a_key_ring_stays_a_plain_value() -> None:
    r = ring("k1", "k2")
    wrap(r, APPLICANT, KEY)  # the wrap's cached cipher is not kept on the ring
    assert pickle.loads(pickle.dumps(r)) == r


async def test_one_key_per_applicant_across_concurrent_callers() -> None:
    store, keys = await keystore(ring("k1"))
    got = await asyncio.gather(*(keys.get_or_create(APPLICANT) for _ in range(8)))
    assert len(set(got)) == 1 and len(got[0]) == 32
    assert await keys.get(APPLICANT) == got[0]
    assert [k for _, k in store.objects] == [key_object(APPLICANT)]
    assert got[0] not in store.objects[(BUCKET, key_object(APPLICANT))].data  # stored wrapped only


async def test_destroy_makes_sealed_values_unreadable_for_good() -> None:
    _, keys = await keystore(ring("k1"))
    dek = await keys.get_or_create(APPLICANT)
    sealed = seal(dek, b"registration", b"sub-1")
    assert await keys.destroy(APPLICANT) is True
    assert await keys.get(APPLICANT) is None
    with pytest.raises(KeyDestroyed):
        await keys.require(APPLICANT)
    assert await keys.destroy(APPLICANT) is False  # idempotent
    fresh = await keys.get_or_create(APPLICANT)  # a later submission gets a new key, never the old one
    with pytest.raises(CryptoError):
        open_sealed(fresh, sealed, b"sub-1")


async def test_rotation_rewraps_under_the_new_kek() -> None:
    old = ring("k1")
    store, keys = await keystore(old)
    dek = await keys.get_or_create(APPLICANT)
    rotated = KeyRing((*ring("k2").keks, *old.keks))  # the new key first, the old one still unwraps
    keys2 = KeyStore(store, BUCKET, rotated)
    assert await keys2.get(APPLICANT) == dek
    assert await keys2.rewrap(APPLICANT) == "rewrapped"
    assert await keys2.rewrap(APPLICANT) == "current"
    assert await keys2.rewrap("0" * 64) == "gone"  # never had a key (or erased): nothing is written
    assert [k for _, k in store.objects] == [key_object(APPLICANT)]
    only_new = KeyStore(store, BUCKET, KeyRing(rotated.keks[:1]))  # the old KEK removed after the rewrap
    assert await only_new.get(APPLICANT) == dek


def test_key_object_carries_the_keyed_hash_never_a_nik() -> None:
    assert key_object(APPLICANT) == f"keys/{APPLICANT}.json"
    with pytest.raises(ValueError, match="keyed NIK hash"):
        key_object(make_registration()["nik"])


def test_seal_into_writes_a_slice_and_refuses_a_wrong_size() -> None:
    buf = bytearray(4 + OVERHEAD + 5)
    seal_into(KEY, b"hello", b"ctx", memoryview(buf)[4:])
    assert open_sealed(KEY, bytes(buf[4:]), b"ctx") == b"hello"
    with pytest.raises(ValueError, match="wrong size"):
        seal_into(KEY, b"hello", b"ctx", memoryview(buf))


def test_key_cache_forgets_after_its_ttl_and_beyond_its_size() -> None:
    now = [0.0]
    cache = KeyCache(2, 10.0, clock=lambda: now[0])
    cache.put("a", b"A")
    cache.put("b", b"B")
    assert cache.get("a") == b"A"  # a is now the most recently used
    cache.put("c", b"C")  # drops b, the least recently used
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"A", None, b"C")
    now[0] = 10.0
    assert cache.get("a") is None and len(cache) == 1  # expired: an erasure elsewhere is honoured within the TTL
    off = KeyCache(0, 10.0)
    off.put("a", b"A")
    assert off.get("a") is None
