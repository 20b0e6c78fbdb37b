"""Where a consumer group stands on a topic: per-partition offsets read from the broker, and drain rates.

Shared by the consumers' backlog sampler (:mod:`consumers.lag`) and the API's public queue watermark
(:mod:`ingest.queue`), so both read the same numbers the same way.

* :class:`PartitionOffsets`: one partition's log start, end offset and the group's committed offset.
* :class:`OffsetSource`: the narrow interface (one call); :class:`KafkaOffsetSource` reads the broker.
* :class:`DrainRate`: offsets gained per second over a sliding window of samples.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from intake.kafka.admin import build_admin
from intake.kafka.starting import start_client


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


class DrainRate:
    """Offsets gained per second over the last ``window_s`` of samples (at least the last two are kept).

    :meth:`add` takes one sample and returns the rate: NaN until two samples at different times exist. A
    position lower than the previous one (topic recreated, offsets reset) starts the window again."""

    def __init__(self, window_s: float) -> None:
        self._window_s = window_s
        self._history: deque[tuple[float, int]] = deque()

    def add(self, now: float, position: int) -> float:
        history = self._history
        if history and position < history[-1][1]:
            history.clear()
        history.append((now, position))
        while len(history) > 2 and history[1][0] <= now - self._window_s:
            history.popleft()
        first_t, first_pos = history[0]
        if len(history) < 2 or now <= first_t:
            return math.nan
        return (position - first_pos) / (now - first_t)


class KafkaOffsetSource:
    """Offsets from the broker: an admin client for the group's commits, a group-less consumer for the log ends.

    Clients are started on first use and rebuilt after a failure, so a sampler started while Kafka is down
    recovers by itself. :meth:`close` releases them.
    """

    def __init__(
        self, connection: Callable[[], dict[str, Any]], client_id: str, request_timeout_ms: int = 10_000
    ) -> None:
        """``connection`` returns :func:`intake.kafka.connection_config` (where Kafka is, plaintext or TLS); it is
        called when the clients are built, so constructing this reads no certificate file."""
        self._connection = connection
        self._client_id = client_id
        self._request_timeout_ms = request_timeout_ms
        self._admin: Any = None
        self._consumer: Any = None

    async def _clients(self) -> tuple[Any, Any]:
        if self._admin is None or self._consumer is None:
            connection = self._connection()
            admin = build_admin(connection, self._request_timeout_ms, client_id=self._client_id)
            consumer = AIOKafkaConsumer(
                **connection,
                client_id=self._client_id,
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=self._request_timeout_ms,
            )
            try:
                settle_s = self._request_timeout_ms / 1000
                await start_client(admin.start(), admin.close, settle_s=settle_s)
                await start_client(consumer.start(), consumer.stop, settle_s=settle_s)
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
