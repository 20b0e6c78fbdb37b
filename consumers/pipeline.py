"""The chain of steps for one submission record.

    decode (open the sealed personal data with the applicant's data key) ▶ index the submission under its applicant (for
    erasure) ▶ photo gate (process pool) ▶ screen the NIK against the registries ▶ claim the applicant's place in the
    wave ▶ store the images ▶ keep the registration (record in the registrations bucket, then the registrations topic:
    :mod:`consumers.registrations`) ▶ store the status ▶ publish the outcome (results topic) and the status (compacted
    status topic)

Each step is small and the order is the contract. Every write uses a deterministic key derived from the
submission id (or, for the claim, from the wave and the keyed NIK hash), so running the chain twice for the
same record (at-least-once delivery) leaves the same objects and the same state: effectively once. The offset
is committed by the worker only after :meth:`Pipeline.handle` returned.

One registration per NIK per wave: the first submission to claim ``claims/wave-<n>/<nik hash>.json`` with an
atomic create-if-absent owns the place; a later, different submission for the same NIK and wave is rejected
as ``duplicate_registration`` and its status names the first submission. A redelivery of the owner finds its
own claim and goes on. Rejected photos and registry hits claim nothing, so the applicant can submit again.

Raises:
* :class:`intake.envelope.EnvelopeError`: the record is not a valid envelope, or its sealed parts do not open
  (dead-letter it).
* :class:`intake.crypto.KeyDestroyed`: the applicant's data key was destroyed by an erasure, so the record can
  never be read (dead-letter it as ``erased``), or was destroyed while the record was processed; what the
  submission left was erased first and its status is the tombstone ``erased`` (:meth:`Pipeline._forget`).
* :class:`intake.storage.StorageUnavailable` / :class:`intake.kafka.QueueUnavailable`: transient, retry.
* anything else: a bug (dead-letter it with the error type).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from consumers.erasure import erase_submission
from consumers.photo_task import PhotoVerdict
from consumers.registrations import RegistrationStep
from intake.crypto import KeyDestroyed, KeyStore, key_id, parse_keks
from intake.envelope import Sealed, Submission, decode
from intake.kafka import RecordSink
from intake.metrics import Metrics
from intake.settings import Settings
from intake.status import StatusRecord, applicant_key, claim_key, photo_key, status_key
from intake.status_topic import publish_status
from intake.storage import ObjectStore, StorageUnavailable
from intake.topics import topic_names

PhotoRunner = Callable[[bytes], Awaitable[PhotoVerdict]]
"""Runs :func:`consumers.photo_task.check_photo` (in a process pool in production, inline in tests)."""


class Screener(Protocol):
    """Screens a keyed NIK hash against the exclusion registries: a ``registry_*`` reason code or None."""

    def screen(self, nik_hash: bytes) -> str | None: ...


class NoRegistries:
    """A :class:`Screener` that lists nobody."""

    def screen(self, nik_hash: bytes) -> str | None:
        return None


@dataclass(frozen=True)
class Outcome:
    """What happened to one submission: its state and, when rejected, the reason code."""

    submission_id: str
    state: str
    reason: str | None


class Pipeline:
    """The steps for one record. Holds no per-record state; safe to run concurrently for many records."""

    def __init__(
        self,
        settings: Settings,
        store: ObjectStore,
        photos: PhotoRunner,
        results: RecordSink,
        metrics: Metrics,
        *,
        screener: Screener | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._photos = photos
        self._results = results
        self._metrics = metrics
        self._screener = screener or NoRegistries()
        self._results_topic = topic_names(settings).results
        self._registrations = RegistrationStep(settings, self._put, results, metrics)
        self._status_topic = topic_names(settings).status
        self._keys = KeyStore(store, settings.s3.bucket_keys, parse_keks(settings.security.data_keks))

    async def handle(self, value: bytes | None) -> Outcome:
        """Run every step for one record value; see the module docstring for what it raises."""
        sub, dek = await self._open(value)
        await self._put(
            self._settings.s3.bucket_status,
            applicant_key(sub.nik_hash, sub.submission_id),
            b"",
            "application/octet-stream",
        )
        record = await self._decide(sub)
        await self._registrations.keep(sub, record)
        await self._put(
            self._settings.s3.bucket_status, status_key(sub.submission_id), record.to_json(), "application/json"
        )
        await self._publish(sub, record)
        if dek is not None and await self._keys.get(sub.nik_hash) != dek:
            await self._forget(sub.submission_id, sub.nik_hash, _wave(sub))
            raise KeyDestroyed("the applicant was erased while their record was processed")
        return Outcome(sub.submission_id, record.state, record.reason)

    async def open(self, value: bytes | None) -> Submission:
        """The record's submission, its sealed parts opened with the applicant's data key, read from the key store
        every time (never cached here, so an erasure reaches the consumers at once). A plaintext (version 1)
        record is taken as it is."""
        return (await self._open(value))[0]

    async def _open(self, value: bytes | None) -> tuple[Submission, bytes | None]:
        """:meth:`open`, and the data key that opened the record (None for a plaintext one)."""
        envelope = decode(value)
        if isinstance(envelope, Submission):
            return envelope, None
        try:
            dek = await self._keys.require(envelope.nik_hash)
        except KeyDestroyed:
            await self._unreadable(envelope, replaced=False)
            raise
        if envelope.dek_id is not None and envelope.dek_id != key_id(dek):
            await self._unreadable(envelope, replaced=True)
            raise KeyDestroyed("sealed under an earlier data key of the applicant, destroyed by an erasure")
        return envelope.open(dek), dek

    async def _unreadable(self, envelope: Sealed, *, replaced: bool) -> None:
        """The record can never be opened: its applicant's key was destroyed (``replaced``: and a fresh key created
        since, the record names an earlier one). If the submission was never processed (no status: it was queued
        at the erasure), or, its key being gone, is still indexed under its applicant (a :meth:`_forget` that
        failed midway), it is forgotten now; otherwise ``intake erase`` already erased it. The header is not
        authenticated before a key opens the record, so a record's word alone never erases a processed submission
        of an applicant who has a key."""
        bucket, sid = self._settings.s3.bucket_status, envelope.submission_id
        indexed = not replaced and await self._store.get(bucket, applicant_key(envelope.nik_hash, sid)) is not None
        if indexed or await self._store.get(bucket, status_key(sid)) is None:
            await self._forget(sid, envelope.nik_hash, None)

    async def _forget(self, submission_id: str, nik_hash: str, wave: int | None) -> None:
        """The submission's applicant was erased: still queued at the erasure (or sealed under a key an API process
        still cached), or erased while this consumer processed it, after the erasure looked for its data. Erase
        what it may have left as ``intake erase`` does (:func:`consumers.erasure.erase_submission`: images,
        registration record, the ``erased`` registration record, the status tombstone in the store and on the
        status topic, so the status never says ``received`` or ``eligible`` for ever), then its claim in ``wave``
        (or the wave its status named) if it owns it, and its entry in the applicant index.

        Why this closes the race with an erasure: :meth:`handle` reads the key again after its last write. Key
        still there: the erasure destroys it later, and finds and erases everything written before. Key gone: the
        erasure may have looked before the writes, so this erases them. Idempotent: a failure is retried, and the
        retry meets the destroyed key in :meth:`open` and, the submission still indexed (its index entry goes
        last), comes here again."""
        erased_one = await erase_submission(self._settings, self._store, submission_id, self._results)
        wave = wave if wave is not None else erased_one.wave
        bucket = self._settings.s3.bucket_status
        if wave is not None:
            claim = await self._store.get(bucket, claim_key(wave, nik_hash))
            if claim is not None and json.loads(claim.data).get("submission_id") == submission_id:
                await self._store.delete(bucket, claim_key(wave, nik_hash))
        await self._store.delete(bucket, applicant_key(nik_hash, submission_id))

    async def _decide(self, sub: Submission) -> StatusRecord:
        now = datetime.now(UTC).isoformat()
        started = time.perf_counter()
        verdict = await self._photos(bytes(sub.photo))  # decoded: bytes already, which bytes() returns as is
        self._metrics.step_duration.labels("photo").observe(time.perf_counter() - started)
        if verdict.result is None:
            return StatusRecord(
                sub.submission_id,
                "rejected",
                now,
                reason=verdict.reason,
                measured=verdict.measured,
                threshold=verdict.threshold,
            )
        hit = self._screener.screen(bytes.fromhex(sub.nik_hash))
        if hit is not None:
            return StatusRecord(sub.submission_id, "rejected", now, reason=hit)
        owner, fresh = await self._claim(sub)
        if owner != sub.submission_id:
            return StatusRecord(
                sub.submission_id,
                "rejected",
                now,
                reason="duplicate_registration",
                facts={"first_submission_id": owner},
            )
        if not fresh:  # a redelivery: never undo a selection made when the wave closed
            current = await self._store.get(self._settings.s3.bucket_status, status_key(sub.submission_id))
            if current is not None:
                record = StatusRecord.from_json(current.data)
                if record.state in ("selected", "quota_exceeded"):
                    return record
        res = verdict.result
        started = time.perf_counter()
        objects = {"frame": photo_key(sub.submission_id, "frame")}
        await self._put(self._settings.s3.bucket_photos, objects["frame"], res.frame_jpeg, "image/jpeg")
        if res.card_jpeg is not None:
            objects["card"] = photo_key(sub.submission_id, "card")
            await self._put(self._settings.s3.bucket_photos, objects["card"], res.card_jpeg, "image/jpeg")
        self._metrics.step_duration.labels("persist").observe(time.perf_counter() - started)
        facts: dict[str, Any] = {
            "width": res.width,
            "height": res.height,
            "sha256": res.sha256,
            "card_found": res.card_found,
            "source_format": res.source_format,
            "quality": res.quality,
            "wave": _wave(sub),
            "received_at": sub.received_at,
        }
        return StatusRecord(sub.submission_id, "eligible", now, objects=objects, facts=facts)

    async def _claim(self, sub: Submission) -> tuple[str, bool]:
        """The submission owning this NIK's place in the wave, and whether this call created the claim."""
        bucket, key = self._settings.s3.bucket_status, claim_key(_wave(sub), sub.nik_hash)
        body = json.dumps({"submission_id": sub.submission_id, "received_at": sub.received_at}).encode()
        if await self._store.put_if_absent(bucket, key, body, "application/json"):
            return sub.submission_id, True
        existing = await self._store.get(bucket, key)
        if existing is None:  # deleted in between (erasure): claim again on the next delivery
            raise StorageUnavailable("claim vanished")
        return str(json.loads(existing.data)["submission_id"]), False

    async def _put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        started = time.perf_counter()
        try:
            await self._store.put(bucket, key, data, content_type)
        except Exception:
            self._metrics.storage_errors.labels("put").inc()
            raise
        self._metrics.storage_duration.observe(time.perf_counter() - started)

    async def _publish(self, sub: Submission, record: StatusRecord) -> None:
        body = {
            "submission_id": sub.submission_id,
            "state": record.state,
            "reason": record.reason,
            "updated_at": record.updated_at,
        }
        started = time.perf_counter()
        await self._results.send(self._results_topic, sub.submission_id.encode(), json.dumps(body).encode())
        await publish_status(self._results, self._status_topic, record)
        self._metrics.step_duration.labels("publish").observe(time.perf_counter() - started)


def _wave(sub: Submission) -> int:
    return int(sub.registration["wave"])
