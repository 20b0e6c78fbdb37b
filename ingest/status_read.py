"""``GET /v1/submissions/{id}`` and ``GET /v1/queue``: status reads answered from memory.

Where a personal status comes from, in order:

1. the in-memory status view (:mod:`ingest.status_view`), when it holds the submission;
2. ``received`` from memory, when the view has caught up and the receipt's place in the queue
   (``?partition=P&offset=O``, as in the ``status_url`` of the 202) is not passed by the workers yet according to
   the watermark (:mod:`ingest.queue`): no status can exist yet;
3. the status object in the object store (the durable record), otherwise: a submission dropped from a full
   view, a view still catching up, a read without the receipt's place, a submission whose offset is passed but
   whose status the view has not seen.

So while MinIO is down, statuses the view holds and queued submissions are still answered; only case 3 answers
503 ``storage_unavailable``. The ETag is a hash of the body: a 304 costs what a 200 does, and no I/O in cases 1-2.
A queued (``received``) answer carries the place (``queue``) with its messages and a polling hint that grows
with the queue ahead (:func:`processors.queue.poll_after`), also sent as ``Retry-After``. An answer rendered from
the view (without a ``first_submission``, which depends on another status) is memoised in the view in place of
the record (:meth:`StatusView.remember`): later reads of that status skip the JSON work, and their 304s even the
decompression.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ingest.errors import error_response
from ingest.keys import METRICS, QUEUE, SETTINGS, STATUS_VIEW, STORE
from ingest.queue import queue_response
from ingest.tokens import SUBMISSION_ID, verify_status_token
from intake.settings import Settings
from intake.status import FINAL_STATES, StatusRecord, status_key
from intake.storage import StorageUnavailable
from processors.queue import Place, place_messages, poll_after
from processors.reasons import reason

_MAX_OFFSET = 2**63 - 1


def receipt_of(request: web.Request) -> tuple[int, int] | None:
    """The receipt's (partition, offset) from the query string; ``None`` unless both are non-negative integers."""
    partition, offset = request.query.get("partition"), request.query.get("offset")
    if partition is None or offset is None or not partition.isdigit() or not offset.isdigit():
        return None
    p, o = int(partition), int(offset)
    return (p, o) if p < 100_000 and o <= _MAX_OFFSET else None


def status_url(submission_id: str, partition: int | None = None, offset: int | None = None) -> str:
    """The status URL given in the receipt: the id and, when known, the receipt's place in the queue."""
    if partition is None or offset is None:
        return f"/v1/submissions/{submission_id}"
    return f"/v1/submissions/{submission_id}?partition={partition}&offset={offset}"


def place_body(where: Place) -> dict[str, Any]:
    """The ``queue`` object of a receipt or a ``received`` status."""
    message_id, message_en = place_messages(where)
    wait = where.wait_s
    return {
        "partition": where.partition,
        "offset": where.offset,
        "ahead": where.ahead,
        "position": where.position,
        "drain_per_second": where.drain_per_s,
        "estimated_wait_seconds": None if wait is None else round(wait),
        "message_id": message_id,
        "message_en": message_en,
    }


def pace(settings: Settings, where: Place | None) -> int:
    """The polling hint for a submission at ``where`` (``None``: unknown or passed)."""
    s = settings.status
    return poll_after(where, settings.http.poll_after_s, s.poll_after_max_s, s.poll_wait_fraction)


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


class _Unavailable(Exception):
    """The object store was needed and did not answer."""


async def _lookup(
    request: web.Request, submission_id: str, receipt: tuple[int, int] | None
) -> tuple[StatusRecord | None, str]:
    """The submission's status record (``None``: none yet) and where it came from (the order of the module
    docstring: ``view``, ``queued`` or ``store``)."""
    app = request.app
    view = app.get(STATUS_VIEW)
    if view is not None:
        record = view.get(submission_id)
        if record is not None:
            return record, "view"
        if view.caught_up and receipt is not None and app[QUEUE].where(*receipt) is not None:
            return None, "queued"
    return await _stored(request, submission_id), "store"


def _queued(request: web.Request, submission_id: str, where: Place, poll_s: int) -> web.Response:
    """A queued submission's ``received`` answer. Its ETag is a hash of what the body is made of (the id, the
    place, the rate and the hint), so a 304 is decided before the body is rendered."""
    made_of = f"queued|{submission_id}|{where.partition}|{where.offset}|{where.ahead}|{where.drain_per_s}|{poll_s}"
    etag = '"' + hashlib.sha256(made_of.encode()).hexdigest()[:32] + '"'

    def render() -> bytes:
        body = status_body(None, submission_id, poll_s)
        body["queue"] = place_body(where)
        return json.dumps(body, ensure_ascii=False, sort_keys=True).encode()

    return _answer(request, etag, False, render, poll_s)


async def _stored(request: web.Request, submission_id: str) -> StatusRecord | None:
    settings = request.app[SETTINGS]
    try:
        stored = await request.app[STORE].get(settings.s3.bucket_status, status_key(submission_id))
    except StorageUnavailable as exc:
        raise _Unavailable from exc
    return StatusRecord.from_json(stored.data) if stored is not None else None


async def _first_submission(request: web.Request, first: str) -> StatusRecord | None:
    view = request.app.get(STATUS_VIEW)
    record = view.get(first) if view is not None else None
    return record if record is not None else await _stored(request, first)


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def get_status(request: web.Request) -> web.StreamResponse:
    """The submission's state with its reason, for the holder of its status token. ETag and 304 supported."""
    settings = request.app[SETTINGS]
    submission_id = request.match_info["submission_id"]
    if not SUBMISSION_ID.match(submission_id):
        return error_response("not_found", request)
    token = _bearer(request)
    if token is None or not verify_status_token(settings.security.status_token_key.encode(), submission_id, token):
        return error_response("unauthorized", request, extra=None)
    metrics = request.app[METRICS]
    view = request.app.get(STATUS_VIEW)
    memo = view.rendered(submission_id) if view is not None else None
    if memo is not None and view is not None:
        metrics.status_reads.labels("view").inc()
        return _answer(request, memo.etag, memo.final, lambda: view.body(memo.packed), settings.http.poll_after_s)
    receipt = receipt_of(request)
    try:
        record, source = await _lookup(request, submission_id, receipt)
        metrics.status_reads.labels(source).inc()
        where = request.app[QUEUE].where(*receipt) if record is None and receipt is not None else None
        poll_s = pace(settings, where)
        if source == "queued" and where is not None:
            return _queued(request, submission_id, where, poll_s)
        body = status_body(record, submission_id, poll_s)
        if where is not None:
            body["queue"] = place_body(where)
        first = record.facts.get("first_submission_id") if record is not None else None
        if isinstance(first, str) and SUBMISSION_ID.match(first):
            # The same applicant registered before (e.g. a retry without Idempotency-Key whose first answer was
            # lost): answer with where that first registration stands.
            earlier = await _first_submission(request, first)
            if earlier is not None:
                first_body = status_body(earlier, first, settings.http.poll_after_s)
                body["first_submission"] = {k: first_body[k] for k in ("submission_id", "state", "reason")}
    except _Unavailable:
        return error_response("storage_unavailable", request, retry_after_s=settings.http.retry_after_s)
    raw = json.dumps(body, ensure_ascii=False, sort_keys=True).encode()
    etag = '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'
    final = record is not None and record.state in FINAL_STATES
    if source == "view" and view is not None and "first_submission" not in body and record is not None:
        view.remember(submission_id, etag, final, raw)
    return _answer(request, etag, final, lambda: raw, poll_s)


def _answer(request: web.Request, etag: str, final: bool, body: Callable[[], bytes], poll_s: int) -> web.Response:
    """200 with the body, or 304 when ``If-None-Match`` names ``etag`` (then the body is never produced)."""
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Authorization"}
    if poll_s and not final:
        headers["Retry-After"] = str(poll_s)
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(status=200, body=body(), content_type="application/json", headers=headers)


async def get_queue(request: web.Request) -> web.StreamResponse:
    """The public queue watermark: the same small document for everybody, cacheable, answered from memory."""
    return queue_response(request, request.app[QUEUE])
