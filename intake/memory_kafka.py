"""An in-memory Kafka for tests: topics of partitions, offsets, consumer-group commits, pause/resume and seek.

As getsentry/arroyo's ``LocalBroker``: one :class:`MemoryBroker` holds the logs and the groups' committed
offsets; :class:`MemorySink` appends to it (the :class:`intake.kafka.RecordSink` protocol) and
:class:`MemoryConsumer` reads from it with the calls the worker makes on an aiokafka consumer (``getmany``,
``commit``, ``seek``, ``pause``, ``resume``, ``assignment``) plus ``committed`` and ``position``. The same
contract suite runs against it and against the real Kafka (``tests/intake/test_kafka_contract.py``), so what
it does is what Kafka does for those calls.

Semantics (those of Kafka with manual commits and ``auto_offset_reset="earliest"``):

* A record's key picks its partition (the same key, the same partition); offsets count from 0 per partition.
* A consumer is the group's only member: it is assigned every partition of its topics at creation. It starts
  each partition at the group's committed offset, or at 0. ``getmany`` returns what the unpaused partitions
  hold past the consumer's position (at most ``max_records`` in all) and advances the position; with nothing
  to return it waits up to ``timeout_ms`` for a record to arrive.
* ``commit(offsets)`` stores the group's next offsets (``commit()`` stores the positions); ``seek`` moves the
  position, so the next ``getmany`` redelivers from there; a paused partition returns nothing until resumed.

Nothing here does I/O; nothing blocks except the awaited ``getmany`` wait. Not thread-safe (one event loop).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from intake.kafka import Delivery, QueueUnavailable
from intake.kafka.records import TopicPartitionLike

Headers = Sequence[tuple[str, bytes]]


class Partition(NamedTuple):
    """A topic's partition; equal to (and hashed as) aiokafka's ``TopicPartition`` of the same values. A
    :class:`~intake.kafka.records.TopicPartitionLike`."""

    topic: str
    partition: int


@dataclass(frozen=True)
class MemoryRecord:
    """One appended record, with the attributes of an aiokafka ``ConsumerRecord`` the consumers read: a
    :class:`~intake.kafka.records.ConsumedRecord`."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass
class MemoryBroker:
    """The logs of every topic and the committed offsets of every group."""

    logs: dict[str, list[list[MemoryRecord]]] = field(default_factory=dict)
    committed: dict[tuple[str, Partition], int] = field(default_factory=dict)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def create_topic(self, name: str, partitions: int = 1) -> None:
        """Create ``name`` with ``partitions`` empty partitions; idempotent. Raises ValueError for < 1 partition."""
        if partitions < 1:
            raise ValueError("a topic needs at least one partition")
        self.logs.setdefault(name, [[] for _ in range(partitions)])

    def partitions(self, topic: str) -> list[Partition]:
        """The partitions of ``topic``. Raises KeyError when it does not exist."""
        return [Partition(topic, p) for p in range(len(self.logs[topic]))]

    def append(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers = (), partition: int | None = None
    ) -> Delivery:
        """Append a record (to ``partition``, or the key's partition) and return where it went. The topic is
        created with one partition if it does not exist (as a broker with auto-creation)."""
        self.create_topic(topic)
        log = self.logs[topic]
        if partition is None:
            partition = zlib.crc32(key) % len(log) if key is not None else 0
        records = log[partition]
        records.append(MemoryRecord(topic, partition, len(records), key, value, tuple(headers)))
        self._arrived.set()
        return Delivery(partition, len(records) - 1)

    def records(self, topic: str) -> list[MemoryRecord]:
        """Every record of ``topic``, partition by partition, in offset order (empty for an unknown topic)."""
        return [r for log in self.logs.get(topic, []) for r in log]

    async def arrival(self, timeout_s: float) -> None:
        """Wait until a record is appended or ``timeout_s`` passed."""
        self._arrived.clear()
        try:
            async with asyncio.timeout(timeout_s):
                await self._arrived.wait()
        except TimeoutError:
            return


class MemorySink:
    """:class:`intake.kafka.RecordSink` over a :class:`MemoryBroker`; ``down`` makes it refuse like a broker
    that does not acknowledge (:class:`QueueUnavailable`, nothing appended)."""

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker
        self.down = False

    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers = ()) -> Delivery:
        if self.down:
            raise QueueUnavailable("memory broker down")
        return self.broker.append(topic, key, value, headers)

    def ready(self) -> bool:
        return not self.down

    def pending(self) -> int:
        return 0


class MemoryConsumer:
    """The only member of ``group``, assigned every partition of ``topics`` (which must exist)."""

    def __init__(self, broker: MemoryBroker, group: str, topics: Iterable[str]) -> None:
        self.broker, self.group = broker, group
        self._assigned = [tp for topic in topics for tp in broker.partitions(topic)]
        self._positions = {tp: broker.committed.get((group, tp), 0) for tp in self._assigned}
        self._paused: set[Partition] = set()

    async def getmany(
        self, *partitions: TopicPartitionLike, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartitionLike, list[MemoryRecord]]:
        """Records past the positions of the unpaused (given, or assigned) partitions, at most ``max_records``;
        waits up to ``timeout_ms`` when there are none."""
        out = self._fetch(partitions, max_records)
        if not out and timeout_ms > 0:
            await self.broker.arrival(timeout_ms / 1000)
            out = self._fetch(partitions, max_records)
        return out

    def _fetch(
        self, partitions: Sequence[TopicPartitionLike], max_records: int | None
    ) -> dict[TopicPartitionLike, list[MemoryRecord]]:
        budget = max_records if max_records is not None else float("inf")
        out: dict[TopicPartitionLike, list[MemoryRecord]] = {}
        for tp in [_own(p) for p in partitions] or self._assigned:
            if tp in self._paused or budget <= 0:
                continue
            log = self.broker.logs[tp.topic][tp.partition]
            start = self._positions[tp]
            taken = log[start : start + int(min(budget, len(log)))]
            if taken:
                out[tp] = taken
                self._positions[tp] = start + len(taken)
                budget -= len(taken)
        return out

    async def commit(self, offsets: Mapping[TopicPartitionLike, int] | None = None) -> None:
        """Store the group's next offsets (``offsets``, or the current positions)."""
        for tp, offset in self._positions.items() if offsets is None else offsets.items():
            self.broker.committed[(self.group, _own(tp))] = offset

    async def committed(self, partition: TopicPartitionLike) -> int | None:
        """The group's committed offset of ``partition`` (None when nothing was committed)."""
        return self.broker.committed.get((self.group, _own(partition)))

    async def position(self, partition: TopicPartitionLike) -> int:
        """The offset of the next record ``getmany`` returns from ``partition``."""
        return self._positions[_own(partition)]

    def seek(self, partition: TopicPartitionLike, offset: int) -> None:
        self._positions[_own(partition)] = offset

    def pause(self, *partitions: TopicPartitionLike) -> None:
        self._paused.update(_own(tp) for tp in partitions)

    def resume(self, *partitions: TopicPartitionLike) -> None:
        self._paused.difference_update(_own(tp) for tp in partitions)

    def paused(self) -> set[Partition]:
        return set(self._paused)

    def assignment(self) -> set[Partition]:
        return set(self._assigned)


def _own(tp: TopicPartitionLike) -> Partition:
    """``tp`` (an aiokafka ``TopicPartition``, say) as this broker's :class:`Partition`."""
    return Partition(tp.topic, tp.partition)
