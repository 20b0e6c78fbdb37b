"""Topic names and their specifications, derived from settings in one place.

The submissions topic carries one record per accepted upload (key: keyed NIK hash, so one partition owns each
applicant); the results topic carries outcomes for downstream notification; the retry topic holds records that
failed on their own, until they are due again; the dead-letter topic carries records that can never succeed,
with the error; the audit topic records every read of a stored KTP image (one partition: one order of events).
The registrations topic is the hand-off to the programme: one record per decided submission (key: the submission
id), compacted so the latest record of each submission is kept (:mod:`intake.registration_record`).

The status topic is the applicant-facing state of every submission as a table: log-compacted, keyed by
submission id, each value the whole :class:`intake.status.StatusRecord` (no NIK, nothing more than the status
answer shows). Every writer of a status object publishes it there after the object store accepted it; each API
process replays it into memory at start and follows it (:mod:`ingest.status_view`). It is a new topic rather
than the results topic made compacted: the results topic stays an event stream (delete policy, summaries, for
notifications), and compaction keeps only the latest state per key, which is exactly what a view needs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from intake.settings import Settings

STATUS_SEGMENT_MS = 3_600_000
"""The status topic rolls a segment every hour, so compaction (which never touches the active segment) can drop
superseded states during a wave rather than after the default week."""


@dataclass(frozen=True)
class TopicSpec:
    """A topic as the project creates it."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]


@dataclass(frozen=True)
class Topics:
    """The names of every topic the service uses."""

    submissions: str
    results: str
    dead_letter: str
    retry: str
    audit: str
    registrations: str
    status: str


def topic_names(settings: Settings) -> Topics:
    """Names of the topics for this environment (``INTAKE_TOPIC_PREFIX``); the same (immutable) object for the
    same prefix, since the upload path asks for it once per request."""
    return _topics_of(settings.kafka.topic_prefix)


@functools.lru_cache(maxsize=16)
def _topics_of(p: str) -> Topics:
    return Topics(
        submissions=f"{p}.submissions.v1",
        results=f"{p}.results.v1",
        dead_letter=f"{p}.dead-letter.v1",
        retry=f"{p}.retry.v1",
        audit=f"{p}.audit.v1",
        registrations=f"{p}.registrations.v1",
        status=f"{p}.status.v1",
    )


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic with explicit partitions, retention and ``max.message.bytes`` consistent with the upload limit."""
    names = topic_names(settings)
    k = settings.kafka
    max_message = str(settings.limits.max_message_bytes)
    common = {
        "max.message.bytes": max_message,
        "min.insync.replicas": str(min(2, k.replication_factor)),
        "cleanup.policy": "delete",
    }
    return [
        TopicSpec(
            names.submissions, k.partitions, k.replication_factor, {**common, "retention.ms": str(k.retention_ms)}
        ),
        TopicSpec(names.results, k.partitions, k.replication_factor, {**common, "retention.ms": str(k.retention_ms)}),
        TopicSpec(names.dead_letter, 1, k.replication_factor, {**common, "retention.ms": str(4 * k.retention_ms)}),
        TopicSpec(names.retry, k.partitions, k.replication_factor, {**common, "retention.ms": str(k.retention_ms)}),
        TopicSpec(names.audit, 1, k.replication_factor, {**common, "retention.ms": str(k.audit_retention_ms)}),
        TopicSpec(names.registrations, k.partitions, k.replication_factor, registrations_config(settings)),
        TopicSpec(
            names.status,
            k.partitions,
            k.replication_factor,
            {
                **common,
                "cleanup.policy": "compact",
                "retention.ms": "-1",  # compaction, never age, removes a status: the latest one of each stays
                "segment.ms": str(STATUS_SEGMENT_MS),
                "min.cleanable.dirty.ratio": "0.5",
            },
        ),
    ]


def registrations_config(settings: Settings) -> dict[str, str]:
    """The registrations topic: compacted by submission id (``INTAKE_REGISTRATIONS_RETENTION_MS`` -1), or compacted
    and deleted after that retention. ``max.compaction.lag.ms`` is the submissions topic's retention, so an erased
    registration's earlier records leave this topic within the same bound as the submissions they came from."""
    k = settings.kafka
    retention = k.registrations_retention_ms
    return {
        "max.message.bytes": str(settings.limits.max_message_bytes),
        "min.insync.replicas": str(min(2, k.replication_factor)),
        "cleanup.policy": "compact" if retention == -1 else "compact,delete",
        "retention.ms": str(retention),
        "max.compaction.lag.ms": str(k.retention_ms),
    }
