"""The two producers (``INTAKE_KAFKA_PRODUCER``) against the real Kafka: a key goes to the same partition
whichever of them wrote it, so per-key order (one applicant's submissions, one submission's statuses) holds in a
fleet that runs both, or that moves from one to the other."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
from aiokafka.admin import NewTopic

from intake.kafka import AIOKafkaSink, ConfluentSink, running_sink
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
    for producer in ("aiokafka", "confluent"):
        settings = replace(topics_ready, kafka=replace(topics_ready.kafka, producer=producer))
        async with running_sink(settings) as sink:
            await wait_until(_ready(sink), 30, f"the {producer} producer")
            partitions[producer] = [(await sink.send(topic, key, b"{}")).partition for key in keys]
    assert len(set(partitions["aiokafka"])) > 1
    assert partitions["confluent"] == partitions["aiokafka"]


def _ready(sink: AIOKafkaSink | ConfluentSink) -> Callable[[], Awaitable[bool]]:
    async def ready() -> bool:
        return sink.ready()

    return ready
