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
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from intake.background import background
from intake.kafka import connection_config
from intake.metrics import Metrics
from intake.settings import Settings
from intake.topics import topic_names

log = logging.getLogger("intake.consumer.lag")


@dataclass(frozen=True)
class PartitionOffsets:
    """One partition as the broker reports it. ``committed`` is ``None`` when the group has no offset there."""

    partition: int
    start: int
    end: int
    committed: int | None

    @property
    def position(self) -> int:
        """Where the group resumes: its committed offset, or the log start (``auto_offset_reset=earliest``)."""
        return self.start if self.committed is None else max(self.committed, self.start)

    @property
    def backlog(self) -> int:
        """Records the group has not consumed yet."""
        return max(0, self.end - self.position)


class OffsetSource(Protocol):
    """Reads the offsets of one topic for one consumer group. :class:`KafkaOffsetSource` or a test fake."""

    async def read(self, group: str, topic: str) -> Sequence[PartitionOffsets]:
        """Every partition of ``topic``; raise when the cluster does not answer."""
        ...


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
        self._history: dict[str, deque[tuple[float, int]]] = {t: deque() for t in self._topics}
        self._partitions: dict[str, set[int]] = {t: set() for t in self._topics}

    async def sample_once(self) -> list[TopicLag]:
        """Read every topic once and set the gauges. Raises when the source fails (gauges untouched)."""
        readings = [
            (topic, await asyncio.wait_for(self._source.read(self._group, topic), self._timeout_s))
            for topic in self._topics
        ]
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
        rate = self._rate(topic, now, sum(p.position for p in parts))
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

    def _rate(self, topic: str, now: float, position: int) -> float:
        history = self._history[topic]
        if history and position < history[-1][1]:
            history.clear()  # offsets went back (topic recreated, offsets reset): start over
        history.append((now, position))
        while len(history) > 2 and history[1][0] <= now - self._window_s:
            history.popleft()
        first_t, first_pos = history[0]
        if len(history) < 2 or now <= first_t:
            return math.nan
        return (position - first_pos) / (now - first_t)

    async def run(self) -> None:
        """Sample every ``interval_s`` until cancelled; failures are counted and logged, never raised."""
        while True:
            started = self._clock()
            try:
                await self.sample_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._metrics.lag_sample_errors.inc()
                log.warning("backlog sample failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(max(0.0, self.interval_s - (self._clock() - started)))


class KafkaOffsetSource:
    """Offsets from the broker: an admin client for the group's commits, a group-less consumer for the log ends.

    Clients are started on first use and rebuilt after a failure, so a sampler started while Kafka is down
    recovers by itself. :meth:`close` releases them.
    """

    def __init__(self, connection: dict[str, Any], client_id: str, request_timeout_ms: int = 10_000) -> None:
        self._connection = connection
        self._client_id = client_id
        self._request_timeout_ms = request_timeout_ms
        self._admin: Any = None
        self._consumer: Any = None

    async def _clients(self) -> tuple[Any, Any]:
        if self._admin is None or self._consumer is None:
            admin = AIOKafkaAdminClient(
                **self._connection,
                client_id=self._client_id,
                request_timeout_ms=self._request_timeout_ms,
            )
            consumer = AIOKafkaConsumer(
                **self._connection,
                client_id=self._client_id,
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=self._request_timeout_ms,
            )
            try:
                await admin.start()
                await consumer.start()
            except BaseException:
                await _quietly_close(admin, consumer)
                raise
            self._admin, self._consumer = admin, consumer
        return self._admin, self._consumer

    async def read(self, group: str, topic: str) -> Sequence[PartitionOffsets]:
        admin, consumer = await self._clients()
        try:
            described = await admin.describe_topics([topic])
            if not described or described[0].get("error_code"):
                raise LookupError(f"topic {topic} not found")
            tps = sorted(
                (TopicPartition(topic, p["partition"]) for p in described[0]["partitions"]),
                key=lambda tp: tp.partition,
            )
            if not tps:
                return []
            ends = await consumer.end_offsets(tps)
            starts = await consumer.beginning_offsets(tps)
            committed = await admin.list_consumer_group_offsets(group, partitions=tps)
        except BaseException:
            await self.close()
            raise
        out = []
        for tp in tps:
            meta = committed.get(tp)
            offset = None if meta is None or meta.offset < 0 else int(meta.offset)
            out.append(PartitionOffsets(tp.partition, int(starts[tp]), int(ends[tp]), offset))
        return out

    async def close(self) -> None:
        admin, consumer = self._admin, self._consumer
        self._admin = self._consumer = None
        await _quietly_close(admin, consumer)


async def _quietly_close(admin: Any, consumer: Any) -> None:
    if consumer is not None:
        with contextlib.suppress(Exception):
            await consumer.stop()
    if admin is not None:
        with contextlib.suppress(Exception):
            await admin.close()


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
        connection_config(settings), f"{settings.kafka.client_id}-lag", settings.kafka.request_timeout_ms
    )
    sampler = LagSampler(
        own if source is None else source,
        metrics,
        group=settings.kafka.group_id,
        topics=[topic_names(settings).submissions],
        interval_s=interval_s,
        window_s=window_s,
        timeout_s=settings.kafka.request_timeout_ms / 1000,
    )
    try:
        async with background(sampler.run(), name="lag-sampler"):
            yield sampler
    finally:
        await own.close()
