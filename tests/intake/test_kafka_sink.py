"""AIOKafkaSink with fake producers: 503 until started, and a broken producer is replaced by a new one."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, OutOfOrderSequenceNumber

from intake.kafka import AIOKafkaSink, Delivery, QueueUnavailable


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

    def start(sink: AIOKafkaSink) -> None:
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
