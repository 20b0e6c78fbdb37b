""":class:`RdkafkaSink`: the :class:`~intake.kafka.sink.RecordSink` over librdkafka's C API, delivery reports
served on the event loop and the value never copied (:mod:`intake.kafka.librdkafka`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from intake.kafka.config import confluent_config
from intake.kafka.kept import DeliveryFailed, KeptSink, runs_to_the_end
from intake.kafka.librdkafka import ERR_FATAL, Failure, NativeProducer, ProduceRefused, Report
from intake.kafka.sink import Delivery, Headers
from intake.settings import Settings


class Native(Protocol):
    """The calls :class:`RdkafkaSink` makes on a :class:`~intake.kafka.librdkafka.NativeProducer` (fakes in unit
    tests)."""

    def fileno(self) -> int: ...

    def produce(self, topic: str, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] = ()) -> int: ...

    def take_events(self) -> list[Report | Failure]: ...

    def flush(self, timeout_s: float) -> None: ...

    def metadata(self, timeout_s: float) -> bool: ...

    def close(self) -> None: ...


class RdkafkaSink(KeptSink):
    """:class:`RecordSink` over librdkafka called directly: ``INTAKE_KAFKA_PRODUCER=rdkafka``.

    Against :class:`~intake.kafka.confluent_sink.ConfluentSink` (the same library through ``confluent-kafka``) it
    saves the copy of each value into librdkafka and the thread that blocks in ``poll``: the event loop watches
    the producer's pipe and settles each :meth:`send` from its delivery report (``loadtests.bench_cpu``).

    ``factory()`` builds a :class:`Native` producer. A fatal error event (the idempotent producer's state is lost)
    makes the keeper replace it. :meth:`send` never blocks the loop; it raises :class:`QueueUnavailable` when the
    record is not acknowledged within the timeout, when librdkafka refuses or cannot queue it, or while no producer
    is connected. A record whose :meth:`send` timed out stays librdkafka's (and its value referenced) until its
    report or the producer's close.
    """

    def __init__(
        self,
        factory: Callable[[], Native],
        timeout_s: float,
        readiness_max_age_s: float,
        reset_after: int = 5,
    ) -> None:
        super().__init__(timeout_s, readiness_max_age_s, reset_after)
        self._factory = factory
        self._producer: Native | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop watching the producers' pipes
        self._waiting: dict[int, asyncio.Future[Report]] = {}

    def _connected(self) -> bool:
        return self._producer is not None

    def _serve(self, producer: Native) -> None:
        """The producer's pipe is readable (on the loop): settle the reports' sends, note fatal errors."""
        for event in producer.take_events():
            if isinstance(event, Report):
                fut = self._waiting.pop(event.opaque, None)
                if fut is not None and not fut.done():
                    fut.set_result(event)
            elif event.fatal:
                self._reset.set()

    async def _replace(self) -> None:
        old, self._producer = self._producer, None
        if old is not None:
            self.replacements += 1
            await self._discard(old, self._timeout_s)
        delay = 0.5
        self._loop = asyncio.get_running_loop()
        while True:
            producer = self._factory()
            self._loop.add_reader(producer.fileno(), self._serve, producer)
            started = False  # started = the cluster answered
            try:
                started = await asyncio.to_thread(producer.metadata, self._timeout_s)
            finally:  # not started, or cancelled mid-start (the owner is closing): leave no producer running
                if not started:
                    await self._discard(producer, 0)
            if started:
                self._producer = producer
                self._reset.clear()
                self._succeeded()
                return
            self._last_error = time.monotonic()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    @runs_to_the_end
    async def _discard(self, producer: Native, flush_s: float) -> None:
        """Flush for at most ``flush_s`` (records still queued then were never acknowledged), take the last
        reports, destroy the producer; its sends still waiting fail."""
        with contextlib.suppress(Exception):
            await asyncio.to_thread(producer.flush, flush_s)
        with contextlib.suppress(Exception):
            self._serve(producer)
        if self._loop is not None:
            self._loop.remove_reader(producer.fileno())
        await asyncio.to_thread(producer.close)
        waiting, self._waiting = self._waiting, {}
        for fut in waiting.values():
            if not fut.done():
                fut.set_exception(DeliveryFailed("_DESTROY", fatal=False))

    async def close(self) -> None:
        """Flush what is pending (at most twice the send timeout) and destroy the producer, if one is running."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await self._discard(producer, 2 * self._timeout_s)

    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers = ()) -> Delivery:
        producer = self._producer
        if producer is None:
            raise self._not_connected()
        fut: asyncio.Future[Report] = asyncio.get_running_loop().create_future()
        opaque = 0
        with self._sending():
            try:
                try:
                    opaque = producer.produce(topic, key, value, headers)
                except ProduceRefused as exc:  # QueueFull too: nothing was queued
                    raise DeliveryFailed(exc.name, fatal=exc.code == ERR_FATAL) from exc
                self._waiting[opaque] = fut
                async with asyncio.timeout(self._timeout_s):
                    report = await fut
            finally:
                self._waiting.pop(opaque, None)
            if report.err:
                raise DeliveryFailed(report.name, fatal=report.err == ERR_FATAL)
        return self._confirmed(report.partition, report.offset)

    async def probe(self) -> bool:
        """A real metadata request now (in a thread); True when the cluster answered within the send timeout."""
        producer = self._producer
        ok = False
        if producer is not None:
            with contextlib.suppress(Exception):
                ok = await asyncio.to_thread(producer.metadata, self._timeout_s)
        return self._probed(ok)


def build_native_producer(settings: Settings) -> NativeProducer:
    """A new librdkafka producer for ``settings`` with the options of ``confluent-kafka``'s (it connects in the
    background). Raises :class:`~intake.kafka.librdkafka.LibrdkafkaMissing` when no library is found."""
    return NativeProducer(confluent_config(settings))
