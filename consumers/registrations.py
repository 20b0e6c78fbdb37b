"""The registration step of the chain: keep the decided submission's registration, and hand it to the programme.

For each submission the pipeline has decided, :meth:`RegistrationStep.keep`:

1. builds the :class:`intake.registration_record.RegistrationRecord` from the registration the record carries
   (validated and normalised by the API before it was queued, :func:`processors.registration.parse_registration`)
   and the decision;
2. stores it in the registrations bucket under :func:`intake.registration_record.registration_key` (the
   submission id, never the NIK);
3. publishes the same bytes on the registrations topic, keyed by the submission id.

It runs before the status is stored and the offset committed, so a submission whose status says it was decided
has its registration kept. Both writes are idempotent: the record's bytes depend only on the submission and its
decision, so a redelivery rewrites the same object under the same key, and the compacted topic keeps the
latest record of the key. Storage and Kafka failures propagate (transient: the worker retries the record).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from intake.envelope import Submission
from intake.kafka import RecordSink
from intake.metrics import Metrics
from intake.registration_record import RegistrationRecord, registration_key
from intake.settings import Settings
from intake.status import StatusRecord
from intake.topics import topic_names


def registration_record(sub: Submission, decision: StatusRecord) -> RegistrationRecord:
    """The record for ``sub`` decided as ``decision``."""
    return RegistrationRecord(
        submission_id=sub.submission_id,
        state=decision.state,
        reason=decision.reason,
        received_at=sub.received_at,
        registration=sub.registration.copy(),
    )


Put = Callable[[str, str, bytes, str], Awaitable[None]]
"""Writes one object (bucket, key, data, content type), metered: the pipeline's own put."""


class RegistrationStep:
    """Stores and publishes registration records; holds no per-record state."""

    def __init__(self, settings: Settings, put: Put, sink: RecordSink, metrics: Metrics) -> None:
        self._bucket = settings.s3.bucket_registrations
        self._topic = topic_names(settings).registrations
        self._put = put
        self._sink = sink
        self._metrics = metrics

    async def keep(self, sub: Submission, decision: StatusRecord) -> None:
        """Store, then publish; storage and Kafka errors propagate (the worker retries the record)."""
        started = time.perf_counter()
        record = registration_record(sub, decision)
        body = record.to_json()
        await self._put(self._bucket, registration_key(sub.submission_id), body, "application/json")
        await self._sink.send(self._topic, sub.submission_id.encode(), body)
        self._metrics.registration_records.labels(record.state).inc()
        self._metrics.step_duration.labels("registration").observe(time.perf_counter() - started)
