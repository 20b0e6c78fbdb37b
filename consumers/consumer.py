"""What the worker needs of a Kafka consumer and of the records it returns: narrow protocols, sized to the calls
made. Implemented by aiokafka's ``AIOKafkaConsumer``/``ConsumerRecord`` and by :mod:`intake.memory_kafka`."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol


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


class ConsumerLike(Protocol):
    """The calls the worker makes on a consumer. Partitions are opaque, hashable ``(topic, partition)`` values."""

    async def getmany(
        self, *partitions: Any, timeout_ms: int = 0, max_records: int | None = None
    ) -> Mapping[Any, Sequence[Any]]: ...

    async def commit(self, offsets: Any = None) -> None: ...

    def seek(self, partition: Any, offset: int) -> None: ...

    def pause(self, *partitions: Any) -> None: ...

    def resume(self, *partitions: Any) -> None: ...

    def assignment(self) -> Collection[Any]: ...
