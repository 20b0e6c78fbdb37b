""":func:`running_sink`: the one place the service builds a producer."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator

from intake.background import background
from intake.kafka.aiokafka_sink import AIOKafkaSink, build_producer
from intake.kafka.confluent_sink import ConfluentSink, build_confluent_producer
from intake.kafka.rdkafka_sink import RdkafkaSink, build_native_producer
from intake.kafka.sink import QueueUnavailable
from intake.settings import Settings

KeptRecordSink = AIOKafkaSink | ConfluentSink | RdkafkaSink
"""A sink :func:`running_sink` builds: a :class:`~intake.kafka.sink.RecordSink` with its keeper's calls."""


@contextlib.asynccontextmanager
async def running_sink(
    settings: Settings,
    *,
    probe_interval_s: float = 5.0,
    readiness_max_age_s: float | None = None,
    connect_timeout_s: float | None = None,
) -> AsyncIterator[KeptRecordSink]:
    """The sink ``INTAKE_KAFKA_PRODUCER`` names (:class:`ConfluentSink`, :class:`RdkafkaSink` or
    :class:`AIOKafkaSink`) for ``settings``
    with its keeper task running; on exit the task is cancelled and the producer flushed and stopped. The only
    place the service builds a producer. The producer connects in the background: with ``connect_timeout_s``,
    entering waits until it has (batch commands), and raises :class:`QueueUnavailable` if it has not in time;
    without, a send before it has raises :class:`QueueUnavailable` at once (the API: 503)."""
    max_age = settings.http.readiness_max_age_s if readiness_max_age_s is None else readiness_max_age_s
    sink: KeptRecordSink
    if settings.kafka.producer == "confluent":
        sink = ConfluentSink(
            functools.partial(build_confluent_producer, settings), settings.http.produce_timeout_s, max_age
        )
    elif settings.kafka.producer == "rdkafka":
        sink = RdkafkaSink(functools.partial(build_native_producer, settings), settings.http.produce_timeout_s, max_age)
    else:
        sink = AIOKafkaSink(functools.partial(build_producer, settings), settings.http.produce_timeout_s, max_age)
    try:
        async with background(sink.keep_connected(probe_interval_s), name="kafka-sink"):
            if connect_timeout_s is not None and not await sink.wait_connected(connect_timeout_s):
                raise QueueUnavailable(f"Kafka did not answer within {connect_timeout_s:g} s")
            yield sink
    finally:
        await sink.close()
