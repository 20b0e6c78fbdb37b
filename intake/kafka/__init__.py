"""Kafka adapters: the narrow interfaces the edges use, and the one place concrete clients are built.

* :class:`RecordSink` is all ingest needs: append one record and wait for the broker's acknowledgement. Three
  implementations, chosen by ``INTAKE_KAFKA_PRODUCER`` in :func:`running_sink`: :class:`RdkafkaSink` (the
  default: librdkafka called through its C API, :mod:`~intake.kafka.librdkafka`; the protocol encoded in C, no copy
  of the value, reports on the event loop), :class:`ConfluentSink` (the same librdkafka through confluent-kafka)
  and :class:`AIOKafkaSink` (pure Python).
* :func:`build_producer`, :func:`build_consumer` and :func:`build_admin` build aiokafka clients from settings,
  with the size chain of :class:`intake.settings.Limits` applied (:func:`confluent_config` the same for librdkafka).

Contracts: ``send`` of every sink blocks (awaits) until the record is acknowledged by all in-sync replicas
(``acks=all``, idempotent producer) and returns its :class:`Delivery`, or raises :class:`QueueUnavailable`; it
never reports success for an unacknowledged record. Whoever calls ``start()`` closes with ``stop()``.

One concept per module: :mod:`~intake.kafka.sink` (the protocol), :mod:`~intake.kafka.config` (client options),
:mod:`~intake.kafka.kept` (the keeper both sinks share), :mod:`~intake.kafka.aiokafka_sink`,
:mod:`~intake.kafka.confluent_sink`, :mod:`~intake.kafka.librdkafka` (the C API),
:mod:`~intake.kafka.rdkafka_sink`, :mod:`~intake.kafka.running` (:func:`running_sink`), :mod:`~intake.kafka.admin`
(topics), :mod:`~intake.kafka.reading` (consumers), :mod:`~intake.kafka.starting` (a start that, cancelled,
leaves no connection open). The public names are importable from here.
"""

from __future__ import annotations

from intake.kafka.admin import build_admin, describe_topics, ensure_topics, topic_partitions
from intake.kafka.aiokafka_sink import AIOKafkaSink, build_producer
from intake.kafka.config import confluent_config, connection_config, consumer_config, producer_config
from intake.kafka.confluent_sink import ConfluentProducer, ConfluentSink, build_confluent_producer
from intake.kafka.rdkafka_sink import RdkafkaSink, build_native_producer
from intake.kafka.reading import build_consumer, read_topic
from intake.kafka.running import KeptRecordSink, running_sink
from intake.kafka.sink import Delivery, Headers, QueueUnavailable, RecordSink
from intake.kafka.starting import start_client

__all__ = [
    "AIOKafkaSink",
    "ConfluentProducer",
    "ConfluentSink",
    "Delivery",
    "Headers",
    "KeptRecordSink",
    "QueueUnavailable",
    "RdkafkaSink",
    "RecordSink",
    "build_admin",
    "build_confluent_producer",
    "build_consumer",
    "build_native_producer",
    "build_producer",
    "confluent_config",
    "connection_config",
    "consumer_config",
    "describe_topics",
    "ensure_topics",
    "producer_config",
    "read_topic",
    "running_sink",
    "start_client",
    "topic_partitions",
]
