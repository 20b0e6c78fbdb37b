"""Every Prometheus metric of the service, declared once, with help strings and bounded labels.

Labels only ever take values from bounded sets: routes, HTTP status classes, reason codes from
``processors.reasons``, topic names, partition numbers, step names. Never an id, a NIK or anything an
applicant controls. Names follow the Prometheus conventions: counters end in ``_total``, durations are
histograms in ``_seconds``, sizes in ``_bytes``.

Metrics live in a :class:`Metrics` object built per process by :func:`build_metrics` (nothing is registered
at import time), so tests get a fresh registry and a process in multiprocess mode can collect from the
shared directory.

Multiprocess mode (several ``intake serve`` processes behind one ``SO_REUSEPORT`` port)
-------------------------------------------------------------------------------------
A scrape reaches one process at random, so each process must answer for all of them:

* set ``PROMETHEUS_MULTIPROC_DIR`` to a directory shared by the processes of ONE service (the API's, or a
  consumer's: never both in one directory), in the environment before the processes start (prometheus_client
  picks its storage when it is first imported);
* empty that directory before the processes start (``rm -rf "$DIR"/*``; systemd ``ExecStartPre``);
* call :func:`mark_process_dead` when a process exits, so its live gauges stop counting.

Counters and histograms then sum over processes. Every gauge declares how processes combine
(``multiprocess_mode``): requests in flight sum over live processes (``livesum``); the event loop's lag is the
worst live process's (``livemax``); the backlog gauges, which
every consumer process computes for the whole group, take the most recent value (``mostrecent``).
Without the variable each process serves its own registry.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from intake.auth import AUTH_CODES
from processors.reasons import REASONS, Category

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SIZE_BUCKETS = (16e3, 64e3, 256e3, 512e3, 1e6, 2e6, 4e6, 8e6, 16e6)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The shared metrics directory when multiprocess mode is on, else ``None``."""
    return os.environ.get(MULTIPROC_ENV) or None


def mark_process_dead(pid: int | None = None) -> None:
    """Drop the live gauges of an exited process (``pid``, default this one). No-op outside multiprocess mode."""
    path = multiprocess_dir()
    if path:
        multiprocess.mark_process_dead(os.getpid() if pid is None else pid, path)  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Metrics:
    """The registry and every metric in it."""

    registry: CollectorRegistry
    # --- ingest (API) ---------------------------------------------------------------------------------------
    http_requests: Counter
    http_duration: Histogram
    http_body_bytes: Histogram
    http_in_flight: Gauge
    loop_lag: Gauge
    shed: Counter
    produce_duration: Histogram
    auth_failures: Counter
    ktp_reads: Counter
    data_keys: Counter
    data_key_duration: Histogram
    records_sealed: Gauge
    # --- status reads (ingest.status_view, ingest.queue) ------------------------------------------------------
    status_reads: Counter
    status_view_entries: Gauge
    status_view_evicted: Gauge
    status_view_caught_up: Gauge
    queue_sample_errors: Counter
    # --- consumers --------------------------------------------------------------------------------------------
    consumer_messages: Counter
    step_duration: Histogram
    storage_duration: Histogram
    storage_errors: Counter
    retries: Counter
    dead_letters: Counter
    registration_records: Counter
    # --- consumer group backlog (consumers.lag) ---------------------------------------------------------------
    backlog: Gauge
    drain_rate: Gauge
    time_to_drain: Gauge
    lag_sample_errors: Counter
    lag_sampled_at: Gauge

    def render(self) -> bytes:
        """The text exposition of this process (or of all processes in multiprocess mode)."""
        path = multiprocess_dir()
        if path:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)

    def prime(self, submissions_topic: str | None = None) -> None:
        """Create the series of every known label value at zero.

        A counter series that appears only with its first increment makes ``rate()`` and ``increase()`` miss
        that increment; priming the bounded label sets (reason codes of the table, shed codes, dead-letter
        kinds) lets dashboards and alerts see the first failure. Idempotent.
        """
        for code in ("overloaded", "queue_unavailable", "storage_unavailable"):
            self.shed.labels(code)
        for source in ("cached", "stored", "unavailable"):
            self.data_keys.labels(source)
        for code in AUTH_CODES:
            self.auth_failures.labels(code)
        self.storage_errors.labels("put")
        for source in ("view", "queued", "store"):
            self.status_reads.labels(source)
        for kind in DEAD_LETTER_KINDS:
            self.dead_letters.labels(kind)
        for exc in ("StorageUnavailable", "BucketMissing", "QueueUnavailable"):
            self.retries.labels(exc)
        for state in ("eligible", "rejected"):
            self.registration_records.labels(state)
        if submissions_topic is not None:
            for code in rejection_codes():
                self.consumer_messages.labels(submissions_topic, "rejected", code)
            for kind in DEAD_LETTER_KINDS:
                self.consumer_messages.labels(submissions_topic, "dead_letter", kind)
            self.consumer_messages.labels(submissions_topic, "retry_later", "none")


DEAD_LETTER_KINDS = ("envelope_invalid", "erased", "bug")
"""Why a record is dead-lettered (the ``intake.error`` header's kind): not an envelope (or a sealed part that does
not open), the applicant's data key was destroyed (erased: the record can never be read), a bug."""


def rejection_codes() -> Iterable[str]:
    """Every reason code a registration can be rejected with (the ``reason`` label's bounded set)."""
    return sorted(code for code, row in REASONS.items() if row.category is Category.REJECTED)


SHED_CODES = frozenset({"overloaded", "rate_limited"})
"""Reason codes of answers that refuse work to protect the service (the ``shed`` outcome of request durations)."""


def http_outcome(status: int, code: str) -> str:
    """The bounded ``outcome`` label of an answer: ``ok`` below 400, ``shed`` for :data:`SHED_CODES`, else
    ``error``."""
    if status < 400:
        return "ok"
    return "shed" if code in SHED_CODES else "error"


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
            "Time to answer an HTTP request, from its head parsed to its answer, by route and outcome (ok: below "
            "400; shed: refused to protect the service, overloaded or rate_limited; error: any other error).",
            ["route", "outcome"],
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
        loop_lag=Gauge(
            "intake_http_loop_lag_seconds",
            "How late the API event loop ran a timer, last sample (CPU saturation; past INTAKE_MAX_LOOP_LAG_MS: 503).",
            multiprocess_mode="livemax",
            registry=r,
        ),
        shed=Counter(
            "intake_shed_total", "Requests refused to protect the service, by reason code.", ["code"], registry=r
        ),
        auth_failures=Counter(
            "intake_auth_failures_total",
            "Requests refused by client authentication, by reason code.",
            ["code"],
            registry=r,
        ),
        data_keys=Counter(
            "intake_data_keys_total",
            "Data keys the API looked up to seal an upload, by outcome: cached (memory), stored (the key store: read "
            "or created), unavailable (the key store failed or timed out: 503).",
            ["outcome"],
            registry=r,
        ),
        data_key_duration=Histogram(
            "intake_data_key_duration_seconds",
            "Time an upload waited for the key store to read or create its applicant's data key (keys not cached; a "
            "failure or timeout counts its whole wait). Each new applicant's upload waits this long before Kafka.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        ),
        records_sealed=Gauge(
            "intake_records_sealed",
            "1 when this API seals the personal data of its Kafka records (INTAKE_SEAL_RECORDS), 0 when it writes "
            "them in plaintext (development only).",
            multiprocess_mode="mostrecent",
            registry=r,
        ),
        ktp_reads=Counter(
            "intake_ktp_reads_total",
            "Reads of stored KTP images through the API, by outcome (served, not_found, audit_unavailable).",
            ["outcome"],
            registry=r,
        ),
        status_reads=Counter(
            "intake_status_reads_total",
            "Personal status reads, by where the answer came from (outcome: view, queued, store).",
            ["outcome"],
            registry=r,
        ),
        status_view_entries=Gauge(
            "intake_status_view_entries",
            "Statuses held in an API process's in-memory view (every process holds them all: the most recent).",
            multiprocess_mode="mostrecent",
            registry=r,
        ),
        status_view_evicted=Gauge(
            "intake_status_view_evicted",
            "Statuses dropped from a process's view past INTAKE_STATUS_VIEW_MAX_ENTRIES (read from the store).",
            multiprocess_mode="mostrecent",
            registry=r,
        ),
        status_view_caught_up=Gauge(
            "intake_status_view_caught_up",
            "API processes whose status view replayed the status topic (readiness waits for it): 1 per process.",
            multiprocess_mode="livesum",
            registry=r,
        ),
        queue_sample_errors=Counter(
            "intake_queue_sample_errors_total",
            "Samples of the queue watermark that failed (Kafka did not answer); GET /v1/queue keeps the last one.",
            registry=r,
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
        registration_records=Counter(
            "intake_registration_records_total",
            "Registration records stored and published on the registrations topic (redeliveries count again), by "
            "outcome (the submission's state: eligible, rejected, or selected/quota_exceeded on a redelivery).",
            ["outcome"],
            registry=r,
        ),
        backlog=Gauge(
            "intake_consumer_backlog_records",
            "Records not yet consumed by the group: end offset minus committed offset, per topic and partition.",
            ["topic", "partition"],
            multiprocess_mode="mostrecent",
            registry=r,
        ),
        drain_rate=Gauge(
            "intake_consumer_drain_rate_records_per_second",
            "Records the group committed per second over the recent window, per topic.",
            ["topic"],
            multiprocess_mode="mostrecent",
            registry=r,
        ),
        time_to_drain=Gauge(
            "intake_consumer_time_to_drain_seconds",
            "Estimated time to consume the backlog at the recent rate, per topic (+Inf: backlog, no progress).",
            ["topic"],
            multiprocess_mode="mostrecent",
            registry=r,
        ),
        lag_sample_errors=Counter(
            "intake_consumer_lag_sample_errors_total", "Backlog samples that failed (Kafka did not answer).", registry=r
        ),
        lag_sampled_at=Gauge(
            "intake_consumer_lag_last_sample_timestamp_seconds",
            "Unix time of the last successful backlog sample.",
            multiprocess_mode="mostrecent",
            registry=r,
        ),
    )
