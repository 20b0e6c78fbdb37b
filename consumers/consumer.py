"""What the worker needs of a Kafka consumer: a narrow protocol, sized to the calls made. Implemented by aiokafka's
``AIOKafkaConsumer`` and by :mod:`intake.memory_kafka`'s ``MemoryConsumer``. The records and partitions it hands
out are :mod:`intake.kafka.records`' protocols (re-exported here)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from intake.kafka.records import ConsumedRecord, TopicPartitionLike

__all__ = ["ConsumedRecord", "ConsumerLike", "TopicPartitionLike"]


class ConsumerLike(Protocol):
    """The calls the worker makes on a consumer. Partitions are hashable ``(topic, partition)`` values."""

    async def getmany(
        self, *partitions: TopicPartitionLike, timeout_ms: int = 0, max_records: int | None = None
    ) -> Mapping[TopicPartitionLike, Sequence[ConsumedRecord]]: ...

    async def commit(self, offsets: Mapping[TopicPartitionLike, int] | None = None) -> None: ...

    def seek(self, partition: TopicPartitionLike, offset: int) -> None: ...

    def pause(self, *partitions: TopicPartitionLike) -> None: ...

    def resume(self, *partitions: TopicPartitionLike) -> None: ...

    def assignment(self) -> Collection[TopicPartitionLike]: ...
