"""The three producers (``INTAKE_KAFKA_PRODUCER``) against the real Kafka: a key goes to the same partition
whichever of them wrote it, so per-key order (one applicant's submissions, one submission's statuses) holds in a
fleet that runs several, or that moves from one to another; and the producer that does not copy values
(``rdkafka``) sends exactly the bytes it was given, however soon the caller lets go of them."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import NewTopic

from intake.kafka import KeptRecordSink, running_sink
from intake.kafka.admin import started_admin
from intake.settings import Settings
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration


async def test_both_producers_put_a_key_on_the_same_partition(topics_ready: Settings) -> None:
    topic = f"{topics_ready.kafka.topic_prefix}.producers-test"  # a topic of its own: nothing else reads it
    async with started_admin(topics_ready) as admin:
        await admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)])
    keys = [f"producer-key-{i}".encode() for i in range(24)]
    partitions: dict[str, list[int]] = {}
    for producer in ("aiokafka", "confluent", "rdkafka"):
        settings = replace(topics_ready, kafka=replace(topics_ready.kafka, producer=producer))
        async with running_sink(settings) as sink:
            await wait_until(_ready(sink), 30, f"the {producer} producer")
            partitions[producer] = [(await sink.send(topic, key, b"{}")).partition for key in keys]
    assert len(set(partitions["aiokafka"])) > 1
    assert partitions["confluent"] == partitions["aiokafka"] == partitions["rdkafka"]


async def test_the_producer_that_does_not_copy_sends_the_bytes_it_was_given(topics_ready: Settings) -> None:
    topic = f"{topics_ready.kafka.topic_prefix}.native-values-test"
    async with started_admin(topics_ready) as admin:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    settings = replace(topics_ready, kafka=replace(topics_ready.kafka, producer="rdkafka"))
    digests: dict[tuple[int, int], str] = {}

    async def one(i: int) -> None:
        value = os.urandom(300_000 + i)  # only the sink holds it once sent: freed early, another's bytes would go
        digest = hashlib.sha256(value).hexdigest()
        delivery = await sink.send(topic, b"key-%d" % i, value, [("n", b"%d" % i)])
        assert delivery.offset is not None
        digests[(delivery.partition, delivery.offset)] = digest

    async with running_sink(settings) as sink:
        await wait_until(_ready(sink), 30, "the rdkafka producer")
        await asyncio.gather(*(one(i) for i in range(24)))  # many in flight at once, values made and dropped
        gc.collect()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka.bootstrap, auto_offset_reset="earliest", fetch_max_bytes=52_428_800
    )
    await consumer.start()
    try:
        got: dict[tuple[int, int], str] = {}
        async with asyncio.timeout(60):
            while len(got) < len(digests):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got.update({(r.partition, r.offset): hashlib.sha256(r.value or b"").hexdigest() for r in records})
    finally:
        await consumer.stop()
    assert got == digests


def _ready(sink: KeptRecordSink) -> Callable[[], Awaitable[bool]]:
    async def ready() -> bool:
        return sink.ready()

    return ready
