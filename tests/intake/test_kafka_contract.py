"""One contract suite for Kafka, run against the in-memory broker (intake.memory_kafka) and against the real Kafka
of the local stack (integration: fails, never skips, without it).

It covers what the consumers rely on: a sink's acknowledgement names where the record went; a consumer reads each
partition in offset order with key, value and headers intact; a group's commit is where its next consumer starts
(another group starts from the beginning); ``seek`` redelivers; a paused partition yields nothing until resumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from intake.kafka import Delivery, RecordSink, ensure_topics, running_sink
from intake.memory_kafka import MemoryBroker, MemoryConsumer, MemorySink
from intake.settings import Settings
from intake.topics import TopicSpec
from tests.integration.conftest import wait_until

WAIT_S = 60.0
"""Upper bound for records that must arrive (the test fails past it; nothing is measured)."""
QUIET_MS = 1500
"""How long a fetch that must return nothing is given."""


class Consumer(Protocol):
    async def getmany(self, *partitions: Any, timeout_ms: int = 0, max_records: int | None = None) -> Any: ...

    async def commit(self, offsets: Any = None) -> None: ...

    async def committed(self, partition: Any) -> int | None: ...

    def seek(self, partition: Any, offset: int) -> None: ...

    def pause(self, *partitions: Any) -> None: ...

    def resume(self, *partitions: Any) -> None: ...

    def assignment(self) -> Any: ...


class Kafka(Protocol):
    sink: RecordSink

    async def topic(self, partitions: int) -> str: ...

    async def consumer(self, group: str, topic: str) -> Consumer: ...


class InMemory:
    def __init__(self) -> None:
        self.broker = MemoryBroker()
        self.sink: RecordSink = MemorySink(self.broker)

    async def topic(self, partitions: int) -> str:
        name = f"contract.{uuid.uuid4().hex[:8]}"
        self.broker.create_topic(name, partitions)
        return name

    async def consumer(self, group: str, topic: str) -> Consumer:
        return MemoryConsumer(self.broker, group, [topic])


class RealKafka:
    def __init__(self, settings: Settings, sink: RecordSink) -> None:
        self.settings, self.sink = settings, sink
        self.consumers: list[AIOKafkaConsumer] = []

    async def topic(self, partitions: int) -> str:
        name = f"{self.settings.kafka.topic_prefix}.contract.{uuid.uuid4().hex[:8]}"
        await ensure_topics(self.settings, [TopicSpec(name, partitions, 1, {})])
        return name

    async def consumer(self, group: str, topic: str) -> Consumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka.bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        self.consumers.append(consumer)
        parts = sorted(consumer.partitions_for_topic(topic) or ()) or await _partitions(consumer, topic)
        consumer.assign([TopicPartition(topic, p) for p in parts])
        return consumer  # type: ignore[no-any-return]

    async def close(self) -> None:
        for consumer in self.consumers:
            with contextlib.suppress(Exception):
                await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    async with asyncio.timeout(WAIT_S):
        while not (parts := consumer.partitions_for_topic(topic)):
            await consumer._client.force_metadata_update()  # a topic just created
    return sorted(parts)


@pytest.fixture(
    params=[
        "memory",
        pytest.param("kafka", marks=pytest.mark.integration),
        pytest.param("kafka-confluent", marks=pytest.mark.integration),
    ]
)
async def kafka(request: pytest.FixtureRequest) -> AsyncIterator[Kafka]:
    """The in-memory broker, the real Kafka through the default producer (``rdkafka``: librdkafka's C API, values
    not copied), and through ``confluent`` (the same library through confluent-kafka)."""
    if request.param == "memory":
        yield InMemory()
        return
    settings: Settings = request.getfixturevalue("live_settings")
    if request.param == "kafka-confluent":
        settings = replace(settings, kafka=replace(settings.kafka, producer="confluent"))
    async with running_sink(settings) as sink:
        await wait_until(_ready(sink), WAIT_S, "the producer")  # the keeper connects in the background
        real = RealKafka(settings, sink)
        try:
            yield real
        finally:
            await real.close()


def _ready(sink: RecordSink) -> Callable[[], Awaitable[bool]]:
    async def ready() -> bool:
        return sink.ready()

    return ready


def _group() -> str:
    return f"contract-{uuid.uuid4().hex[:8]}"


async def take(consumer: Consumer, n: int) -> list[Any]:
    """Fetch until ``n`` records came (fails after ``WAIT_S``), in the order they were returned."""
    got: list[Any] = []
    async with asyncio.timeout(WAIT_S):
        while len(got) < n:
            batches: Mapping[Any, Sequence[Any]] = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                got.extend(records)
    assert len(got) == n, [(r.partition, r.offset) for r in got]
    return got


async def nothing(consumer: Consumer) -> None:
    assert await consumer.getmany(timeout_ms=QUIET_MS) == {}


async def test_an_acknowledgement_names_where_the_record_is(kafka: Kafka) -> None:
    topic = await kafka.topic(2)
    sent = [
        await kafka.sink.send(topic, b"k%d" % (i % 3), b"v%d" % i, [("h", b"%d" % i), ("h", b"x")]) for i in range(6)
    ]
    assert all(isinstance(d, Delivery) for d in sent)
    records = await take(await kafka.consumer(_group(), topic), 6)
    assert {(r.partition, r.offset): (r.key, r.value, list(r.headers)) for r in records} == {
        (d.partition, d.offset): (b"k%d" % (i % 3), b"v%d" % i, [("h", b"%d" % i), ("h", b"x")])
        for i, d in enumerate(sent)
    }
    by_key: dict[bytes, set[int]] = {}
    for i, d in enumerate(sent):
        by_key.setdefault(b"k%d" % (i % 3), set()).add(d.partition)
    assert all(len(parts) == 1 for parts in by_key.values())  # one key, one partition
    for p in {d.partition for d in sent}:
        offsets = [r.offset for r in records if r.partition == p]
        assert offsets == sorted(offsets) == list(range(len(offsets)))  # offset order, from 0, no gaps


async def test_a_groups_commit_is_where_its_next_consumer_starts(kafka: Kafka) -> None:
    topic = await kafka.topic(1)
    for i in range(5):
        await kafka.sink.send(topic, b"k", b"v%d" % i)
    group = _group()
    first = await kafka.consumer(group, topic)
    tp = TopicPartition(topic, 0)
    assert await first.committed(tp) is None
    assert [r.value for r in await take(first, 5)] == [b"v0", b"v1", b"v2", b"v3", b"v4"]
    await first.commit({tp: 3})
    assert await first.committed(tp) == 3
    again = await kafka.consumer(group, topic)
    assert [r.value for r in await take(again, 2)] == [b"v3", b"v4"]
    other = await kafka.consumer(_group(), topic)
    assert len(await take(other, 5)) == 5  # another group starts from the beginning


async def test_seek_redelivers_from_the_offset(kafka: Kafka) -> None:
    topic = await kafka.topic(1)
    for i in range(4):
        await kafka.sink.send(topic, b"k", b"v%d" % i)
    consumer = await kafka.consumer(_group(), topic)
    tp = TopicPartition(topic, 0)
    assert len(await take(consumer, 4)) == 4
    await nothing(consumer)
    consumer.seek(tp, 1)
    assert [r.offset for r in await take(consumer, 3)] == [1, 2, 3]


async def test_a_paused_partition_yields_nothing_until_resumed(kafka: Kafka) -> None:
    topic = await kafka.topic(2)
    one = await kafka.sink.send(topic, b"a", b"first")
    consumer = await kafka.consumer(_group(), topic)
    tp = TopicPartition(topic, one.partition)
    assert tp in consumer.assignment()
    assert [r.value for r in await take(consumer, 1)] == [b"first"]
    consumer.pause(tp)
    await kafka.sink.send(topic, b"a", b"second")  # same key: same partition, which is paused
    await nothing(consumer)
    consumer.resume(tp)
    assert [r.value for r in await take(consumer, 1)] == [b"second"]
