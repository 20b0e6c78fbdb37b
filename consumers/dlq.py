"""Inspecting and replaying the dead-letter topic (``intake dlq list|replay``).

A dead letter is the original record (key and value, untouched) with headers saying why it could not be
processed (``intake.error``: ``envelope_invalid`` or ``bug:<ExceptionType>``) and where it came from. Reading
never joins a consumer group and never commits: it reads the topic from the beginning to the end offsets
captured at the start, so it terminates. Replay appends the original records to the submissions topic again
(acks=all); since every write downstream is idempotent, replaying a record twice is harmless.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from intake.kafka import RecordSink
from intake.settings import Settings
from intake.topics import topic_names


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered record. ``value``/``key`` are the original bytes (personal data: never print them)."""

    partition: int
    offset: int
    error: str
    source: str
    key: bytes
    value: bytes


async def read_dead_letters(settings: Settings) -> AsyncIterator[DeadLetter]:
    """Every record of the dead-letter topic that existed when this started, in partition and offset order."""
    topic = topic_names(settings).dead_letter
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=settings.limits.max_message_bytes,
        fetch_max_bytes=max(settings.limits.max_message_bytes, 52_428_800),
    )
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap, request_timeout_ms=settings.kafka.request_timeout_ms
    )
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    numbers = sorted(p["partition"] for t in described if t["topic"] == topic for p in t["partitions"])
    await consumer.start()
    try:
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
                    headers = {k: v.decode(errors="replace") for k, v in record.headers}
                    h = headers.get
                    yield DeadLetter(
                        partition=tp.partition,
                        offset=record.offset,
                        error=h("intake.error", "unknown"),
                        source=f"{h('intake.source.topic', '?')}[{h('intake.source.partition', '?')}]"
                        f"@{h('intake.source.offset', '?')}",
                        key=record.key or b"",
                        value=record.value or b"",
                    )
    finally:
        await _stop(consumer)


async def _stop(consumer: AIOKafkaConsumer) -> None:
    """Stop a group-less consumer. aiokafka may surface the cancellation of its own internal task here;
    that one is swallowed, a cancellation of the caller is not."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


def progress_bar(total: int, out: Callable[[str], object] = sys.stderr.write) -> Callable[[int], None]:
    """A one-line text progress bar: call it with the number done so far."""

    def show(done: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        out(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            out("\n")

    return show


async def replay(
    settings: Settings, sink: RecordSink, letters: list[DeadLetter], progress: Callable[[int], None] | None = None
) -> int:
    """Append ``letters`` to the submissions topic again, in order; returns how many were replayed."""
    topic = topic_names(settings).submissions
    for done, letter in enumerate(letters, start=1):
        await sink.send(
            topic, letter.key, letter.value, [("intake.replayed.from", f"{letter.partition}:{letter.offset}".encode())]
        )
        if progress is not None:
            progress(done)
    return len(letters)
