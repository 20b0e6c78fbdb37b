""":class:`ConfluentSink`: the :class:`~intake.kafka.sink.RecordSink` over librdkafka (``confluent-kafka``)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from intake.kafka.config import confluent_config
from intake.kafka.kept import DeliveryFailed, KeptSink, runs_to_the_end
from intake.kafka.sink import Delivery, Headers
from intake.settings import Settings

POLL_TIMEOUT_S = 0.5
"""How long one ``poll`` of the callback thread waits for an event: a delivery report or an error ends the wait at
once, so this bounds only how long stopping the thread takes; each timed-out wait wakes an idle process (every
50 ms cost it ~1.5 ms of CPU per second)."""


class ConfluentProducer(Protocol):
    """The calls :class:`ConfluentSink` makes on a ``confluent_kafka.Producer`` (fakes in unit tests)."""

    def produce(
        self, topic: str, value: bytes, key: bytes, *, headers: Any = None, on_delivery: Any = None
    ) -> None: ...

    def poll(self, timeout: float) -> int: ...

    def flush(self, timeout: float) -> int: ...

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any: ...


class ConfluentSink(KeptSink):
    """:class:`RecordSink` over librdkafka (``confluent-kafka``): the protocol is encoded in C and the value is
    copied once, into librdkafka's queue, whereas aiokafka encodes each request in Python with several copies of
    the payload (``loadtests.bench_cpu``: ~20 % less API CPU per 500 KB upload).

    ``factory(on_error)`` builds a producer with ``on_error`` as its ``error_cb``. A thread of its own serves
    librdkafka's callbacks (``poll``); a delivery report settles the awaiting :meth:`send` on its event loop.
    librdkafka reconnects by itself; a fatal error (the idempotent producer's state is lost) makes the keeper
    replace the producer, like :class:`AIOKafkaSink`. :meth:`send` never blocks the loop beyond copying the
    value; it raises :class:`QueueUnavailable` when the record is not acknowledged within the timeout, when
    librdkafka's queue is full, or while no producer is connected.
    """

    def __init__(
        self,
        factory: Callable[[Callable[[Any], None]], ConfluentProducer],
        timeout_s: float,
        readiness_max_age_s: float,
        reset_after: int = 5,
    ) -> None:
        super().__init__(timeout_s, readiness_max_age_s, reset_after)
        self._factory = factory
        self._producer: ConfluentProducer | None = None
        self._poller: threading.Thread | None = None
        self._stop_polling = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _connected(self) -> bool:
        return self._producer is not None

    def _on_error(self, err: Any) -> None:
        """librdkafka's error callback (poll thread): a fatal error means this producer can never send again."""
        loop = self._loop
        fatal = bool(getattr(err, "fatal", lambda: False)())
        if loop is not None and fatal:
            loop.call_soon_threadsafe(self._reset.set)

    def _poll_forever(self, producer: ConfluentProducer, stop: threading.Event) -> None:
        while not stop.is_set():
            producer.poll(POLL_TIMEOUT_S)

    async def _replace(self) -> None:
        self._loop = asyncio.get_running_loop()
        old, self._producer = self._producer, None
        if old is not None:
            self.replacements += 1
            await self._discard(old, self._timeout_s)
        delay = 0.5
        while True:
            producer = self._factory(self._on_error)
            stop = threading.Event()
            poller = threading.Thread(target=self._poll_forever, args=(producer, stop), name="kafka-poll", daemon=True)
            poller.start()
            self._poller, self._stop_polling = poller, stop
            try:  # started = the cluster answered a metadata request
                await asyncio.to_thread(producer.list_topics, None, self._timeout_s)
            except Exception:  # confluent_kafka.KafkaException and friends: not reachable yet
                self._last_error = time.monotonic()
                await self._discard(producer, 0)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            except BaseException:  # cancelled mid-start (the owner is closing): leave no producer or poller running
                await self._discard(producer, 0)
                raise
            self._producer = producer
            self._reset.clear()
            self._succeeded()
            return

    @runs_to_the_end
    async def _discard(self, producer: ConfluentProducer, flush_s: float) -> None:
        """Flush for at most ``flush_s`` (records still queued then were never acknowledged), stop polling."""
        with contextlib.suppress(Exception):
            await asyncio.to_thread(producer.flush, flush_s)
        self._stop_polling.set()
        poller, self._poller = self._poller, None
        if poller is not None:
            await asyncio.to_thread(poller.join, 1.0)

    async def close(self) -> None:
        """Flush what is pending (at most twice the send timeout) and stop the producer, if one is running."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await self._discard(producer, 2 * self._timeout_s)

    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers = ()) -> Delivery:
        producer = self._producer
        if producer is None:
            raise self._not_connected()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Delivery] = loop.create_future()

        def delivered(err: Any, msg: Any) -> None:  # on the poll thread
            if err is None:
                loop.call_soon_threadsafe(_settle, fut, Delivery(msg.partition(), msg.offset()), None)
            else:
                loop.call_soon_threadsafe(_settle, fut, None, err)

        with self._sending():
            try:
                producer.produce(topic, value, key, headers=list(headers) or None, on_delivery=delivered)
            except BufferError as exc:  # librdkafka's queue is full
                raise DeliveryFailed("BufferError", fatal=False) from exc
            except Exception as exc:  # confluent_kafka.KafkaException from produce(): not queued
                raise DeliveryFailed(type(exc).__name__, fatal=False) from exc
            async with asyncio.timeout(self._timeout_s):
                return_value = await fut
        return self._confirmed(*return_value)

    async def probe(self) -> bool:
        """A real metadata request now (in a thread); True when the cluster answered within the send timeout."""
        producer = self._producer
        ok = False
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(producer.list_topics, None, self._timeout_s)
                ok = True
        return self._probed(ok)


def _settle(fut: asyncio.Future[Delivery], delivery: Delivery | None, err: Any) -> None:
    """Complete ``fut`` on its loop (a send that timed out was cancelled: nothing to do)."""
    if fut.done():
        return
    if delivery is not None:
        fut.set_result(delivery)
    else:
        fatal = bool(getattr(err, "fatal", lambda: False)())
        name = str(getattr(err, "name", lambda: "KafkaError")())
        fut.set_exception(DeliveryFailed(name, fatal))


def build_confluent_producer(settings: Settings, on_error: Callable[[Any], None]) -> ConfluentProducer:
    """A new librdkafka producer for ``settings`` (it connects in the background)."""
    from confluent_kafka import Producer  # noqa: PLC0415 - only processes that use it pay for the import

    producer: ConfluentProducer = Producer(confluent_config(settings, on_error))
    return producer
