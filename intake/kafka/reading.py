"""Reading topics: the group member the workers run (:func:`build_consumer`) and the group-less read of a whole
topic (:func:`read_topic`) that tools and replays use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from intake.kafka.admin import topic_partitions
from intake.kafka.config import FETCH_MAX_BYTES, connection_config, consumer_config
from intake.kafka.starting import start_client
from intake.settings import Settings


def build_consumer(
    settings: Settings,
    *topics: str,
    listener: ConsumerRebalanceListener | None = None,
) -> AIOKafkaConsumer:
    """A new, unstarted consumer subscribed to ``topics`` (with ``listener`` for rebalances, if given).
    The caller starts and stops it."""
    consumer = AIOKafkaConsumer(**consumer_config(settings))
    consumer.subscribe(list(topics), listener=listener)
    return consumer


async def read_topic(settings: Settings, topic: str) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` from the beginning to the end offsets captured at the start, in partition and
    offset order. Joins no consumer group and commits nothing, so it terminates and disturbs no worker."""
    numbers = await topic_partitions(settings, topic)
    consumer = AIOKafkaConsumer(
        **connection_config(settings),
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=settings.limits.max_message_bytes,
        fetch_max_bytes=max(settings.limits.max_message_bytes, FETCH_MAX_BYTES),
    )
    try:
        await start_client(consumer.start(), consumer.stop, settle_s=settings.kafka.request_timeout_s)
        partitions = [TopicPartition(topic, p) for p in numbers]
        if not partitions:
            return
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=2000)
                for record in batch.get(tp, []):
                    if record.offset >= ends[tp]:
                        break
                    yield record
    finally:
        await _stop_groupless(consumer)


async def _stop_groupless(consumer: AIOKafkaConsumer) -> None:
    """Stop a group-less consumer. aiokafka may surface the cancellation of its own internal task here;
    that one is swallowed, a cancellation of the caller is not."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
