"""Erasing an applicant's data on request (UU PDP), ``intake erase``.

Every processed submission is indexed under its applicant's keyed NIK hash (``applicants/<hash>/<id>``, an
empty object written first by the pipeline). :func:`erase_applicant` finds them all and, for each: deletes
the KTP images and the registration record (``INTAKE_BUCKET_REGISTRATIONS``), publishes an ``erased``
registration record on the registrations topic (it replaces the submission's earlier records there when the
topic is compacted, and tells the programme's systems to erase their copies), replaces the status record by a
tombstone (state ``erased``, no data) and publishes that tombstone to the status topic (so every API's in-memory
view forgets the old status), and deletes the applicant's claims in the waves it took part in; then the index
itself. Idempotent: erasing twice is harmless.

Kafka is append-only: the submission records (which hold the NIK and the photo) expire with the topic's
retention (``INTAKE_TOPIC_RETENTION_MS``, 7 days by default; the dead-letter topic keeps 4 times that), which
bounds how long a copy survives an erasure; the registrations topic's ``max.compaction.lag.ms`` is the same
bound. The results topic carries no personal data. A submission still in the queue at the moment of erasure is
processed afterwards and indexed again: run the erasure again once the backlog has drained (its report counts
what it found).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from intake.kafka import RecordSink
from intake.registration_record import erased, registration_key
from intake.settings import Settings
from intake.status import StatusRecord, applicant_key, claim_key, photo_prefix, status_key
from intake.status_topic import publish_status
from intake.storage import ObjectStore
from intake.topics import topic_names


@dataclass
class ErasureReport:
    """What was erased: submission ids (not personal data) and counts."""

    submissions: list[str] = field(default_factory=list)
    images_deleted: int = 0
    registrations_deleted: int = 0
    claims_deleted: int = 0


async def erase_applicant(settings: Settings, store: ObjectStore, nik_hash_hex: str, sink: RecordSink) -> ErasureReport:
    """Erase everything stored for the applicant with this keyed NIK hash, publishing through ``sink`` an
    ``erased`` record per submission on the registrations topic and each status tombstone on the status topic (so
    no API's view keeps the old status). Storage and Kafka errors propagate (re-run)."""
    status_bucket, photo_bucket = settings.s3.bucket_status, settings.s3.bucket_photos
    registration_bucket, topic = settings.s3.bucket_registrations, topic_names(settings).registrations
    report = ErasureReport()
    markers = await store.list_keys(status_bucket, f"applicants/{nik_hash_hex}/")
    waves: set[int] = set()
    for marker in markers:
        sid = marker.rsplit("/", 1)[1]
        report.submissions.append(sid)
        stored = await store.get(status_bucket, status_key(sid))
        if stored is not None:
            wave = StatusRecord.from_json(stored.data).facts.get("wave")
            if isinstance(wave, int):
                waves.add(wave)
        for key in await store.list_keys(photo_bucket, photo_prefix(sid)):
            await store.delete(photo_bucket, key)  # listed, not downloaded: images can be megabytes
            report.images_deleted += 1
        if await store.get(registration_bucket, registration_key(sid)) is not None:
            report.registrations_deleted += 1
        await store.delete(registration_bucket, registration_key(sid))
        await sink.send(topic, sid.encode(), erased(sid).to_json())
        tombstone = StatusRecord(sid, "erased", datetime.now(UTC).isoformat())
        await store.put(status_bucket, status_key(sid), tombstone.to_json(), "application/json")
        await publish_status(sink, topic_names(settings).status, tombstone)
    for wave in sorted(waves):
        key = claim_key(wave, nik_hash_hex)
        if await store.get(status_bucket, key) is not None:
            report.claims_deleted += 1
        await store.delete(status_bucket, key)
    for sid in report.submissions:
        await store.delete(status_bucket, applicant_key(nik_hash_hex, sid))
    return report
