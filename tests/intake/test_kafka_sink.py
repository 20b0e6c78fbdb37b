"""The sinks with fake producers (aiokafka, librdkafka through confluent-kafka and directly): 503 until started,
acknowledged records answer where they were appended, failures are refused, and a broken producer is replaced by
a new one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, OutOfOrderSequenceNumber

from intake.kafka import (
    AIOKafkaSink,
    ConfluentSink,
    Delivery,
    KeptRecordSink,
    QueueUnavailable,
    RdkafkaSink,
    confluent_config,
    producer_config,
)
from intake.kafka.librdkafka import Failure, QueueFull, Report
from tests.support import unit_settings


class FakeClient:
    closed = False

    async def force_metadata_update(self) -> bool:
        return True

    async def close(self) -> None:
        self.closed = True


class FakeProducer:
    """Fails to start ``start_failures`` times; each send fails with the next error of ``errors``, then succeeds."""

    def __init__(self, errors: list[Exception], start_failures: int = 0) -> None:
        self.errors = errors
        self.start_failures = start_failures
        self.sent: list[bytes] = []
        self.stopped = False
        self.client = FakeClient()

    async def start(self) -> None:
        if self.start_failures:
            self.start_failures -= 1
            raise KafkaConnectionError("broker down")

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, value: bytes, key: bytes, headers: Any) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.errors:
            fut.set_exception(self.errors.pop(0))
        else:
            self.sent.append(value)
            fut.set_result(SimpleNamespace(partition=0, offset=len(self.sent) - 1))
        return fut


async def _until(check: Any, timeout_s: float = 5) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 - polling a condition the fakes do not signal
            await asyncio.sleep(0.01)


@pytest.fixture
async def running() -> Any:
    tasks: list[asyncio.Task[None]] = []

    def start(sink: KeptRecordSink) -> None:
        tasks.append(asyncio.create_task(sink.keep_connected(probe_interval_s=0.05)))

    yield start
    for t in tasks:
        t.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await t


async def test_refuses_until_started_then_sends(running: Any) -> None:
    producers = [FakeProducer([], start_failures=2)]
    sink = AIOKafkaSink(lambda: producers[-1], timeout_s=1.0, readiness_max_age_s=5.0)
    with pytest.raises(QueueUnavailable):
        await sink.send("t", b"k", b"v")
    assert not sink.ready()
    running(sink)
    await _until(sink.ready)
    assert await sink.send("t", b"k", b"v") == Delivery(partition=0, offset=0)
    assert await sink.send("t", b"k", b"w") == Delivery(partition=0, offset=1)
    assert producers[0].sent == [b"v", b"w"]


async def test_an_aiokafka_success_without_an_offset_is_not_an_acknowledgement(running: Any) -> None:
    producer = FakeProducer([])
    sink = AIOKafkaSink(lambda: producer, timeout_s=1.0, readiness_max_age_s=5.0)
    running(sink)
    await _until(sink.ready)
    real_send = producer.send

    async def duplicate_sequence(topic: str, value: bytes, key: bytes, headers: Any) -> asyncio.Future[Any]:
        fut = await real_send(topic, value, key, headers)
        fut.result().offset = -1  # aiokafka on DUPLICATE_SEQUENCE_NUMBER: success, no offset
        return fut

    producer.send = duplicate_sequence  # type: ignore[method-assign]
    with pytest.raises(QueueUnavailable, match="without an offset"):
        await sink.send("t", b"k", b"v")
    producer.send = real_send  # type: ignore[method-assign]
    assert await sink.send("t", b"k", b"w") == Delivery(partition=0, offset=1)  # the producer was kept
    assert sink.ready()


async def test_wait_connected_returns_once_the_producer_has_started(running: Any) -> None:
    producers = [FakeProducer([], start_failures=1)]
    sink = AIOKafkaSink(lambda: producers[-1], timeout_s=1.0, readiness_max_age_s=5.0)
    assert not await sink.wait_connected(0.05)  # no keeper: never connects
    running(sink)
    assert await sink.wait_connected(5.0)
    assert await sink.send("t", b"k", b"v") == Delivery(partition=0, offset=0)


async def test_broken_producer_is_replaced(running: Any) -> None:
    made: list[FakeProducer] = []

    def factory() -> FakeProducer:
        made.append(FakeProducer([OutOfOrderSequenceNumber()] if not made else []))
        return made[-1]

    sink = AIOKafkaSink(factory, timeout_s=1.0, readiness_max_age_s=5.0)
    running(sink)
    await _until(lambda: len(made) == 1 and sink.ready())
    with pytest.raises(QueueUnavailable):
        await sink.send("t", b"k", b"first")  # the sender died: this producer can never send again
    await _until(lambda: sink.replacements == 1 and len(made) == 2)
    await _until(sink.ready)
    await sink.send("t", b"k", b"second")
    assert made[0].stopped and made[1].sent == [b"second"]


async def test_repeated_failures_also_replace(running: Any) -> None:
    made: list[FakeProducer] = []

    def factory() -> FakeProducer:
        made.append(FakeProducer([TimeoutError()] * 3 if not made else []))
        return made[-1]

    sink = AIOKafkaSink(factory, timeout_s=1.0, readiness_max_age_s=5.0, reset_after=3)
    running(sink)
    await _until(lambda: len(made) == 1 and sink.ready())
    for _ in range(3):
        with pytest.raises(QueueUnavailable):
            await sink.send("t", b"k", b"x")
    await _until(lambda: len(made) == 2)


class StuckProducer(FakeProducer):
    """A producer whose flush never ends (a broker gone mid-flush)."""

    async def stop(self) -> None:
        await asyncio.Event().wait()


async def test_close_is_bounded_when_the_producer_cannot_stop(running: Any) -> None:
    producer = StuckProducer([])
    sink = AIOKafkaSink(lambda: producer, timeout_s=0.2, readiness_max_age_s=5.0)
    running(sink)
    await _until(sink.ready)
    async with asyncio.timeout(5):  # 2 x 0.2 s for the flush, then 0.2 s each to discard
        await sink.close()
    assert producer.client.closed


class SlowStopProducer(FakeProducer):
    """Its stop takes a while (a flush in progress)."""

    async def stop(self) -> None:
        await asyncio.sleep(0.2)
        await super().stop()


async def test_a_cancelled_close_still_stops_the_producer(running: Any) -> None:
    producer = SlowStopProducer([])
    sink = AIOKafkaSink(lambda: producer, timeout_s=1.0, readiness_max_age_s=5.0)
    running(sink)
    await _until(sink.ready)
    closing = asyncio.create_task(sink.close())
    await asyncio.sleep(0.05)
    closing.cancel()  # the owner gives up waiting: the producer must not be left half-stopped
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert producer.stopped


class FakeError:
    """A ``confluent_kafka.KafkaError`` as the delivery report carries it."""

    def __init__(self, name: str, fatal: bool = False) -> None:
        self._name, self._fatal = name, fatal

    def name(self) -> str:
        return self._name

    def fatal(self) -> bool:
        return self._fatal


class FakeMessage:
    def __init__(self, partition: int, offset: int) -> None:
        self._partition, self._offset = partition, offset

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


class FakeConfluent:
    """A ``confluent_kafka.Producer`` stand-in: ``poll`` (on the sink's thread) serves delivery reports; each
    produce fails with the next of ``errors`` (a report error, or an exception raised by ``produce``)."""

    def __init__(self, on_error: Any, errors: list[Any] | None = None, unreachable: int = 0) -> None:
        self.on_error = on_error
        self.errors = list(errors or [])
        self.unreachable = unreachable
        self.sent: list[bytes] = []
        self.reports: list[tuple[Any, Any, Any]] = []
        self.flushed = False
        self.hold = False
        self.offsets_known = True

    def produce(self, topic: str, value: bytes, key: bytes, *, headers: Any = None, on_delivery: Any = None) -> None:
        error = self.errors.pop(0) if self.errors else None
        if isinstance(error, Exception):
            raise error
        if error is None:
            self.sent.append(value)
        offset = len(self.sent) - 1 if self.offsets_known else -1001  # librdkafka's RD_KAFKA_OFFSET_INVALID
        self.reports.append((on_delivery, error, FakeMessage(3, offset)))

    def poll(self, timeout: float) -> int:
        if self.hold or not self.reports:
            time.sleep(min(timeout, 0.005))
            return 0
        callback, error, msg = self.reports.pop(0)
        callback(error, msg)
        return 1

    def flush(self, timeout: float) -> int:
        self.flushed = True
        return 0

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        if self.unreachable:
            self.unreachable -= 1
            raise RuntimeError("KafkaException: transport failure")
        return SimpleNamespace(topics={})


async def test_confluent_sink_acknowledges_with_partition_and_offset(running: Any) -> None:
    made: list[FakeConfluent] = []

    def factory(on_error: Any) -> FakeConfluent:
        made.append(FakeConfluent(on_error, unreachable=0 if made else 1))  # the first cannot reach Kafka
        return made[-1]

    sink = ConfluentSink(factory, timeout_s=1.0, readiness_max_age_s=5.0)
    with pytest.raises(QueueUnavailable):
        await sink.send("t", b"k", b"v")  # not started yet
    running(sink)
    await _until(sink.ready)
    assert await sink.send("t", b"k", b"v") == Delivery(partition=3, offset=0)
    assert await sink.send("t", b"k", b"w", [("h", b"1")]) == Delivery(partition=3, offset=1)
    assert len(made) == 2 and made[-1].sent == [b"v", b"w"] and sink.pending() == 0
    made[-1].offsets_known = False  # delivered, but librdkafka did not learn the offset (after a failover)
    with pytest.raises(QueueUnavailable, match="without an offset"):
        await sink.send("t", b"k", b"x")  # not confirmed: the client resends (same Idempotency-Key)
    made[-1].offsets_known = True
    assert await sink.send("t", b"k", b"y") == Delivery(partition=3, offset=3)  # the producer was kept
    assert len(made) == 2
    await sink.close()
    assert made[-1].flushed


async def test_confluent_sink_refuses_failed_full_and_late_records(running: Any) -> None:
    producer: list[FakeConfluent] = []

    def factory(on_error: Any) -> FakeConfluent:
        producer.append(FakeConfluent(on_error, errors=[FakeError("_MSG_TIMED_OUT"), BufferError("queue full")]))
        return producer[-1]

    sink = ConfluentSink(factory, timeout_s=0.3, readiness_max_age_s=5.0)
    running(sink)
    await _until(sink.ready)
    with pytest.raises(QueueUnavailable, match="_MSG_TIMED_OUT"):
        await sink.send("t", b"k", b"a")  # the broker never acknowledged it
    with pytest.raises(QueueUnavailable, match="BufferError"):
        await sink.send("t", b"k", b"b")  # librdkafka's queue is full: refused at once
    producer[-1].hold = True
    with pytest.raises(QueueUnavailable, match="TimeoutError"):
        await sink.send("t", b"k", b"c")  # no report within the timeout: not confirmed
    producer[-1].hold = False
    assert sink.pending() == 0
    await sink.close()


async def test_confluent_sink_replaces_a_producer_after_a_fatal_error(running: Any) -> None:
    made: list[FakeConfluent] = []

    def factory(on_error: Any) -> FakeConfluent:
        made.append(FakeConfluent(on_error, errors=[FakeError("_FATAL", fatal=True)] if not made else []))
        return made[-1]

    sink = ConfluentSink(factory, timeout_s=1.0, readiness_max_age_s=5.0)
    running(sink)
    await _until(lambda: len(made) == 1 and sink.ready())
    with pytest.raises(QueueUnavailable):
        await sink.send("t", b"k", b"first")
    await _until(lambda: sink.replacements == 1 and len(made) == 2 and sink.ready())
    assert await sink.send("t", b"k", b"second") == Delivery(partition=3, offset=0)
    assert made[0].flushed and made[1].sent == [b"second"]
    await sink.close()


def test_confluent_config_matches_the_aiokafka_one() -> None:
    settings = unit_settings()
    conf = confluent_config(settings)
    assert conf["acks"] == "all" and conf["enable.idempotence"] is True
    assert (
        conf["message.max.bytes"] == settings.limits.max_message_bytes == producer_config(settings)["max_request_size"]
    )
    assert conf["message.timeout.ms"] == settings.http.produce_timeout_s * 1000


class FakeNative:
    """A :class:`~intake.kafka.librdkafka.NativeProducer` stand-in: its pipe becomes readable when a report waits
    (unless ``hold``); each produce fails with the next of ``errors`` (an exception raised by ``produce``, or a
    report's error code)."""

    def __init__(self, errors: list[Any] | None = None, unreachable: int = 0) -> None:
        self.errors = list(errors or [])
        self.unreachable = unreachable
        self.sent: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]] = []
        self.waiting: list[Report | Failure] = []
        self.read_fd, self.write_fd = os.pipe()
        self.hold = False
        self.offsets_known = True
        self.flushed = self.closed = False
        self.ids = 0

    def fileno(self) -> int:
        return self.read_fd

    def _signal(self) -> None:
        if not self.hold:
            os.write(self.write_fd, b"1")

    def produce(self, topic: str, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] = ()) -> int:
        error = self.errors.pop(0) if self.errors else None
        if isinstance(error, Exception):
            raise error
        self.ids += 1
        if error is None:
            self.sent.append((topic, key, value, list(headers)))
            offset = len(self.sent) - 1 if self.offsets_known else -1001  # RD_KAFKA_OFFSET_INVALID
            self.waiting.append(Report(self.ids, 0, "", 3, offset))
        else:
            code, name = error
            self.waiting.append(Report(self.ids, code, name, 3, -1001))
        self._signal()
        return self.ids

    def fail(self, failure: Failure) -> None:
        self.waiting.append(failure)
        self._signal()

    def take_events(self) -> list[Report | Failure]:
        with contextlib.suppress(BlockingIOError):
            os.set_blocking(self.read_fd, False)
            os.read(self.read_fd, 4096)
        if self.hold:
            return []
        taken, self.waiting = self.waiting, []
        return taken

    def flush(self, timeout_s: float) -> None:
        self.flushed = True

    def metadata(self, timeout_s: float) -> bool:
        if self.unreachable:
            self.unreachable -= 1
            return False
        return True

    def close(self) -> None:
        assert not self.closed, "closed twice"
        self.closed = True
        os.close(self.read_fd)
        os.close(self.write_fd)


async def test_rdkafka_sink_acknowledges_from_the_reports_on_the_loop(running: Any) -> None:
    made: list[FakeNative] = []

    def factory() -> FakeNative:
        made.append(FakeNative(unreachable=0 if made else 1))  # the first cannot reach Kafka
        return made[-1]

    sink = RdkafkaSink(factory, timeout_s=1.0, readiness_max_age_s=5.0)
    with pytest.raises(QueueUnavailable):
        await sink.send("t", b"k", b"v")  # not started yet
    running(sink)
    await _until(sink.ready)
    assert len(made) == 2 and made[0].closed and not made[1].closed  # the unreachable one was destroyed
    assert await sink.send("t", b"k", b"v") == Delivery(partition=3, offset=0)
    assert await sink.send("t", b"k", b"w", [("h", b"1")]) == Delivery(partition=3, offset=1)
    assert made[-1].sent == [("t", b"k", b"v", []), ("t", b"k", b"w", [("h", b"1")])] and sink.pending() == 0
    made[-1].offsets_known = False  # delivered, librdkafka says, but without an offset (an implicit ack)
    with pytest.raises(QueueUnavailable, match="without an offset"):
        await sink.send("t", b"k", b"x")  # not confirmed: the client resends (same Idempotency-Key)
    made[-1].offsets_known = True
    assert await sink.send("t", b"k", b"y") == Delivery(partition=3, offset=3)  # the producer was kept
    assert len(made) == 2
    await sink.close()
    assert made[-1].flushed and made[-1].closed


async def test_rdkafka_sink_refuses_failed_full_and_late_records(running: Any) -> None:
    made: list[FakeNative] = []

    def factory() -> FakeNative:
        made.append(FakeNative(errors=[(-192, "_MSG_TIMED_OUT"), QueueFull(-184, "_QUEUE_FULL")]))
        return made[-1]

    sink = RdkafkaSink(factory, timeout_s=0.3, readiness_max_age_s=5.0)
    running(sink)
    await _until(sink.ready)
    with pytest.raises(QueueUnavailable, match="_MSG_TIMED_OUT"):
        await sink.send("t", b"k", b"a")  # the broker never acknowledged it
    with pytest.raises(QueueUnavailable, match="_QUEUE_FULL"):
        await sink.send("t", b"k", b"b")  # librdkafka's queue is full: refused at once
    made[-1].hold = True
    with pytest.raises(QueueUnavailable, match="TimeoutError"):
        await sink.send("t", b"k", b"c")  # no report within the timeout: not confirmed
    made[-1].hold = False
    made[-1].fail(Failure(-195, "_TRANSPORT", "broker down", fatal=False))  # not fatal: the producer is kept
    assert await sink.send("t", b"k", b"d") == Delivery(partition=3, offset=1)  # the late report of c is ignored
    assert sink.pending() == 0 and len(made) == 1
    await sink.close()


async def test_rdkafka_sink_replaces_a_producer_after_a_fatal_error(running: Any) -> None:
    made: list[FakeNative] = []

    def factory() -> FakeNative:
        made.append(FakeNative())
        return made[-1]

    sink = RdkafkaSink(factory, timeout_s=1.0, readiness_max_age_s=5.0)
    running(sink)
    await _until(lambda: len(made) == 1 and sink.ready())
    made[0].hold = True
    waiting = asyncio.create_task(sink.send("t", b"k", b"first"))
    await _until(lambda: sink.pending() == 1)
    made[0].hold = False
    made[0].waiting.clear()  # its report never comes: the fatal error ends the producer first
    made[0].fail(Failure(-150, "_FATAL", "idempotent state lost", fatal=True))
    with pytest.raises(QueueUnavailable, match="_DESTROY"):
        await waiting  # the replaced producer's sends still waiting fail at once
    await _until(lambda: sink.replacements == 1 and len(made) == 2 and sink.ready())
    assert await sink.send("t", b"k", b"second") == Delivery(partition=3, offset=0)
    assert made[0].flushed and made[0].closed and made[1].sent == [("t", b"k", b"second", [])]
    await sink.close()


async def _cancel_the_first_start(sink: Any, made: list[Any]) -> None:
    """Keep ``sink`` connected, cancel that while its first producer's start waits for the cluster (the owner shuts
    down), then close the sink."""
    keeper = asyncio.create_task(sink.keep_connected(probe_interval_s=0.05))
    await _until(lambda: len(made) == 1)
    keeper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await keeper
    await sink.close()


class SlowStartNative(FakeNative):
    """Its metadata request (in a worker thread) takes a while and finds no broker."""

    def metadata(self, timeout_s: float) -> bool:
        time.sleep(0.3)
        return False


async def test_rdkafka_sink_closes_a_producer_whose_start_was_cancelled() -> None:
    made: list[FakeNative] = []

    def factory() -> FakeNative:
        made.append(SlowStartNative())
        return made[-1]

    sink = RdkafkaSink(factory, timeout_s=1.0, readiness_max_age_s=5.0)
    await _cancel_the_first_start(sink, made)
    assert made[0].closed  # destroyed: no librdkafka threads, pipe or loop reader left behind
    assert not asyncio.get_running_loop().remove_reader(made[0].read_fd)


class SlowStartConfluent(FakeConfluent):
    """Its metadata request (in a worker thread) takes a while and finds no broker."""

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        time.sleep(0.3)
        raise RuntimeError("KafkaException: transport failure")


async def test_confluent_sink_stops_a_producer_whose_start_was_cancelled() -> None:
    made: list[SlowStartConfluent] = []

    def factory(on_error: Any) -> SlowStartConfluent:
        made.append(SlowStartConfluent(on_error))
        return made[-1]

    sink = ConfluentSink(factory, timeout_s=1.0, readiness_max_age_s=5.0)
    earlier = set(threading.enumerate())  # another test's poller still stopping is not this sink's
    await _cancel_the_first_start(sink, made)
    assert made[0].flushed  # discarded: flushed and its poll thread stopped
    assert not _pollers_alive(earlier)


def _pollers_alive(earlier: set[threading.Thread]) -> list[threading.Thread]:
    """The ``kafka-poll`` threads started since ``earlier`` was taken and still running."""
    return [t for t in threading.enumerate() if t.name == "kafka-poll" and t.is_alive() and t not in earlier]


async def _cancel_while_discarding(sink: Any, made: list[Any]) -> None:
    """Keep ``sink`` connected; its first producer finds no cluster, and while it is being discarded (its flush
    takes a while in a worker thread) the keeper is cancelled (the owner shuts down). Returns once the cancelled
    keeper has ended."""
    keeper = asyncio.create_task(sink.keep_connected(probe_interval_s=0.05))
    await _until(lambda: len(made) == 1 and made[0].flushing)
    keeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await keeper


class SlowFlushNative(FakeNative):
    """Finds no broker at once; its flush takes a while."""

    flushing = False

    def metadata(self, timeout_s: float) -> bool:
        return False

    def flush(self, timeout_s: float) -> None:
        self.flushing = True
        time.sleep(0.3)
        super().flush(timeout_s)


async def test_rdkafka_sink_destroys_a_producer_when_cancelled_while_discarding_it() -> None:
    made: list[SlowFlushNative] = []

    def factory() -> SlowFlushNative:
        made.append(SlowFlushNative())
        return made[-1]

    sink = RdkafkaSink(factory, timeout_s=1.0, readiness_max_age_s=5.0)
    await _cancel_while_discarding(sink, made)
    assert made[0].flushed and made[0].closed  # the discard went on to its end: no librdkafka threads left
    assert len(made) == 1
    await sink.close()


class SlowFlushConfluent(FakeConfluent):
    """Finds no broker at once; its flush takes a while."""

    flushing = False

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        raise RuntimeError("KafkaException: transport failure")

    def flush(self, timeout: float) -> int:
        self.flushing = True
        time.sleep(0.3)
        return super().flush(timeout)


async def test_confluent_sink_stops_polling_when_cancelled_while_discarding_a_producer() -> None:
    made: list[SlowFlushConfluent] = []

    def factory(on_error: Any) -> SlowFlushConfluent:
        made.append(SlowFlushConfluent(on_error))
        return made[-1]

    sink = ConfluentSink(factory, timeout_s=1.0, readiness_max_age_s=5.0)
    earlier = set(threading.enumerate())
    await _cancel_while_discarding(sink, made)
    assert made[0].flushed
    assert not _pollers_alive(earlier)  # its poll thread was stopped and joined before the cancellation ended
    await sink.close()
