"""Client options from settings, with the size chain of :class:`intake.settings.Limits` applied: aiokafka's
(:func:`connection_config`, :func:`producer_config`, :func:`consumer_config`) and librdkafka's
(:func:`confluent_config`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiokafka.helpers import create_ssl_context

from intake.settings import Settings

FETCH_MAX_BYTES = 52_428_800
"""Most bytes one fetch returns across partitions (Kafka's default, 50 MiB), raised to one record's limit when
that is larger."""


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
        "fetch_max_bytes": max(settings.limits.max_message_bytes, FETCH_MAX_BYTES),
        "max_poll_records": c.max_batch,
        "max_poll_interval_ms": c.max_poll_interval_ms,
        "request_timeout_ms": max(k.request_timeout_ms, 40_000),
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 3_000,
        "isolation_level": "read_committed",
    }


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
