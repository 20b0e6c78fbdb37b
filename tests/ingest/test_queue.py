"""The queue watermark with a fake offset source: the document, its ETag, drain rates, failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence

import pytest

from ingest.queue import QueueWatermark
from intake.metrics import build_metrics
from intake.offsets import PartitionOffsets


class FakeSource:
    def __init__(self) -> None:
        self.parts: list[PartitionOffsets] = []
        self.fail = False
        self.reads = 0
        self.on_read: Callable[[], object] = lambda: None

    async def read(self, group: str, topic: str) -> Sequence[PartitionOffsets]:
        self.reads += 1
        self.on_read()
        if self.fail:
            raise ConnectionError("broker down")
        return list(self.parts)


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def _watermark(source: FakeSource, clock: Clock) -> QueueWatermark:
    return QueueWatermark(
        source, build_metrics(), group="g", topic="t", sample_s=1.0, window_s=60.0, timeout_s=1.0, clock=clock
    )


async def test_document_rates_and_places() -> None:
    source, clock = FakeSource(), Clock()
    mark = _watermark(source, clock)
    assert json.loads(mark.body)["partitions"] == [] and mark.where(0, 5) is None
    source.parts = [PartitionOffsets(0, 0, 50, 10), PartitionOffsets(1, 0, 9, None)]
    await mark.sample_once()
    doc = json.loads(mark.body)
    assert doc["partitions"][0] == {"partition": 0, "committed": 10, "end": 50, "drain_per_second": None}
    assert doc["partitions"][1]["committed"] == 0  # never committed: the group starts at the log start
    first_etag = mark.etag
    clock.now += 2
    source.parts = [PartitionOffsets(0, 0, 60, 30), PartitionOffsets(1, 0, 9, None)]
    await mark.sample_once()
    assert mark.etag != first_etag
    assert json.loads(mark.body)["partitions"][0]["drain_per_second"] == 10.0
    where = mark.where(0, 130)
    assert where is not None and (where.ahead, where.position, where.wait_s) == (100, 101, 10.0)
    assert mark.passed(0, 29) and not mark.passed(0, 30) and not mark.passed(7, 0)
    assert mark.cache_control == "public, max-age=1"


async def test_failed_sample_keeps_the_last_document() -> None:
    source, clock = FakeSource(), Clock()
    mark = _watermark(source, clock)
    source.parts = [PartitionOffsets(0, 0, 5, 2)]
    await mark.sample_once()
    body = mark.body
    source.fail = True
    with pytest.raises(ConnectionError):
        await mark.sample_once()
    assert mark.body == body and mark.where(0, 4) is not None


async def test_unchanged_numbers_keep_the_etag() -> None:
    source, clock = FakeSource(), Clock()
    mark = _watermark(source, clock)
    source.parts = [PartitionOffsets(0, 0, 5, 5)]
    await mark.sample_once()
    clock.now += 1
    await mark.sample_once()  # the rate is measured now: 0.0 (was unknown)
    etag, body = mark.etag, mark.body
    for _ in range(3):
        clock.now += 1
        await mark.sample_once()
    assert (mark.etag, mark.body) == (etag, body)  # idle queue: caches keep revalidating with 304
    source.parts = [PartitionOffsets(0, 0, 6, 5)]
    await mark.sample_once()
    assert mark.etag != etag


async def test_a_cancellation_that_arrives_as_a_sample_fails_stops_the_watermark() -> None:
    """The read fails just as the task is cancelled: the cancellation wins (Python 3.11's ``asyncio.wait_for``
    raised the read's error instead, and the loop never ended)."""
    source = FakeSource()
    source.fail = True
    mark = _watermark(source, Clock())
    task = asyncio.create_task(mark.run())
    source.on_read = task.cancel
    done, _ = await asyncio.wait({task}, timeout=60)
    assert task in done and task.cancelled()
    assert source.reads == 1
