"""Every Prometheus metric of the service, declared once, with help strings and bounded labels.

Labels only ever take values from bounded sets: routes, HTTP status classes, reason codes from
``processors.reasons``, topic names, step names. Never an id, a NIK or anything an applicant controls.

Metrics live in a :class:`Metrics` object built per process by :func:`build_metrics` (nothing is registered
at import time), so tests get a fresh registry and a process in multiprocess mode can collect from the
shared directory (``PROMETHEUS_MULTIPROC_DIR``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SIZE_BUCKETS = (16e3, 64e3, 256e3, 512e3, 1e6, 2e6, 4e6, 8e6, 16e6)


@dataclass(frozen=True)
class Metrics:
    """The registry and every metric in it."""

    registry: CollectorRegistry
    http_requests: Counter
    http_duration: Histogram
    http_body_bytes: Histogram
    http_in_flight: Gauge
    shed: Counter
    produce_duration: Histogram
    consumer_messages: Counter
    step_duration: Histogram
    storage_duration: Histogram
    storage_errors: Counter
    retries: Counter
    dead_letters: Counter

    def render(self) -> bytes:
        """The text exposition of this process (or of all processes in multiprocess mode)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


def build_metrics(registry: CollectorRegistry | None = None) -> Metrics:
    """Declare every metric in ``registry`` (a new one by default)."""
    r = CollectorRegistry() if registry is None else registry
    return Metrics(
        registry=r,
        http_requests=Counter(
            "intake_http_requests_total",
            "HTTP requests answered, by route, status and code.",
            ["route", "status", "code"],
            registry=r,
        ),
        http_duration=Histogram(
            "intake_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        ),
        http_body_bytes=Histogram(
            "intake_http_request_body_bytes",
            "Size of accepted request bodies.",
            ["route"],
            buckets=_SIZE_BUCKETS,
            registry=r,
        ),
        http_in_flight=Gauge(
            "intake_http_in_flight_requests", "Requests being handled now.", multiprocess_mode="livesum", registry=r
        ),
        shed=Counter(
            "intake_shed_total", "Requests refused to protect the service, by reason code.", ["code"], registry=r
        ),
        produce_duration=Histogram(
            "intake_kafka_produce_duration_seconds",
            "Time from send to Kafka acknowledgement (acks=all).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        ),
        consumer_messages=Counter(
            "intake_consumer_messages_total",
            "Records handled by workers, by topic, outcome and reason code.",
            ["topic", "outcome", "reason"],
            registry=r,
        ),
        step_duration=Histogram(
            "intake_consumer_step_duration_seconds",
            "Time per processing step.",
            ["step"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        ),
        storage_duration=Histogram(
            "intake_storage_put_duration_seconds", "Time of an object store put.", buckets=_LATENCY_BUCKETS, registry=r
        ),
        storage_errors=Counter(
            "intake_storage_errors_total", "Failed object store calls, by operation.", ["operation"], registry=r
        ),
        retries=Counter(
            "intake_consumer_retries_total", "Retried processing attempts, by reason.", ["reason"], registry=r
        ),
        dead_letters=Counter(
            "intake_dead_letters_total", "Records sent to the dead-letter topic, by reason.", ["reason"], registry=r
        ),
    )
