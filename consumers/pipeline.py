"""The chain of steps for one submission record: decode, check the photo, persist, record the status, publish.

Each step is small and the order is the contract: every write uses a deterministic key derived from the
submission id, so running the chain twice for the same record (at-least-once delivery) leaves the same
objects and the same status: effectively once. The offset is committed by the worker only after
:meth:`Pipeline.handle` returned.

Raises:
* :class:`intake.envelope.EnvelopeError`: the record is not a valid envelope (dead-letter it).
* :class:`intake.storage.StorageUnavailable` / :class:`intake.kafka.QueueUnavailable`: transient, retry.
* anything else: a bug (dead-letter it with the error type).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from consumers.photo_task import PhotoVerdict
from intake.envelope import Submission, decode
from intake.kafka import RecordSink
from intake.metrics import Metrics
from intake.settings import Settings
from intake.status import StatusRecord, photo_key, status_key
from intake.storage import ObjectStore
from intake.topics import topic_names

PhotoRunner = Callable[[bytes], Awaitable[PhotoVerdict]]
"""Runs :func:`consumers.photo_task.check_photo` (in a process pool in production, inline in tests)."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one submission: its state and, when rejected, the reason code."""

    submission_id: str
    state: str
    reason: str | None


class Pipeline:
    """The steps for one record. Holds no per-record state; safe to run concurrently for many records."""

    def __init__(
        self, settings: Settings, store: ObjectStore, photos: PhotoRunner, results: RecordSink, metrics: Metrics
    ) -> None:
        self._settings = settings
        self._store = store
        self._photos = photos
        self._results = results
        self._metrics = metrics
        self._results_topic = topic_names(settings).results

    async def handle(self, value: bytes | None) -> Outcome:
        """Run every step for one record value; see the module docstring for what it raises."""
        sub = decode(value)
        started = time.perf_counter()
        verdict = await self._photos(sub.photo)
        self._metrics.step_duration.labels("photo").observe(time.perf_counter() - started)
        record = await self._persist(sub, verdict)
        await self._publish(sub, record)
        return Outcome(sub.submission_id, record.state, record.reason)

    async def _persist(self, sub: Submission, verdict: PhotoVerdict) -> StatusRecord:
        s3 = self._settings.s3
        now = datetime.now(UTC).isoformat()
        started = time.perf_counter()
        if verdict.result is None:
            record = StatusRecord(
                sub.submission_id,
                "rejected",
                now,
                reason=verdict.reason,
                measured=verdict.measured,
                threshold=verdict.threshold,
            )
        else:
            res = verdict.result
            objects = {"frame": photo_key(sub.submission_id, "frame")}
            await self._put(s3.bucket_photos, objects["frame"], res.frame_jpeg, "image/jpeg")
            if res.card_jpeg is not None:
                objects["card"] = photo_key(sub.submission_id, "card")
                await self._put(s3.bucket_photos, objects["card"], res.card_jpeg, "image/jpeg")
            facts = {
                "width": res.width,
                "height": res.height,
                "sha256": res.sha256,
                "card_found": res.card_found,
                "source_format": res.source_format,
                "quality": res.quality,
            }
            record = StatusRecord(sub.submission_id, "processed", now, objects=objects, facts=facts)
        await self._put(s3.bucket_status, status_key(sub.submission_id), record.to_json(), "application/json")
        self._metrics.step_duration.labels("persist").observe(time.perf_counter() - started)
        return record

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
        await self._results.send(self._results_topic, sub.nik_hash.encode(), json.dumps(body).encode())
        self._metrics.step_duration.labels("publish").observe(time.perf_counter() - started)
