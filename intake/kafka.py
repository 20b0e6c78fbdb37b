"""Kafka adapters: the narrow interfaces the edges use, and the one place concrete clients are built.

* :class:`RecordSink` is all ingest needs: append one record and wait for the broker's acknowledgement. Two
  implementations, chosen by ``INTAKE_KAFKA_PRODUCER`` in :func:`running_sink`: :class:`ConfluentSink`
  (librdkafka, the default: the protocol encoded in C) and :class:`AIOKafkaSink` (pure Python).
* :func:`build_producer`, :func:`build_consumer` and :func:`ensure_topics` build aiokafka clients from settings,
  with the size chain of :class:`intake.settings.Limits` applied (:func:`confluent_config` the same for librdkafka).

Contracts: ``send`` of either sink blocks (awaits) until the record is acknowledged by all in-sync replicas
(``acks=all``, idempotent producer) and returns its :class:`Delivery`, or raises :class:`QueueUnavailable`; it
never reports success for an unacknowledged record. Whoever calls ``start()`` closes with ``stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, NamedTuple, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    TopicAlreadyExistsError,
    UnknownProducerId,
)
from aiokafka.helpers import create_ssl_context
from aiokafka.structs import ConsumerRecord

from intake.background import background
from intake.settings import Settings
from intake.topics import TopicSpec, topic_specs

Headers = Sequence[tuple[str, bytes]]
"""Kafka record headers."""


class Delivery(NamedTuple):
    """Where Kafka appended an acknowledged record: its partition and offset (no personal data)."""

    partition: int
    offset: int


class QueueUnavailable(Exception):
    """Kafka did not acknowledge the record in time: it is not confirmed (never answer 202). A record that timed
    out inside the producer may still be appended later; a resend with the same Idempotency-Key is harmless."""


class RecordSink(Protocol):
    """Appends records durably. Implemented by :class:`AIOKafkaSink` and by test fakes."""

    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers = ()) -> Delivery:
        """Return where the record was appended once it is acknowledged; raise :class:`QueueUnavailable`
        otherwise."""
        ...

    def ready(self) -> bool:
        """Whether the sink currently has fresh contact with the cluster."""
        ...

    def pending(self) -> int:
        """Records sent and not yet acknowledged (or failed)."""
        ...


def connection_config(settings: Settings) -> dict[str, Any]:
    """Where Kafka is and how to reach it, for every aiokafka client: plaintext, or TLS (with a client certificate
    when ``INTAKE_KAFKA_SSL_CERTFILE`` is set). Raises ``OSError``/``ssl.SSLError`` for unreadable PEM files."""
    k = settings.kafka
    if not k.ssl_cafile:
        return {"bootstrap_servers": k.bootstrap}
    context = create_ssl_context(cafile=k.ssl_cafile, certfile=k.ssl_certfile or None, keyfile=k.ssl_keyfile or None)
    return {"bootstrap_servers": k.bootstrap, "security_protocol": "SSL", "ssl_context": context}


def producer_config(settings: Settings) -> dict[str, Any]:
    """aiokafka producer options (acks=all, idempotence, the size chain)."""
    k = settings.kafka
    return {
        **connection_config(settings),
        "client_id": k.client_id,
        "acks": "all",
        "enable_idempotence": True,
        "max_request_size": settings.limits.max_message_bytes,
        "linger_ms": k.linger_ms,
        "request_timeout_ms": k.request_timeout_ms,
        "compression_type": None,
    }


def build_producer(settings: Settings) -> AIOKafkaProducer:
    """A new, unstarted producer. The caller starts and stops it."""
    return AIOKafkaProducer(**producer_config(settings))


def consumer_config(settings: Settings) -> dict[str, Any]:
    """aiokafka consumer options: manual commits, the size chain, bounded polls."""
    k, c = settings.kafka, settings.consumer
    return {
        **connection_config(settings),
        "client_id": f"{k.client_id}-worker",
        "group_id": k.group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_partition_fetch_bytes": settings.limits.max_message_bytes,
        "fetch_max_bytes": max(settings.limits.max_message_bytes, 52_428_800),
        "max_poll_records": c.max_batch,
        "max_poll_interval_ms": c.max_poll_interval_ms,
        "request_timeout_ms": max(k.request_timeout_ms, 40_000),
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 3_000,
        "isolation_level": "read_committed",
    }


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


_PRODUCER_BROKEN = (OutOfOrderSequenceNumber, ProducerFenced, UnknownProducerId, InvalidProducerEpoch)
"""Errors after which an aiokafka idempotent producer cannot send again (its sender task died): replace it."""


class _KeptSink:
    """What both sinks share: the keeper loop (start a producer, probe, replace a broken one), readiness and the
    count of records awaiting acknowledgement. Subclasses provide ``_replace`` and ``probe``."""

    def __init__(self, timeout_s: float, readiness_max_age_s: float, reset_after: int) -> None:
        self._timeout_s = timeout_s
        self._readiness_max_age_s = readiness_max_age_s
        self._reset_after = reset_after
        self._last_ok = 0.0
        self._last_error = 0.0
        self._failures = 0
        self._pending = 0
        self._reset = asyncio.Event()
        self._up = asyncio.Event()  # set once a producer has connected (later outages show as send errors)
        self.replacements = 0

    def _connected(self) -> bool:
        raise NotImplementedError

    async def _replace(self) -> None:
        raise NotImplementedError

    async def probe(self) -> bool:
        raise NotImplementedError

    async def keep_connected(self, probe_interval_s: float) -> None:
        """Keep a working producer: start one, probe every ``probe_interval_s``, replace a broken one. Runs until
        cancelled."""
        while True:
            if not self._connected() or self._reset.is_set():
                await self._replace()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reset.wait(), probe_interval_s)
            if not self._reset.is_set():
                await self.probe()

    def _failed(self, broken: bool) -> None:
        """A send failed; ``broken`` (or ``reset_after`` failures in a row) makes the keeper replace the producer."""
        self._last_error = time.monotonic()
        self._failures += 1
        if broken or self._failures >= self._reset_after:
            self._reset.set()

    def _succeeded(self) -> None:
        self._failures = 0
        self._last_ok = time.monotonic()
        self._up.set()

    async def wait_connected(self, timeout_s: float) -> bool:
        """Wait at most ``timeout_s`` until a producer has connected once; True if it has. For batch commands
        that send at once (the API never waits: until then it answers 503)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), timeout_s)
        return self._up.is_set()

    def _probed(self, ok: bool) -> bool:
        if ok:
            self._last_ok = time.monotonic()
        else:
            self._last_error = time.monotonic()
        return ok

    def pending(self) -> int:
        return self._pending

    def ready(self) -> bool:
        """True when the last contact with the cluster (an acknowledgement or a :meth:`probe`) succeeded and is
        younger than the readiness age. Never blocks."""
        last_ok = self._last_ok
        return last_ok > self._last_error and time.monotonic() - last_ok < self._readiness_max_age_s


class AIOKafkaSink(_KeptSink):
    """:class:`RecordSink` over one aiokafka producer per process, replaced when it breaks.

    :meth:`keep_connected` (run as a task by the owner) starts a producer from ``factory``, retrying while Kafka
    is down, then probes the cluster periodically so readiness reflects reality. Until a producer has started,
    :meth:`send` raises :class:`QueueUnavailable` at once. An idempotent producer can be left unable to send
    after a broker restart (sequence numbers the restarted broker never stored: ``OutOfOrderSequenceNumber``
    kills aiokafka's sender); such errors, or ``reset_after`` failures in a row, make the task replace the
    producer with a new one (a new producer id, so sequences start again). The owner cancels the task and
    calls :meth:`close`.
    """

    def __init__(
        self,
        factory: Callable[[], AIOKafkaProducer],
        timeout_s: float,
        readiness_max_age_s: float,
        reset_after: int = 5,
    ) -> None:
        super().__init__(timeout_s, readiness_max_age_s, reset_after)
        self._factory = factory
        self._producer: AIOKafkaProducer | None = None

    def _connected(self) -> bool:
        return self._producer is not None

    async def _replace(self) -> None:
        old, self._producer = self._producer, None
        if old is not None:
            self.replacements += 1
            await self._discard(old)
        delay = 0.5
        while True:
            producer = self._factory()
            try:
                await asyncio.wait_for(producer.start(), self._timeout_s)
            except (KafkaError, TimeoutError, OSError):
                self._last_error = time.monotonic()
                await self._discard(producer)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._producer = producer
            self._reset.clear()
            self._succeeded()
            return

    async def _discard(self, producer: AIOKafkaProducer) -> None:
        """Stop a producer that failed or broke, bounded in time; its connections are closed even when its
        sender is dead and ``stop()`` cannot finish."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), self._timeout_s)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.client.close(), self._timeout_s)

    async def close(self) -> None:
        """Flush what is pending and stop the producer (if one is running). Blocks at most twice the send
        timeout: a producer that cannot stop in that time (a broker gone mid-flush) has its connections closed,
        and what it still held was never acknowledged, so never answered 202."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            await asyncio.wait_for(producer.stop(), 2 * self._timeout_s)
        except TimeoutError:
            await self._discard(producer)

    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers = ()) -> Delivery:
        producer = self._producer
        if producer is None:
            self._last_error = time.monotonic()
            raise QueueUnavailable("producer not connected")
        self._pending += 1
        try:
            fut = await asyncio.wait_for(
                producer.send(topic, value=value, key=key, headers=list(headers) or None), self._timeout_s
            )
            metadata = await asyncio.wait_for(fut, self._timeout_s)
        except (KafkaError, TimeoutError) as exc:
            self._failed(isinstance(exc, _PRODUCER_BROKEN))
            raise QueueUnavailable(type(exc).__name__) from exc
        finally:
            self._pending -= 1
        self._succeeded()
        return Delivery(metadata.partition, metadata.offset)

    async def probe(self) -> bool:
        """Send a real metadata request now; True when the cluster answered. Blocks at most the send timeout."""
        producer = self._producer
        ok = False
        if producer is not None:
            with contextlib.suppress(KafkaError, TimeoutError, OSError):
                ok = bool(await asyncio.wait_for(producer.client.force_metadata_update(), self._timeout_s))
        return self._probed(ok)


class ConfluentProducer(Protocol):
    """The calls :class:`ConfluentSink` makes on a ``confluent_kafka.Producer`` (fakes in unit tests)."""

    def produce(
        self, topic: str, value: bytes, key: bytes, *, headers: Any = None, on_delivery: Any = None
    ) -> None: ...

    def poll(self, timeout: float) -> int: ...

    def flush(self, timeout: float) -> int: ...

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any: ...


def confluent_config(settings: Settings, on_error: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """librdkafka producer options, equivalent to :func:`producer_config` (acks=all, idempotence, the size chain,
    TLS when ``INTAKE_KAFKA_SSL_CAFILE`` is set);
    a record not acknowledged within the produce timeout fails inside librdkafka too (``message.timeout.ms``)."""
    k = settings.kafka
    conf: dict[str, Any] = {
        "bootstrap.servers": k.bootstrap,
        "client.id": k.client_id,
        "acks": "all",
        "enable.idempotence": True,
        "message.max.bytes": settings.limits.max_message_bytes,
        "linger.ms": k.linger_ms,
        "request.timeout.ms": k.request_timeout_ms,
        "message.timeout.ms": max(1, int(settings.http.produce_timeout_s * 1000)),
        "compression.type": "none",
        # Java's and aiokafka's partitioner (murmur2 of the key): a key lands on the same partition whichever
        # producer wrote it, so per-key order holds across them (librdkafka's default hashes with CRC32).
        "partitioner": "murmur2_random",
    }
    if k.ssl_cafile:  # TLS as in connection_config: the brokers' CA, and a client certificate when one is set
        conf.update({"security.protocol": "ssl", "ssl.ca.location": k.ssl_cafile})
        if k.ssl_certfile:
            conf.update({"ssl.certificate.location": k.ssl_certfile, "ssl.key.location": k.ssl_keyfile})
    if on_error is not None:
        conf["error_cb"] = on_error
    return conf


class ConfluentSink(_KeptSink):
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
            producer.poll(0.05)

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
            self._producer = producer
            self._reset.clear()
            self._succeeded()
            return

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
            self._last_error = time.monotonic()
            raise QueueUnavailable("producer not connected")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Delivery] = loop.create_future()

        def delivered(err: Any, msg: Any) -> None:  # on the poll thread
            if err is None:
                loop.call_soon_threadsafe(_settle, fut, Delivery(msg.partition(), msg.offset()), None)
            else:
                loop.call_soon_threadsafe(_settle, fut, None, err)

        self._pending += 1
        try:
            try:
                producer.produce(topic, value, key, headers=list(headers) or None, on_delivery=delivered)
            except BufferError as exc:  # librdkafka's queue is full
                raise _DeliveryFailed("BufferError", fatal=False) from exc
            return_value = await asyncio.wait_for(fut, self._timeout_s)
        except _DeliveryFailed as exc:
            self._failed(exc.fatal)
            raise QueueUnavailable(exc.name) from exc
        except TimeoutError as exc:
            self._failed(False)
            raise QueueUnavailable("TimeoutError") from exc
        except Exception as exc:  # confluent_kafka.KafkaException from produce(): not queued
            self._failed(False)
            raise QueueUnavailable(type(exc).__name__) from exc
        finally:
            self._pending -= 1
        self._succeeded()
        return return_value

    async def probe(self) -> bool:
        """A real metadata request now (in a thread); True when the cluster answered within the send timeout."""
        producer = self._producer
        ok = False
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(producer.list_topics, None, self._timeout_s)
                ok = True
        return self._probed(ok)


class _DeliveryFailed(Exception):
    def __init__(self, name: str, fatal: bool) -> None:
        super().__init__(name)
        self.name = name
        self.fatal = fatal


def _settle(fut: asyncio.Future[Delivery], delivery: Delivery | None, err: Any) -> None:
    """Complete ``fut`` on its loop (a send that timed out was cancelled: nothing to do)."""
    if fut.done():
        return
    if delivery is not None:
        fut.set_result(delivery)
    else:
        fatal = bool(getattr(err, "fatal", lambda: False)())
        name = str(getattr(err, "name", lambda: "KafkaError")())
        fut.set_exception(_DeliveryFailed(name, fatal))


def build_confluent_producer(settings: Settings, on_error: Callable[[Any], None]) -> ConfluentProducer:
    """A new librdkafka producer for ``settings`` (it connects in the background)."""
    from confluent_kafka import Producer  # noqa: PLC0415 - only processes that use it pay for the import

    producer: ConfluentProducer = Producer(confluent_config(settings, on_error))
    return producer


@contextlib.asynccontextmanager
async def running_sink(
    settings: Settings,
    *,
    probe_interval_s: float = 5.0,
    readiness_max_age_s: float | None = None,
    connect_timeout_s: float | None = None,
) -> AsyncIterator[AIOKafkaSink | ConfluentSink]:
    """The sink ``INTAKE_KAFKA_PRODUCER`` names (:class:`ConfluentSink` or :class:`AIOKafkaSink`) for ``settings``
    with its keeper task running; on exit the task is cancelled and the producer flushed and stopped. The only
    place the service builds a producer. The producer connects in the background: with ``connect_timeout_s``,
    entering waits until it has (batch commands), and raises :class:`QueueUnavailable` if it has not in time;
    without, a send before it has raises :class:`QueueUnavailable` at once (the API: 503)."""
    max_age = settings.http.readiness_max_age_s if readiness_max_age_s is None else readiness_max_age_s
    sink: AIOKafkaSink | ConfluentSink
    if settings.kafka.producer == "confluent":
        sink = ConfluentSink(
            functools.partial(build_confluent_producer, settings), settings.http.produce_timeout_s, max_age
        )
    else:
        sink = AIOKafkaSink(functools.partial(build_producer, settings), settings.http.produce_timeout_s, max_age)
    try:
        async with background(sink.keep_connected(probe_interval_s), name="kafka-sink"):
            if connect_timeout_s is not None and not await sink.wait_connected(connect_timeout_s):
                raise QueueUnavailable(f"Kafka did not answer within {connect_timeout_s:g} s")
            yield sink
    finally:
        await sink.close()


async def ensure_topics(settings: Settings, specs: list[TopicSpec] | None = None) -> list[str]:
    """Create the project's topics if absent (idempotent). Returns the names created now."""
    specs = topic_specs(settings) if specs is None else specs
    admin = AIOKafkaAdminClient(**connection_config(settings), request_timeout_ms=settings.kafka.request_timeout_ms)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.config)
            for s in specs
            if s.name not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process created it meanwhile
                await admin.create_topics(new)
        return [t.name for t in new]
    finally:
        await admin.close()


async def describe_topics(settings: Settings) -> list[dict[str, Any]]:
    """Partitions and configuration of the project's topics, as the broker reports them."""
    names = [s.name for s in topic_specs(settings)]
    admin = AIOKafkaAdminClient(**connection_config(settings), request_timeout_ms=settings.kafka.request_timeout_ms)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
        out: list[dict[str, Any]] = []
        conf_by_name: dict[str, dict[str, str]] = {}
        for resp in configs:
            for res in resp.resources:
                _err, _msg, _rtype, rname, entries = res[:5]
                conf_by_name[rname] = {
                    e[0]: e[1]
                    for e in entries
                    if e[0] in ("max.message.bytes", "retention.ms", "min.insync.replicas", "cleanup.policy")
                }
        for t in described:
            out.append(
                {
                    "topic": t["topic"],
                    "partitions": len(t["partitions"]),
                    "replication_factor": min((len(p["replicas"]) for p in t["partitions"]), default=0),
                    "error_code": t["error_code"],
                    "config": conf_by_name.get(t["topic"], {}),
                }
            )
        return out
    finally:
        await admin.close()


async def topic_partitions(settings: Settings, topic: str) -> list[int]:
    """The partition numbers of ``topic`` as the cluster describes it (empty when it does not exist)."""
    admin = AIOKafkaAdminClient(**connection_config(settings), request_timeout_ms=settings.kafka.request_timeout_ms)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(
        p["partition"] for t in described if t["topic"] == topic and not t["error_code"] for p in t["partitions"]
    )


async def read_topic(settings: Settings, topic: str) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` from the beginning to the end offsets captured at the start, in partition and
    offset order. Joins no consumer group and commits nothing, so it terminates and disturbs no worker."""
    numbers = await topic_partitions(settings, topic)
    consumer = AIOKafkaConsumer(
        **connection_config(settings),
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=settings.limits.max_message_bytes,
        fetch_max_bytes=max(settings.limits.max_message_bytes, 52_428_800),
    )
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
