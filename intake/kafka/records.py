"""What a consumer reads of a fetched record and of a partition: narrow protocols, sized to the attributes read.

Implemented by aiokafka's ``ConsumerRecord`` and ``TopicPartition`` and by :mod:`intake.memory_kafka`'s
``MemoryRecord`` and ``Partition`` (whose tests check them against these protocols). Pure: no client library.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class TopicPartitionLike(Protocol):
    """A topic's partition, hashable and equal by ``(topic, partition)``: the key of what ``getmany`` returns and
    what ``seek``/``pause``/``resume``/``commit`` take."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


class ConsumedRecord(Protocol):
    """One fetched record."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...
