"""Route handlers of API v1. Each handler is thin: read, check, hand to the sink or the store, answer.

Promises kept here:
* ``POST /v1/registrations`` answers 202 only after Kafka acknowledged the record (acks=all); when Kafka does
  not acknowledge in time it answers 503 ``queue_unavailable`` with Retry-After: not confirmed, so never 202;
  a timed-out record may still be appended later, which a resend with the same Idempotency-Key makes harmless.
* ``GET /v1/submissions/{id}`` answers only to the holder of that submission's status token.
* No NIK is ever put in a response, a URL, a log line or a metric label.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ingest.errors import error_response
from ingest.keys import LIFECYCLE, METRICS, SETTINGS, SINK, STORE, WAVE
from ingest.records import submission_record
from ingest.security import PRINCIPAL
from ingest.tokens import SUBMISSION_ID, InvalidIdempotencyKey, new_submission_id, status_token, verify_status_token
from ingest.upload import UploadError, read_upload
from intake.kafka import QueueUnavailable
from intake.status import FINAL_STATES, StatusRecord, status_key
from intake.storage import StorageUnavailable
from intake.topics import topic_names
from processors.photo.precheck import precheck
from processors.reasons import Rejected, reason
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

    digest, record = submission_record(
        settings, registration, upload.photo, submission_id=submission_id, client_id=client_id, received_at=now
    )
    started = time.perf_counter()
    try:
        await request.app[SINK].send(topic_names(settings).submissions, digest.encode(), record)
    except QueueUnavailable as exc:
        metrics.shed.labels("queue_unavailable").inc()
        log.warning("kafka did not acknowledge", extra={"submission_id": submission_id, "error": str(exc)})
        return error_response("queue_unavailable", request, retry_after_s=settings.http.retry_after_s)
    metrics.produce_duration.observe(time.perf_counter() - started)
    metrics.http_body_bytes.labels("/v1/registrations").observe(upload.body_bytes)
    log.info("accepted", extra={"submission_id": submission_id, "nik_hash": digest[:16]})
    status_url = f"/v1/submissions/{submission_id}"
    return _json(
        202,
        {
            "submission_id": submission_id,
            "state": "received",
            "status_url": status_url,
            "status_token": status_token(key, submission_id),
            "poll_after_seconds": settings.http.poll_after_s,
        },
        headers={"Location": status_url, "Cache-Control": "no-store"},
    )


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def status_body(record: StatusRecord | None, submission_id: str, poll_after_s: int) -> dict[str, Any]:
    """The applicant-facing view of a status record (``received`` when none is stored yet)."""
    if record is None:
        return {"submission_id": submission_id, "state": "received", "reason": None, "poll_after_seconds": poll_after_s}
    body: dict[str, Any] = {
        "submission_id": submission_id,
        "state": record.state,
        "updated_at": record.updated_at,
        "reason": None,
        "objects": record.objects,
        "facts": record.facts,
    }
    if record.reason is not None:
        row = reason(record.reason)
        body["reason"] = {
            "code": row.code,
            "message_id": row.message_id,
            "message_en": row.message_en,
            "measured": record.measured,
            "threshold": record.threshold,
        }
    if record.state not in FINAL_STATES:
        body["poll_after_seconds"] = poll_after_s
    return body


async def get_status(request: web.Request) -> web.StreamResponse:
    """The submission's state with its reason, for the holder of its status token. ETag and 304 supported."""
    settings = request.app[SETTINGS]
    submission_id = request.match_info["submission_id"]
    if not SUBMISSION_ID.match(submission_id):
        return error_response("not_found", request)
    token = _bearer(request)
    if token is None or not verify_status_token(settings.security.status_token_key.encode(), submission_id, token):
        return error_response("unauthorized", request, extra=None)
    try:
        stored = await request.app[STORE].get(settings.s3.bucket_status, status_key(submission_id))
    except StorageUnavailable:
        return error_response("storage_unavailable", request, retry_after_s=settings.http.retry_after_s)
    record = StatusRecord.from_json(stored.data) if stored is not None else None
    body = status_body(record, submission_id, settings.http.poll_after_s)
    first = record.facts.get("first_submission_id") if record is not None else None
    if isinstance(first, str) and SUBMISSION_ID.match(first):
        # The same applicant registered before (e.g. a retry without Idempotency-Key whose first answer was
        # lost): answer with where that first registration stands.
        try:
            earlier = await request.app[STORE].get(settings.s3.bucket_status, status_key(first))
        except StorageUnavailable:
            return error_response("storage_unavailable", request, retry_after_s=settings.http.retry_after_s)
        if earlier is not None:
            first_body = status_body(StatusRecord.from_json(earlier.data), first, settings.http.poll_after_s)
            body["first_submission"] = {k: first_body[k] for k in ("submission_id", "state", "reason")}
    raw = json.dumps(body, ensure_ascii=False, sort_keys=True).encode()
    etag = '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Authorization"}
    if settings.http.poll_after_s and (record is None or record.state not in FINAL_STATES):
        headers["Retry-After"] = str(settings.http.poll_after_s)
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(status=200, body=raw, content_type="application/json", headers=headers)


async def healthz(request: web.Request) -> web.StreamResponse:
    """Liveness: the process answers."""
    return _json(200, {"status": "ok"})


async def readyz(request: web.Request) -> web.StreamResponse:
    """Readiness: Kafka answered recently and the process is not shutting down."""
    if request.app[LIFECYCLE].draining:
        return error_response(
            "overloaded", request, retry_after_s=request.app[SETTINGS].http.retry_after_s, extra={"draining": True}
        )
    if request.app[SINK].ready():
        return _json(200, {"status": "ready"})
    return error_response("queue_unavailable", request, retry_after_s=request.app[SETTINGS].http.retry_after_s)


async def metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus exposition."""
    return web.Response(
        body=request.app[METRICS].render(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )
