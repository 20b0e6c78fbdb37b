"""Sealing at the edge: the API seals every record's personal data with the applicant's data key (kept in the key
store, cached in memory), answers 503 ``storage_unavailable`` at once when the key store fails or stalls, and
writes plaintext only when told to (development), saying so."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest

from ingest.sealing import EdgeKeys, KeysUnavailable
from intake.crypto import KeyCache, KeyDestroyed, KeyStore, parse_keks
from intake.envelope import Sealed, Submission, decode
from intake.metrics import build_metrics
from intake.settings import Settings
from intake.storage import MemoryStore, StorageUnavailable
from processors.screening import nik_hash_hex
from tests.ingest.conftest import Served
from tests.ingest.test_handlers import JPEG
from tests.support import TEST_PEPPER, FakeSink, key_store, make_registration, multipart, open_record, unit_settings

PERSONAL = ("nik", "full_name", "email", "birth_date", "ktp_address", "domicile_address", "phone")


def _security(**changes: Any) -> Settings:
    s = unit_settings()
    return replace(s, security=replace(s.security, **changes))


def _counts(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith("intake_data_keys_total{"):
            name, value = line.rsplit(" ", 1)
            out[name.split('"')[1]] = float(value)
    return out


async def test_every_personal_field_and_the_photo_are_sealed(
    served: Served, sink: FakeSink, store: MemoryStore
) -> None:
    client = await served()
    reg = make_registration()
    resp = await client.post("/v1/registrations", data=multipart(reg, JPEG))
    assert resp.status == 202
    _, key, value, _ = sink.records[0]
    for name in PERSONAL:
        assert str(reg[name]).encode() not in value, name
    assert JPEG[100:200] not in value
    envelope = decode(value)
    assert isinstance(envelope, Sealed) and key == envelope.nik_hash.encode()
    # The data key lives wrapped in the keys bucket, under the keyed hash: no NIK in any object key or body.
    assert [k for b, k in store.objects if b == "intake-keys"] == [f"keys/{envelope.nik_hash}.json"]
    assert reg["nik"].encode() not in store.objects[("intake-keys", f"keys/{envelope.nik_hash}.json")].data
    opened = await open_record(value, store)
    assert opened.registration["nik"] == reg["nik"] and opened.photo == JPEG


def _waits(text: str) -> float:
    """How many uploads waited for the key store (``intake_data_key_duration_seconds``)."""
    for line in text.splitlines():
        if line.startswith("intake_data_key_duration_seconds_count"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("intake_data_key_duration_seconds is not exposed")


async def test_resends_of_one_applicant_reuse_the_cached_key(
    served: Served, sink: FakeSink, store: MemoryStore
) -> None:
    client = await served()
    reg = make_registration()
    for _ in range(3):
        assert (await client.post("/v1/registrations", data=multipart(reg, JPEG))).status == 202
    puts = store.puts
    assert puts == 1  # one key created; the next two uploads found it in memory
    metrics = await (await client.get("/metrics")).text()
    assert _counts(metrics) == {"cached": 2, "stored": 1}
    assert _waits(metrics) == 1  # only the upload that went to the key store waited for it
    values = [v for _, _, v, _ in sink.records]
    assert len({bytes(v) for v in values}) == 3  # fresh nonces: no two records alike
    for v in values:
        assert (await open_record(v, store)).registration["nik"] == reg["nik"]


async def test_a_failing_key_store_answers_503_at_once_and_queues_nothing(
    served: Served, sink: FakeSink, store: MemoryStore
) -> None:
    client = await served(_security(data_key_timeout_s=30.0))
    known = make_registration()
    assert (await client.post("/v1/registrations", data=multipart(known, JPEG))).status == 202
    store.fail_next = 1
    resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG))
    assert resp.status == 503 and resp.headers["Retry-After"]
    assert (await resp.json())["error"]["code"] == "storage_unavailable"
    # For as long again, uploads needing the store answer 503 without asking it; a cached key still works.
    gets_before = store.fail_next
    resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG))
    assert resp.status == 503 and store.fail_next == gets_before
    assert (await client.post("/v1/registrations", data=multipart(known, JPEG))).status == 202
    assert len(sink.records) == 2
    assert _waits(await (await client.get("/metrics")).text()) == 2  # the create and the failure, not the refusal


class _Stalled(MemoryStore):
    """A store that accepts the connection and never answers a key write."""

    async def put_if_absent(self, bucket: str, key: str, data: bytes, content_type: str) -> bool:
        await asyncio.sleep(3600)
        return False


async def test_a_stalled_key_store_answers_503_within_the_timeout(served: Served, sink: FakeSink) -> None:
    stalled = _Stalled()
    stalled.buckets.update({"intake-ktp", "intake-status", "intake-keys"})
    client = await served(_security(data_key_timeout_s=0.2), store_=stalled)
    started = asyncio.get_running_loop().time()
    resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG))
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "storage_unavailable"
    assert asyncio.get_running_loop().time() - started < 2.0
    assert not sink.records


async def test_plaintext_records_only_when_told_and_said(served: Served, sink: FakeSink, store: MemoryStore) -> None:
    client = await served(_security(seal_records=False))
    reg = make_registration()
    assert (await client.post("/v1/registrations", data=multipart(reg, JPEG))).status == 202
    envelope = decode(sink.records[0][2])
    assert isinstance(envelope, Submission) and envelope.registration["nik"] == reg["nik"]
    assert not [k for b, k in store.objects if b == "intake-keys"]
    assert "intake_records_sealed 0.0" in await (await client.get("/metrics")).text()


async def test_sealed_by_default_and_the_gauge_says_so(served: Served) -> None:
    client = await served()
    assert "intake_records_sealed 1.0" in await (await client.get("/metrics")).text()


class _ErasedMidway(KeyStore):
    """The first creation loses the race to an erasure (the key vanishes between create and read)."""

    raced = False

    async def get_or_create(self, applicant: str) -> bytes:
        if not self.raced:
            self.raced = True
            raise KeyDestroyed("erased between the two steps")
        return await super().get_or_create(applicant)


async def test_edge_keys_create_a_fresh_key_when_erased_midway() -> None:
    store = MemoryStore()
    await store.ensure_buckets(["intake-keys"])
    settings = unit_settings()
    racing = _ErasedMidway(store, "intake-keys", parse_keks(settings.security.data_keks))
    applicant = nik_hash_hex(make_registration()["nik"], TEST_PEPPER.encode())
    dek = await EdgeKeys(racing, KeyCache(10, 60.0), 1.0, build_metrics()).key_for(applicant)
    assert racing.raced and dek == await key_store(store).require(applicant)


async def test_edge_keys_unavailable_raises_without_key_material() -> None:
    store = MemoryStore()  # no keys bucket: BucketMissing, a StorageUnavailable
    edge = EdgeKeys(key_store(store), KeyCache(10, 60.0), 1.0, build_metrics())
    with pytest.raises(KeysUnavailable) as failed:
        await edge.key_for("ab" * 32)
    assert isinstance(failed.value.__cause__, StorageUnavailable)
    assert json.dumps(str(failed.value))
