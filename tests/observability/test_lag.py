"""The lag sampler with a fake offset source and a fake clock: backlog, drain rate, time to drain, failures."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence

import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumers.lag import LagSampler, sample_lag
from intake.metrics import Metrics, build_metrics
from intake.offsets import PartitionOffsets
from intake.topics import topic_names
from tests.support import unit_settings

TOPIC = "intake.submissions.v1"


class FakeSource:
    """Offsets set by the test; ``fail`` makes reads raise like an unreachable broker."""

    def __init__(self) -> None:
        self.parts: dict[str, list[PartitionOffsets]] = {TOPIC: []}
        self.fail = False
        self.reads: list[tuple[str, str]] = []
        self.was_read = asyncio.Event()
        self.on_read: Callable[[], object] = lambda: None

    def set(self, *parts: tuple[int, int, int, int | None]) -> None:
        self.parts[TOPIC] = [PartitionOffsets(p, start, end, committed) for p, start, end, committed in parts]

    async def read(self, group: str, topic: str) -> Sequence[PartitionOffsets]:
        self.reads.append((group, topic))
        self.was_read.set()
        self.on_read()
        if self.fail:
            raise ConnectionError("broker down")
        return list(self.parts[topic])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def samples(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for f in text_string_to_metric_families(metrics.render().decode())
        for s in f.samples
        if s.name == name
    }


def make(window_s: float = 60.0) -> tuple[FakeSource, Clock, Metrics, LagSampler]:
    source, clock, metrics = FakeSource(), Clock(), build_metrics()
    sampler = LagSampler(
        source, metrics, group="g", topics=[TOPIC], window_s=window_s, clock=clock, wall_clock=lambda: 1.7e9
    )
    return source, clock, metrics, sampler


def test_partition_backlog_rules() -> None:
    assert PartitionOffsets(0, start=0, end=10, committed=4).backlog == 6
    assert PartitionOffsets(0, start=3, end=10, committed=None).backlog == 7  # no commit: from the log start
    assert PartitionOffsets(0, start=8, end=10, committed=2).backlog == 2  # retention deleted past the commit
    assert PartitionOffsets(0, start=0, end=10, committed=10).backlog == 0


async def test_backlog_per_partition_and_unknown_rate_on_the_first_sample() -> None:
    source, _, metrics, sampler = make()
    source.set((0, 0, 10, 4), (1, 0, 5, None), (2, 0, 7, 7))
    [lag] = await sampler.sample_once()
    assert source.reads == [("g", TOPIC)]
    assert lag.backlog == 6 + 5 + 0
    assert math.isnan(lag.drain_rate) and math.isnan(lag.time_to_drain_s)
    assert samples(metrics, "intake_consumer_backlog_records") == {
        (("partition", "0"), ("topic", TOPIC)): 6,
        (("partition", "1"), ("topic", TOPIC)): 5,
        (("partition", "2"), ("topic", TOPIC)): 0,
    }
    assert samples(metrics, "intake_consumer_lag_last_sample_timestamp_seconds") == {(): 1.7e9}


async def test_time_to_drain_is_backlog_over_the_recent_rate() -> None:
    source, clock, metrics, sampler = make()
    source.set((0, 0, 100, 0))
    await sampler.sample_once()
    clock.now += 10
    source.set((0, 0, 120, 20))  # 20 committed in 10 s; backlog 100
    [lag] = await sampler.sample_once()
    assert lag.drain_rate == pytest.approx(2.0)
    assert lag.time_to_drain_s == pytest.approx(50.0)
    assert samples(metrics, "intake_consumer_time_to_drain_seconds") == {(("topic", TOPIC),): pytest.approx(50.0)}
    assert samples(metrics, "intake_consumer_drain_rate_records_per_second") == {(("topic", TOPIC),): 2.0}


async def test_no_progress_with_a_backlog_is_infinite_and_no_backlog_is_zero() -> None:
    source, clock, _, sampler = make()
    source.set((0, 0, 50, 10))
    await sampler.sample_once()
    clock.now += 5
    [stuck] = await sampler.sample_once()
    assert stuck.drain_rate == 0 and math.isinf(stuck.time_to_drain_s)
    clock.now += 5
    source.set((0, 0, 50, 50))
    [done] = await sampler.sample_once()
    assert done.backlog == 0 and done.time_to_drain_s == 0


async def test_rate_uses_the_recent_window_only() -> None:
    source, clock, _, sampler = make(window_s=30)
    source.set((0, 0, 1000, 0))
    await sampler.sample_once()
    clock.now += 100
    source.set((0, 0, 1000, 500))  # a burst long ago
    await sampler.sample_once()
    for _ in range(4):
        clock.now += 10
        [lag] = await sampler.sample_once()  # no progress since
    assert lag.drain_rate == 0


async def test_offsets_going_back_restart_the_rate() -> None:
    source, clock, _, sampler = make()
    source.set((0, 0, 100, 90))
    await sampler.sample_once()
    clock.now += 10
    source.set((0, 0, 10, 0))  # topic recreated
    [lag] = await sampler.sample_once()
    assert math.isnan(lag.drain_rate)


async def test_vanished_partitions_lose_their_series() -> None:
    source, _, metrics, sampler = make()
    source.set((0, 0, 1, 0), (1, 0, 2, 0))
    await sampler.sample_once()
    source.set((0, 0, 1, 0))
    await sampler.sample_once()
    assert set(samples(metrics, "intake_consumer_backlog_records")) == {(("partition", "0"), ("topic", TOPIC))}


async def test_failures_are_counted_and_keep_the_last_values() -> None:
    source, _, metrics, sampler = make()
    sampler.interval_s = 0.01
    source.set((0, 0, 9, 0))
    await sampler.sample_once()
    source.fail = True
    task = asyncio.create_task(sampler.run())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert samples(metrics, "intake_consumer_lag_sample_errors_total")[()] >= 2
    assert samples(metrics, "intake_consumer_backlog_records") == {(("partition", "0"), ("topic", TOPIC)): 9}


async def test_a_cancellation_that_arrives_as_a_sample_fails_stops_the_sampler() -> None:
    """The read fails just as the task is cancelled. Python 3.11's ``asyncio.wait_for`` raised the read's error
    instead of the cancellation, the loop counted it, and the sampler (and the consumer's shutdown) never ended."""
    source, _, metrics, sampler = make()
    sampler.interval_s = 0.01
    source.fail = True
    task = asyncio.create_task(sampler.run())
    source.on_read = task.cancel
    done, _ = await asyncio.wait({task}, timeout=60)
    assert task in done and task.cancelled()
    assert samples(metrics, "intake_consumer_lag_sample_errors_total")[()] == 1


async def test_sample_lag_runs_for_the_settings_topic_and_group_while_the_block_runs() -> None:
    settings = unit_settings()
    source, metrics = FakeSource(), build_metrics()
    topic = topic_names(settings).submissions
    source.parts[topic] = [PartitionOffsets(0, 0, 4, 1)]
    async with sample_lag(settings, metrics, interval_s=0.01, source=source):
        for _ in range(2):  # the second read comes after the first sample was recorded
            source.was_read.clear()
            await asyncio.wait_for(source.was_read.wait(), 60)
        assert [t for t in asyncio.all_tasks() if t.get_name() == "lag-sampler"]
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "lag-sampler"]  # stopped (ended) with the block
    assert source.reads[0] == (settings.kafka.group_id, topic)
    assert samples(metrics, "intake_consumer_backlog_records") == {(("partition", "0"), ("topic", topic)): 3}
