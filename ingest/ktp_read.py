"""``GET /v1/submissions/{id}/ktp/{kind}``: a stored KTP image, for the verification back office only.

The request must be signed by a key with scope ``read_ktp`` and name the operator in ``Intake-Actor`` (both
checked by :mod:`ingest.security`; the operator is part of the signature). Every attempt is appended to the
audit topic, acknowledged by Kafka, before the answer: if the audit log cannot be written the image is not
served (503 ``audit_unavailable``). The image is sent with ``no-store`` so no cache keeps a copy.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiohttp import web

from ingest.errors import error_response
from ingest.keys import ADMISSION, METRICS, PRINCIPAL, SETTINGS, SINK, STORE
from ingest.tokens import SUBMISSION_ID
from intake.audit import AuditRecord, append
from intake.kafka import QueueUnavailable
from intake.status import photo_key
from intake.storage import StorageUnavailable

log = logging.getLogger("intake.ingest")

KINDS = ("card", "frame")
"""The images stored per accepted submission: the warped card and the normalised frame."""


async def get_ktp_image(request: web.Request) -> web.StreamResponse:
    """Serve one stored image after auditing the read. Blocks on the store read and the audit append."""
    settings = request.app[SETTINGS]
    metrics = request.app[METRICS]
    submission_id, kind = request.match_info["submission_id"], request.match_info["kind"]
    if not SUBMISSION_ID.match(submission_id) or kind not in KINDS:
        return error_response("not_found", request)
    principal = request[PRINCIPAL]
    if principal.actor is None:
        return error_response("actor_required", request)
    try:
        stored = await request.app[STORE].get(settings.s3.bucket_photos, photo_key(submission_id, kind))
    except StorageUnavailable:
        return error_response("storage_unavailable", request, retry_after_s=settings.http.retry_after_s)
    outcome = "served" if stored is not None else "not_found"
    record = AuditRecord(
        at=datetime.now(UTC).isoformat(),
        client_id=principal.client_id,
        key_id=principal.key_id,
        actor=principal.actor,
        submission_id=submission_id,
        kind=kind,
        outcome=outcome,
        source_address=request.app[ADMISSION].source_address(request),
    )
    try:
        await append(request.app[SINK], settings, record)
    except QueueUnavailable:
        metrics.ktp_reads.labels("audit_unavailable").inc()
        return error_response("audit_unavailable", request, retry_after_s=settings.http.retry_after_s)
    metrics.ktp_reads.labels(outcome).inc()
    log.info("ktp image read", extra={"submission_id": submission_id, "kind": kind, "outcome": outcome})
    if stored is None:
        return error_response("not_found", request)
    return web.Response(
        body=stored.data,
        content_type="image/jpeg",
        headers={"Cache-Control": "no-store", "Content-Disposition": f'inline; filename="{kind}.jpg"'},
    )
