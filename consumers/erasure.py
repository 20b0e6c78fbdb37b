"""Erasing an applicant's data on request (UU PDP), ``intake erase``.

First it destroys the applicant's data key (``keys/<hash>.json`` in ``INTAKE_BUCKET_KEYS``, :mod:`intake.crypto`):
the personal data of every record of the applicant in Kafka (submissions, retry and dead-letter topics) was sealed
with it, so from then on no copy can be read (crypto-shredding); a consumer that meets one dead-letters it as
``erased``, and a later upload of the same NIK gets a fresh key.

Every processed submission is indexed under its applicant's keyed NIK hash (``applicants/<hash>/<id>``, an empty
object written first by the pipeline). :func:`erase_applicant` finds them all, deletes the applicant's claims in the
waves their statuses name, and, for each submission (:func:`erase_submission`): deletes the KTP images and the
registration record (``INTAKE_BUCKET_REGISTRATIONS``), publishes an ``erased`` registration record on the
registrations topic (it replaces the submission's earlier records there when the topic is compacted, and tells the
programme's systems to erase their copies), replaces the status record by a tombstone (state ``erased``, no data)
and publishes that tombstone to the status topic (so every API's in-memory view forgets the old status); then the
index itself. Idempotent: erasing twice is harmless, and a run that failed midway is finished by running it again.

Kafka is append-only: the sealed submission records stay until the topic's retention (``INTAKE_TOPIC_RETENTION_MS``),
unreadable. The registrations topic's records are not sealed (the programme reads them): the ``erased`` record
replaces them, and its ``max.compaction.lag.ms`` bounds how long the older ones stay. The results topic carries no
personal data. A submission still in the queue at the moment of erasure can no longer be read: it is dead-lettered
``erased`` and its status becomes the tombstone; an API process may have cached the key for
``INTAKE_DATA_KEY_CACHE_S`` and seal an upload made meanwhile under it (also dead-lettered ``erased``): the applicant
uploads again. A record a consumer is processing while the erasure runs may be written after the erasure looked:
the consumer reads the key again after its last write and, when it is gone, erases the submission itself with
:func:`erase_submission` (``consumers.pipeline.Pipeline._forget``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from intake.crypto import KeyStore, parse_keks
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
    key_destroyed: bool = False
    """Whether the applicant had a data key (now destroyed: their Kafka records are unreadable)."""
    images_deleted: int = 0
    registrations_deleted: int = 0
    claims_deleted: int = 0


@dataclass(frozen=True)
class SubmissionErased:
    """What :func:`erase_submission` deleted, and the wave the submission's status named (its claim's wave)."""

    images_deleted: int
    registration_deleted: int
    wave: int | None


async def erase_submission(settings: Settings, store: ObjectStore, sid: str, sink: RecordSink) -> SubmissionErased:
    """Erase one submission: delete its KTP images and registration record, publish the ``erased`` registration
    record, and replace its status by the tombstone (in the store, then on the status topic). Leaves the claim and
    the applicant index to the caller. Idempotent; storage and Kafka errors propagate (re-run)."""
    status_bucket, photo_bucket = settings.s3.bucket_status, settings.s3.bucket_photos
    registration_bucket, names = settings.s3.bucket_registrations, topic_names(settings)
    wave = await _wave_of(settings, store, sid)
    images = 0
    for key in await store.list_keys(photo_bucket, photo_prefix(sid)):
        await store.delete(photo_bucket, key)  # listed, not downloaded: images can be megabytes
        images += 1
    registration = int(await store.get(registration_bucket, registration_key(sid)) is not None)
    await store.delete(registration_bucket, registration_key(sid))
    await sink.send(names.registrations, sid.encode(), erased(sid).to_json())
    tombstone = StatusRecord(sid, "erased", datetime.now(UTC).isoformat())
    await store.put(status_bucket, status_key(sid), tombstone.to_json(), "application/json")
    await publish_status(sink, names.status, tombstone)
    return SubmissionErased(images, registration, wave)


async def _wave_of(settings: Settings, store: ObjectStore, sid: str) -> int | None:
    """The wave the submission's status names (None: no status, a tombstone, or a status without one)."""
    stored = await store.get(settings.s3.bucket_status, status_key(sid))
    wave = StatusRecord.from_json(stored.data).facts.get("wave") if stored is not None else None
    return wave if isinstance(wave, int) else None


async def erase_applicant(settings: Settings, store: ObjectStore, nik_hash_hex: str, sink: RecordSink) -> ErasureReport:
    """Erase everything stored for the applicant with this keyed NIK hash, publishing through ``sink`` an
    ``erased`` record per submission on the registrations topic and each status tombstone on the status topic (so
    no API's view keeps the old status). Storage and Kafka errors propagate (re-run)."""
    status_bucket = settings.s3.bucket_status
    report = ErasureReport()
    keys = KeyStore(store, settings.s3.bucket_keys, parse_keks(settings.security.data_keks))
    report.key_destroyed = await keys.destroy(nik_hash_hex)  # first: from now on no Kafka copy can be read
    markers = await store.list_keys(status_bucket, f"applicants/{nik_hash_hex}/")
    report.submissions = [marker.rsplit("/", 1)[1] for marker in markers]
    # The claims first, while the statuses still name their waves: a re-run after a failure further on (a status
    # already a tombstone, which names none) then has no claim left to find.
    waves = {wave for sid in report.submissions if (wave := await _wave_of(settings, store, sid)) is not None}
    for wave in sorted(waves):
        key = claim_key(wave, nik_hash_hex)
        if await store.get(status_bucket, key) is not None:
            report.claims_deleted += 1
        await store.delete(status_bucket, key)
    for sid in report.submissions:
        erased_one = await erase_submission(settings, store, sid, sink)
        report.images_deleted += erased_one.images_deleted
        report.registrations_deleted += erased_one.registration_deleted
    for sid in report.submissions:
        await store.delete(status_bucket, applicant_key(nik_hash_hex, sid))
    return report
