"""Status reads from memory (fakes only): the view, queued submissions, the store as fallback, the watermark route,
readiness while the view catches up, and the receipt's place in the queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ingest.app import create_app
from ingest.status_view import StatusView
from intake.kafka import Delivery
from intake.metrics import Metrics, build_metrics
from intake.offsets import PartitionOffsets
from intake.status import StatusRecord, status_key
from intake.storage import MemoryStore
from tests.support import FakeSink, api_client, api_store, make_registration, multipart, unit_settings

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200 + b"\xff\xd9"


class FakeOffsets:
    """The group's offsets on every partition, set by the test."""

    def __init__(self) -> None:
        self.parts = [PartitionOffsets(0, 0, 0, None)]

    async def read(self, group: str, topic: str) -> Sequence[PartitionOffsets]:
        return list(self.parts)


class Api:
    def __init__(
        self, client: TestClient[Any, Any], view: StatusView, store: MemoryStore, metrics: Metrics, offsets: FakeOffsets
    ) -> None:
        self.client, self.view, self.store, self.metrics, self.offsets = client, view, store, metrics, offsets

    def reads(self, source: str) -> float:
        value = self.metrics.registry.get_sample_value("intake_status_reads_total", {"outcome": source})
        return value or 0.0


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    settings = unit_settings()
    settings = replace(settings, status=replace(settings.status, queue_sample_s=0.05, queue_rate_window_s=10.0))
    store, metrics, view, offsets = api_store(), build_metrics(), StatusView(100), FakeOffsets()
    await store.ensure_buckets(["intake-ktp", "intake-status"])
    app = create_app(settings, sink=FakeSink(), store=store, metrics=metrics, offsets=offsets, status_view=view)
    client = api_client(app, settings)
    await client.start_server()
    yield Api(client, view, store, metrics, offsets)
    await client.close()


async def _accept(api: Api) -> dict[str, Any]:
    resp = await api.client.post("/v1/registrations", data=multipart(make_registration(), JPEG))
    assert resp.status == 202, await resp.text()
    return dict(await resp.json())


async def test_readiness_waits_for_the_view(api: Api) -> None:
    resp = await api.client.get("/readyz")
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "starting"
    api.view.mark_caught_up()
    assert (await api.client.get("/readyz")).status == 200


async def test_status_from_the_view_needs_no_store(api: Api) -> None:
    api.view.mark_caught_up()
    accepted = await _accept(api)
    sid = accepted["submission_id"]
    record = StatusRecord(sid, "rejected", "2026-11-30T00:00:00+00:00", reason="blurry", measured=3.0, threshold=60.0)
    api.view.apply(sid.encode(), record.to_json())
    api.store.fail_next = 1000  # MinIO down
    auth = {"Authorization": f"Bearer {accepted['status_token']}"}
    for url in (accepted["status_url"], f"/v1/submissions/{sid}"):
        resp = await api.client.get(url, headers=auth)
        assert resp.status == 200
        body = await resp.json()
        assert body["state"] == "rejected" and body["reason"]["code"] == "blurry"
        again = await api.client.get(url, headers={**auth, "If-None-Match": resp.headers["ETag"]})
        assert again.status == 304
    assert api.reads("view") == 4 and api.reads("store") == 0


async def test_queued_submission_is_answered_from_memory_with_its_place(api: Api) -> None:
    api.view.mark_caught_up()
    accepted = await _accept(api)
    assert (accepted["partition"], accepted["offset"]) == (0, 0)
    await asyncio.sleep(0.2)  # the sampler read the fake offsets: nothing committed, 0 ahead
    api.store.fail_next = 1000
    auth = {"Authorization": f"Bearer {accepted['status_token']}"}
    resp = await api.client.get(accepted["status_url"], headers=auth)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["state"] == "received"
    assert body["queue"]["position"] == 1 and body["queue"]["message_id"].startswith("Anda di antrean ke-1")
    assert api.reads("queued") == 1 and api.reads("store") == 0
    again = await api.client.get(accepted["status_url"], headers={**auth, "If-None-Match": resp.headers["ETag"]})
    assert again.status == 304  # the place did not change
    api.offsets.parts = [PartitionOffsets(0, 0, 5, 0)]  # more records behind it: same place, same answer
    await asyncio.sleep(0.2)
    again = await api.client.get(accepted["status_url"], headers={**auth, "If-None-Match": resp.headers["ETag"]})
    assert again.status == 304
    later = await api.client.get(
        f"/v1/submissions/{accepted['submission_id']}?partition=0&offset=3",
        headers={**auth, "If-None-Match": resp.headers["ETag"]},
    )
    assert later.status == 200 and (await later.json())["queue"]["position"] == 4  # another place, another ETag
    # Without the receipt's place the store is asked: down, so 503 (the old behaviour).
    resp = await api.client.get(f"/v1/submissions/{accepted['submission_id']}", headers=auth)
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "storage_unavailable"


async def test_receipt_carries_the_place_and_a_pace_that_grows(api: Api) -> None:
    api.view.mark_caught_up()
    await asyncio.sleep(0.2)  # sampled: nothing committed on partition 0
    accepted = await _accept(api)
    assert accepted["queue"]["position"] == 1 and accepted["queue"]["estimated_wait_seconds"] == 0
    assert accepted["poll_after_seconds"] == 10
    # 5,000 records ahead with no measured rate: the hint is the cap, and so is Retry-After.
    sid = accepted["submission_id"]
    auth = {"Authorization": f"Bearer {accepted['status_token']}"}
    resp = await api.client.get(f"/v1/submissions/{sid}?partition=0&offset=5000", headers=auth)
    body = await resp.json()
    assert body["queue"]["ahead"] == 5000 and body["queue"]["estimated_wait_seconds"] is None
    assert body["poll_after_seconds"] == 300 and resp.headers["Retry-After"] == "300"
    # The store still answers processed submissions the view does not hold.
    record = StatusRecord(sid, "erased", "2026-11-30T00:00:00+00:00")
    await api.store.put("intake-status", status_key(sid), record.to_json(), "application/json")
    resp = await api.client.get(f"/v1/submissions/{sid}", headers=auth)
    assert (await resp.json())["state"] == "erased" and api.reads("store") == 1


async def test_queue_document_is_public_and_cacheable(api: Api) -> None:
    await asyncio.sleep(0.2)
    resp = await api.client.get("/v1/queue")
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "public, max-age=1"
    doc = await resp.json()
    assert doc["partitions"] == [{"partition": 0, "committed": 0, "end": 0, "drain_per_second": 0.0}]
    again = await api.client.get("/v1/queue", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304


class _NoOffsetSink(FakeSink):
    """Acknowledges without an offset (a sink that cannot tell; the service's sinks refuse such a delivery instead)."""

    async def send(self, topic: str, key: bytes, value: bytes, headers: Any = ()) -> Delivery:
        delivery = await super().send(topic, key, value, headers)
        return Delivery(delivery.partition, None)


async def test_a_receipt_without_an_offset_has_no_place_and_its_status_works() -> None:
    settings = unit_settings()
    store = api_store()
    await store.ensure_buckets(["intake-ktp", "intake-status"])
    app = create_app(settings, sink=_NoOffsetSink(), store=store, metrics=build_metrics(), offsets=FakeOffsets())
    client = api_client(app, settings)
    await client.start_server()
    try:
        resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG))
        body = await resp.json()
        assert resp.status == 202, body  # appended: the missing offset is no reason to refuse
        assert "partition" not in body and "offset" not in body and "queue" not in body
        assert body["status_url"] == f"/v1/submissions/{body['submission_id']}"
        auth = {"Authorization": f"Bearer {body['status_token']}"}
        status = await client.get(body["status_url"], headers=auth)
        assert status.status == 200 and (await status.json())["state"] == "received"
    finally:
        await client.close()
