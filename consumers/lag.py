"""The consumer group's backlog: how many submissions wait, per topic and partition, and how long they will wait.

A :class:`LagSampler` asks an :class:`OffsetSource` every ``interval_s`` for each partition's log start, end
offset (high watermark) and the group's committed offset, and sets:

* ``intake_consumer_backlog_records{topic,partition}`` = end - committed (end - log start when the group has
  not committed yet: it starts from the earliest record);
* ``intake_consumer_drain_rate_records_per_second{topic}``: committed offsets gained per second over the last
  ``window_s`` (NaN until two samples exist);
* ``intake_consumer_time_to_drain_seconds{topic}`` = backlog / drain rate (0 without backlog, +Inf with a
  backlog and no progress, NaN while the rate is unknown).

The numbers are the whole group's, read from the broker, not this member's assignment: they stay right while
no member runs (the backlog grows) and during rebalances. Every consumer process may run a sampler; they all
report the same values, so dashboards take ``max by (topic, partition)``, never a sum over instances.

A failed sample (Kafka unreachable) counts ``intake_consumer_lag_sample_errors_total`` and leaves the gauges
as they were; ``intake_consumer_lag_last_sample_timestamp_seconds`` shows how old they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from functools import partial

from intake.background import background, repeat
from intake.kafka import connection_config
from intake.metrics import Metrics
from intake.offsets import DrainRate, KafkaOffsetSource, OffsetSource, PartitionOffsets
from intake.settings import Settings
from intake.topics import topic_names

log = logging.getLogger("intake.consumer.lag")


@dataclass(frozen=True)
class TopicLag:
    """One sample of one topic."""

    topic: str
    backlog: int
    drain_rate: float
    time_to_drain_s: float


class LagSampler:
    """Samples offsets periodically and sets the backlog gauges; see the module docstring."""

    def __init__(
        self,
        source: OffsetSource,
        metrics: Metrics,
        *,
        group: str,
        topics: Sequence[str],
        interval_s: float = 5.0,
        window_s: float = 60.0,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._metrics = metrics
        self._group = group
        self._topics = tuple(topics)
        self.interval_s = interval_s
        self._window_s = window_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._rates = {t: DrainRate(window_s) for t in self._topics}
        self._partitions: dict[str, set[int]] = {t: set() for t in self._topics}

    async def sample_once(self) -> list[TopicLag]:
        """Read every topic once and set the gauges. Raises when the source fails (gauges untouched)."""
        readings = []
        for topic in self._topics:
            async with asyncio.timeout(self._timeout_s):
                readings.append((topic, await self._source.read(self._group, topic)))
        now = self._clock()
        out = [self._apply(topic, parts, now) for topic, parts in readings]
        self._metrics.lag_sampled_at.set(self._wall_clock())
        return out

    def _apply(self, topic: str, parts: Sequence[PartitionOffsets], now: float) -> TopicLag:
        m = self._metrics
        seen = {p.partition for p in parts}
        for gone in self._partitions[topic] - seen:
            with contextlib.suppress(KeyError):
                m.backlog.remove(topic, str(gone))
        self._partitions[topic] = seen
        for p in parts:
            m.backlog.labels(topic, str(p.partition)).set(p.backlog)
        backlog = sum(p.backlog for p in parts)
        rate = self._rates[topic].add(now, sum(p.position for p in parts))
        if backlog == 0:
            ttd = 0.0
        elif math.isnan(rate):
            ttd = math.nan
        elif rate > 0:
            ttd = backlog / rate
        else:
            ttd = math.inf
        m.drain_rate.labels(topic).set(rate)
        m.time_to_drain.labels(topic).set(ttd)
        return TopicLag(topic, backlog, rate, ttd)

    async def run(self) -> None:
        """Sample every ``interval_s`` until cancelled; failures are counted and logged, never raised."""
        await repeat(self.sample_once, self.interval_s, self._failed, self._clock)

    def _failed(self, exc: Exception) -> None:
        self._metrics.lag_sample_errors.inc()
        log.warning("backlog sample failed", extra={"error": type(exc).__name__})


@contextlib.asynccontextmanager
async def sample_lag(
    settings: Settings,
    metrics: Metrics,
    *,
    interval_s: float = 5.0,
    window_s: float = 60.0,
    source: OffsetSource | None = None,
) -> AsyncIterator[LagSampler]:
    """Run a :class:`LagSampler` for the submissions topic and the settings' group while the block runs."""
    own = KafkaOffsetSource(
        partial(connection_config, settings), f"{settings.kafka.client_id}-lag", settings.kafka.request_timeout_ms
    )
    sampler = LagSampler(
        own if source is None else source,
        metrics,
        group=settings.kafka.group_id,
        topics=[topic_names(settings).submissions],
        interval_s=interval_s,
        window_s=window_s,
        timeout_s=settings.kafka.request_timeout_s,
    )
    try:
        async with background(sampler.run(), name="lag-sampler"):
            yield sampler
    finally:
        await own.close()
