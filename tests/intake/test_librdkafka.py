"""The ctypes binding of librdkafka's producer (:mod:`intake.kafka.librdkafka`) against the real library, with no
broker: a refused property, reports and error events taken through the pipe, values held until their report, a
full queue, a destroyed producer. (Against the real Kafka: ``tests/integration/test_producers.py`` and the
contract suite.)"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator

import pytest

from intake.kafka.librdkafka import (
    ERR_QUEUE_FULL,
    Failure,
    NativeProducer,
    ProducerConfigError,
    ProduceRefused,
    QueueFull,
    Report,
    load,
)

WAIT_S = 20.0
"""Upper bound for an event that must come (the test fails past it; nothing is measured)."""


@pytest.fixture
def nowhere() -> Iterator[str]:
    """A loopback address where nothing listens (a bound socket that never accepts: connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{s.getsockname()[1]}"


def _producer(bootstrap: str, **extra: object) -> NativeProducer:
    conf: dict[str, object] = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "message.timeout.ms": 300,
        "reconnect.backoff.ms": 50,
        **extra,
    }
    return NativeProducer(conf)


def _events_until(producer: NativeProducer, done: type, timeout_s: float = WAIT_S) -> list[Report | Failure]:
    """Wait on the pipe (as the event loop does) and take events until one of type ``done`` came."""
    taken: list[Report | Failure] = []
    deadline = time.monotonic() + timeout_s
    while not any(isinstance(e, done) for e in taken):
        left = deadline - time.monotonic()
        assert left > 0, f"no {done.__name__} within {timeout_s} s: {taken}"
        readable, _, _ = select.select([producer.fileno()], [], [], left)
        if readable:
            taken.extend(producer.take_events())
    return taken


def test_the_library_is_found_and_recent_enough() -> None:
    lib = load()
    assert lib.rd_kafka_version() >= 0x010600FF


def test_a_property_librdkafka_refuses_is_named() -> None:
    with pytest.raises(ProducerConfigError, match=r"no\.such\.property"):
        NativeProducer({"no.such.property": 1})
    with pytest.raises(ProducerConfigError, match="acks"):
        NativeProducer({"acks": "sometimes"})


def test_a_record_nobody_acknowledges_is_reported_through_the_pipe_and_released(nowhere: str) -> None:
    producer = _producer(nowhere)
    try:
        value = b"photo" * 1000
        first = producer.produce("t", b"k", value, [("h", b"1")])
        second = producer.produce("t", b"k", value)
        assert first != second and producer.held() == 2  # librdkafka reads the values until their reports
        events = _events_until(producer, Report)
        events += _events_until(producer, Report) if len([e for e in events if isinstance(e, Report)]) < 2 else []
        reports = [e for e in events if isinstance(e, Report)]
        assert {r.opaque for r in reports} == {first, second}
        assert all(r.err != 0 and r.name == "_MSG_TIMED_OUT" and r.offset < 0 for r in reports)
        assert producer.held() == 0
        failures = [e for e in events if isinstance(e, Failure)]
        assert all(not f.fatal and f.name for f in failures)  # a broker down is not fatal
        # Nothing more to report, and it never blocks (error events keep coming while nothing listens there)
        assert not [e for e in producer.take_events() if isinstance(e, Report)]
        producer.flush(0.1)
        assert producer.held() == 0 and not producer.metadata(0.2)
    finally:
        producer.close()
    producer.close()  # twice is harmless
    with pytest.raises(ProduceRefused, match="_DESTROY"):
        producer.produce("t", b"k", b"v")
    producer.flush(0)
    assert producer.take_events() == [] and not producer.metadata(0.1)


def test_a_broker_that_refuses_connections_is_an_error_event(nowhere: str) -> None:
    producer = _producer(nowhere)
    try:
        producer.produce("t", b"k", b"v")  # something to send makes librdkafka connect
        failures = [e for e in _events_until(producer, Failure) if isinstance(e, Failure)]
        assert failures and not any(f.fatal for f in failures)
        assert all(f.err < 0 and f.name.startswith("_") for f in failures)  # librdkafka's own codes
    finally:
        producer.close()


def test_a_full_queue_refuses_at_once_and_holds_nothing(nowhere: str) -> None:
    producer = _producer(nowhere, **{"queue.buffering.max.messages": 1, "message.timeout.ms": 60_000})
    try:
        producer.produce("t", b"k", b"one")
        with pytest.raises(QueueFull) as refused:
            producer.produce("t", b"k", b"two")
        assert refused.value.code == ERR_QUEUE_FULL and refused.value.name == "_QUEUE_FULL"
        assert producer.held() == 1
    finally:
        producer.close()  # destroys the queued record unsent
    assert producer.held() == 0
