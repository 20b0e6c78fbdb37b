"""Route handlers of API v1. Each handler is thin: read, check, hand to the sink or the store, answer.

Promises kept here:
* The record's personal data (registration fields, photo) is sealed with the applicant's data key
  (:mod:`ingest.sealing`); when the key store cannot give it in time the upload answers 503
  ``storage_unavailable`` with Retry-After, and nothing is queued.
* ``POST /v1/registrations`` answers 202 only after Kafka acknowledged the record (acks=all); when Kafka does
  not acknowledge in time it answers 503 ``queue_unavailable`` with Retry-After: not confirmed, so never 202;
  a timed-out record may still be appended later, which a resend with the same Idempotency-Key makes harmless.
* The 202 receipt names where Kafka appended the record (partition, offset: no personal data), the place in
  the queue when the watermark knows it, and a polling hint that grows with the queue ahead.
* Status reads (``GET /v1/submissions/{id}``, ``GET /v1/queue``) are in :mod:`ingest.status_read`.
* No NIK is ever put in a response, a URL, a log line or a metric label.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ingest.errors import error_response
from ingest.keys import DATA_KEYS, LIFECYCLE, METRICS, PRINCIPAL, QUEUE, SETTINGS, SINK, STATUS_VIEW, WAVE
from ingest.records import LOGGED_HASH_CHARS, applicant_of, submission_record
from ingest.sealing import KeysUnavailable
from ingest.status_read import pace, place_body, status_url
from ingest.tokens import InvalidIdempotencyKey, new_submission_id, status_token
from ingest.upload import UploadError, read_upload
from intake.kafka import QueueUnavailable
from intake.topics import topic_names
from processors.photo.precheck import precheck
from processors.reasons import Rejected
from processors.registration import parse_registration

log = logging.getLogger("intake.ingest")


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body, ensure_ascii=False).encode(),
        content_type="application/json",
        headers=headers,
    )


async def post_registration(request: web.Request) -> web.StreamResponse:
    """Accept one registration with its KTP photo (multipart: ``registration`` JSON, ``ktp_photo`` file).

    Reached only through a request signed by a client with scope ``submit`` (:mod:`ingest.security`)."""
    settings = request.app[SETTINGS]
    metrics = request.app[METRICS]
    key = settings.security.status_token_key.encode()
    client_id = request[PRINCIPAL].client_id
    try:
        submission_id = new_submission_id(key, client_id, request.headers.get("Idempotency-Key"))
    except InvalidIdempotencyKey:
        return error_response("idempotency_key_invalid", request)
    try:
        upload = await read_upload(request, settings.limits, settings.http.body_read_timeout_s)
    except UploadError as exc:
        return error_response(exc.code, request, extra=exc.detail or None)
    wave = request.app[WAVE]
    try:
        registration = parse_registration(upload.registration, on=wave.opening_date)
    except Rejected as exc:
        return error_response(exc.code, request, extra=exc.detail or None)
    now = datetime.now(UTC)
    if registration.wave != wave.number or not wave.is_open(now):
        return error_response("wave_not_open", request, extra={"open_wave": wave.number})
    try:  # cheap, bounded header checks; the worker's full gate judges the rest
        precheck(upload.photo, settings.photo)
    except Rejected as exc:
        return error_response(exc.code, request, extra={"measured": exc.measured, "threshold": exc.threshold})

    applicant = applicant_of(settings, registration)
    dek = None
    if settings.security.seal_records:  # the personal data goes to Kafka sealed with the applicant's data key
        try:
            dek = await request.app[DATA_KEYS].key_for(applicant)
        except KeysUnavailable as exc:
            metrics.shed.labels("storage_unavailable").inc()
            log.warning("key store unavailable", extra={"submission_id": submission_id, "error": str(exc)})
            return error_response("storage_unavailable", request, retry_after_s=settings.http.retry_after_s)
    digest, record = submission_record(
        settings,
        registration,
        upload.photo,
        submission_id=submission_id,
        client_id=client_id,
        received_at=now,
        dek=dek,
        applicant=applicant,
    )
    started = time.perf_counter()
    try:
        delivery = await request.app[SINK].send(topic_names(settings).submissions, digest.encode(), record)
    except QueueUnavailable as exc:
        metrics.shed.labels("queue_unavailable").inc()
        log.warning("kafka did not acknowledge", extra={"submission_id": submission_id, "error": str(exc)})
        return error_response("queue_unavailable", request, retry_after_s=settings.http.retry_after_s)
    metrics.produce_duration.observe(time.perf_counter() - started)
    metrics.http_body_bytes.labels("/v1/registrations").observe(upload.body_bytes)
    log.info("accepted", extra={"submission_id": submission_id, "nik_hash": digest[:LOGGED_HASH_CHARS]})
    offset = delivery.offset
    # Without an offset (a sink that cannot tell; librdkafka's is refused as unconfirmed) the receipt has no place.
    url = status_url(submission_id, delivery.partition, offset) if offset is not None else status_url(submission_id)
    where = request.app[QUEUE].where(delivery.partition, offset) if offset is not None else None
    receipt: dict[str, Any] = {
        "submission_id": submission_id,
        "state": "received",
        "status_url": url,
        "status_token": status_token(key, submission_id),
        "poll_after_seconds": pace(settings, where),
    }
    if offset is not None:
        receipt.update(partition=delivery.partition, offset=offset)
    if where is not None:
        receipt["queue"] = place_body(where)
    return _json(202, receipt, headers={"Location": url, "Cache-Control": "no-store"})


async def healthz(request: web.Request) -> web.StreamResponse:
    """Liveness: the process answers."""
    return _json(200, {"status": "ok"})


async def readyz(request: web.Request) -> web.StreamResponse:
    """Readiness: Kafka answered recently, the status view caught up, and the process is not shutting down."""
    if request.app[LIFECYCLE].draining:
        return error_response(
            "overloaded", request, retry_after_s=request.app[SETTINGS].http.retry_after_s, extra={"draining": True}
        )
    view = request.app.get(STATUS_VIEW)
    if view is not None and not view.caught_up:  # the status view is still replaying the status topic
        return error_response("starting", request, retry_after_s=request.app[SETTINGS].http.retry_after_s)
    if request.app[SINK].ready():
        return _json(200, {"status": "ready"})
    return error_response("queue_unavailable", request, retry_after_s=request.app[SETTINGS].http.retry_after_s)


async def metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus exposition."""
    return web.Response(
        body=request.app[METRICS].render(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )
