"""Status reads for everyone, on the real Kafka and MinIO: the materialised status view and the queue watermark.

* MinIO stopped: statuses the view holds and queued submissions are still answered (200, from memory).
* An API process restarted: its view is rebuilt from the compacted status topic, and readiness answers
  503 ``starting`` until it has been.
* The watermark advances as the consumer drains, and a queued submission's place falls until it is processed.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ingest.app import create_app
from ingest.keys import STATUS_VIEW
from intake.kafka import build_producer
from intake.settings import Settings
from intake.status import StatusRecord
from intake.topics import topic_names
from tests.corpus.ktp import SceneSpec, encode, scene
from tests.integration.conftest import Consumers, stack, started_api, wait_until
from tests.support import api_client, make_registration, multipart

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

GOOD = encode(scene(SceneSpec(seed=3)))


def _fast(settings: Settings) -> Settings:
    """The watermark sampled every 0.2 s (its rate over 10 s), so the tests see it move."""
    return replace(settings, status=replace(settings.status, queue_sample_s=0.2, queue_rate_window_s=10.0))


async def _submit(api: TestClient[Any, Any]) -> dict[str, Any]:
    resp = await api.post("/v1/registrations", data=multipart(make_registration(), GOOD))
    assert resp.status == 202, await resp.text()
    return dict(await resp.json())


async def _status(api: TestClient[Any, Any], accepted: dict[str, Any], url: str | None = None) -> tuple[int, Any]:
    auth = {"Authorization": f"Bearer {accepted['status_token']}"}
    resp = await api.get(url or accepted["status_url"], headers=auth)
    return resp.status, await resp.json()


async def _processed(api: TestClient[Any, Any], accepted: dict[str, Any], timeout_s: float = 90) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def done() -> bool:
        status, body = await _status(api, accepted)
        seen.clear()
        seen.update(body)
        return status == 200 and body["state"] != "received"

    await wait_until(done, timeout_s, "the submission to be processed")
    return seen


async def test_status_is_answered_from_the_view_while_minio_is_down(
    topics_ready: Settings, consumers: Consumers
) -> None:
    settings = _fast(topics_ready)
    api = await started_api(settings)
    try:
        done = await _submit(api)
        consumers.start()
        processed = await _processed(api, done)
        assert processed["state"] == "eligible"
        await consumers.stop(0)
        queued = await _submit(api)  # nobody consumes it: it stays queued
        await asyncio.to_thread(stack, "stop-minio")
        try:
            for _ in range(3):
                status, body = await _status(api, done)
                assert status == 200, body
                assert body == processed  # the same answer as from the store
                status, body = await _status(api, queued)
                assert status == 200, body
                assert body["state"] == "received" and body["queue"]["position"] >= 1
                assert body["queue"]["message_id"].startswith("Anda di antrean ke-")
            # Only a read the memory cannot answer needs the store: without the receipt's place, 503.
            status, body = await _status(api, queued, f"/v1/submissions/{queued['submission_id']}")
            assert status == 503 and body["error"]["code"] == "storage_unavailable"
            assert api.app is not None
            view = api.app[STATUS_VIEW]
            assert view.caught_up and view.get(done["submission_id"]) is not None
        finally:
            await asyncio.to_thread(stack, "start-minio")
    finally:
        await api.close()


async def _publish_statuses(settings: Settings, count: int) -> None:
    """Put ``count`` synthetic statuses on the status topic (what the workers would have published)."""
    producer = build_producer(settings)
    await producer.start()
    try:
        topic = topic_names(settings).status
        futures = []
        for i in range(count):
            sid = f"{i:026d}".translate(str.maketrans("0123456789", "abcdefghij"))
            record = StatusRecord(sid, "rejected", "2026-11-30T00:00:00+00:00", reason="blurry", measured=float(i))
            futures.append(await producer.send(topic, record.to_json(), key=sid.encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def test_restarted_api_rebuilds_its_view_before_it_is_ready(topics_ready: Settings, consumers: Consumers) -> None:
    settings = _fast(topics_ready)
    first = await started_api(settings)
    try:
        accepted = await _submit(first)
        consumers.start()
        processed = await _processed(first, accepted)
    finally:
        await first.close()
    await _publish_statuses(settings, 30_000)  # enough to make the replay take a while

    app = create_app(settings)
    again: TestClient[Any, Any] = api_client(app, settings)
    started = time.monotonic()
    await again.start_server()
    try:
        view = app[STATUS_VIEW]
        answers: list[tuple[int, str, bool]] = []

        async def ready() -> bool:
            resp = await again.get("/readyz")
            body = await resp.json()
            answers.append((resp.status, body.get("error", {}).get("code", "ok"), view.caught_up))
            return resp.status == 200

        await wait_until(ready, 120, "the restarted API's readiness")
        rebuilt_s = time.monotonic() - started
        assert answers[0][:2] == (503, "starting"), answers[:3]
        assert all(caught_up for status, _, caught_up in answers if status == 200)
        assert all(code in ("starting", "queue_unavailable") for status, code, _ in answers if status != 200)
        assert len(view) >= 30_001
        status, body = await _status(again, accepted)
        assert status == 200 and body == processed
        print(f"\nview rebuilt: {len(view)} statuses in {rebuilt_s:.1f} s ({len(answers)} readiness polls)")
    finally:
        await again.close()


async def test_watermark_advances_and_the_place_falls(topics_ready: Settings) -> None:
    settings = _fast(topics_ready)
    settings = replace(settings, consumer=replace(settings.consumer, max_batch=1))  # commit after every record
    consumers = Consumers(settings)
    api = await started_api(settings)
    try:
        accepted = [await _submit(api) for _ in range(15)]
        by_partition: dict[int, list[dict[str, Any]]] = {}
        for a in accepted:
            by_partition.setdefault(a["partition"], []).append(a)
        lane = max(by_partition.values(), key=len)
        last = max(lane, key=lambda a: a["offset"])
        await asyncio.sleep(0.5)
        status, body = await _status(api, last)
        assert status == 200 and body["state"] == "received"
        start_position = body["queue"]["position"]
        assert start_position >= len(lane)

        async def watermark() -> dict[int, int]:
            doc = json.loads(await (await api.get("/v1/queue")).read())
            return {p["partition"]: p["committed"] for p in doc["partitions"]}

        before = await watermark()
        consumers.start()
        positions: list[int] = [start_position]
        watermarks: list[int] = [before[last["partition"]]]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status, body = await _status(api, last)
            assert status == 200
            watermarks.append((await watermark())[last["partition"]])
            if body["state"] != "received":
                break
            positions.append(body["queue"]["position"])
            await asyncio.sleep(0.1)
        assert body["state"] == "eligible", body
        assert positions == sorted(positions, reverse=True), (positions, watermarks)  # the place only falls
        assert len(set(positions)) >= 2, (positions, watermarks)  # and it was seen falling before it was processed

        async def passed() -> bool:  # the status is published before the offset is committed and sampled
            watermarks.append((await watermark())[last["partition"]])
            return bool(watermarks[-1] > last["offset"])

        await wait_until(passed, 30, "the watermark to pass the submission")
        assert watermarks == sorted(watermarks), watermarks  # the watermark only advances
        doc = json.loads(await (await api.get("/v1/queue")).read())
        rates = [p["drain_per_second"] for p in doc["partitions"] if p["partition"] == last["partition"]]
        assert rates and rates[0] is not None and rates[0] > 0  # a measured drain rate
    finally:
        await consumers.close()
        await api.close()
