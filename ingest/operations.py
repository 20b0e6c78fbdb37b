"""What each route takes and answers when it succeeds: the OpenAPI description of one operation per function.

Each function is the ``doc`` of a row of the route table (:mod:`ingest.routes`) and returns, for the settings the
app was built with, the operation's optional ``description``, ``parameters`` and ``requestBody`` and its success
``responses``. The generator (:mod:`ingest.openapi`) adds the operation id, the summary, the security and the error
responses, all from the table row. Size limits and polling hints come from the settings.
"""

from __future__ import annotations

from typing import Any

from ingest.demo import FILES
from ingest.ktp_read import KINDS
from ingest.schemas import IDEMPOTENCY_KEY_PATTERN, PHOTO_MEDIA_TYPES, SUBMISSION_ID_PATTERN, json_response, ref
from intake.auth import ACTOR_HEADER, ACTOR_PATTERN
from intake.settings import Settings

Operation = dict[str, Any]
"""Keys among ``description``, ``parameters``, ``requestBody`` and ``responses`` (the success answers)."""


def _accept_language() -> dict[str, Any]:
    return {"$ref": "#/components/parameters/Accept-Language"}


def _not_modified() -> dict[str, Any]:
    return {
        "description": "Not modified (If-None-Match matched the ETag).",
        "headers": {"ETag": {"schema": {"type": "string"}}},
    }


def _submission_id() -> dict[str, Any]:
    return {
        "name": "submission_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": SUBMISSION_ID_PATTERN},
    }


def _ok() -> dict[str, Any]:
    return {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}


def create_registration(settings: Settings) -> Operation:
    """``POST /v1/registrations``."""
    limits = settings.limits
    http = settings.http
    accepted_example = {
        "submission_id": "k5vq3n2xw7hj4m6p2r3t5y7u2a",
        "state": "received",
        "status_url": "/v1/submissions/k5vq3n2xw7hj4m6p2r3t5y7u2a?partition=3&offset=120456",
        "status_token": "q1Zb2v7o8QeXy9s0AbCdEfGhIjKlMnOp",
        "poll_after_seconds": http.poll_after_s,
        "partition": 3,
        "offset": 120456,
    }
    return {
        "description": (
            "Answers 202 only after Kafka acknowledged the record. 503 `queue_unavailable` means the "
            "submission is not confirmed: the record may still be appended later, so resend with the same "
            "`Idempotency-Key` (it maps to the same submission). "
            f"The body is limited to {limits.max_body_bytes} bytes "
            f"(photo {limits.max_photo_bytes}, registration part {limits.max_registration_bytes}), "
            "enforced while streaming. "
            "A client that sends `Expect: 100-continue` gets `100 Continue` only once the upload is admitted, "
            "signed and within the declared length; a refusal (503 with Retry-After, 401, 429, 413, …) comes "
            "instead, before the body is sent."
        ),
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "A retry with the same key gets the same submission id (and is signed).",
                "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
            },
            _accept_language(),
        ],
        "requestBody": {
            "required": True,
            "description": f"At most {limits.max_body_bytes} bytes.",
            "x-max-body-bytes": limits.max_body_bytes,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["registration", "ktp_photo"],
                        "additionalProperties": False,
                        "properties": {
                            "registration": ref("Registration"),
                            "ktp_photo": {
                                "type": "string",
                                "format": "binary",
                                "minLength": 1,
                                "description": (
                                    f"The KTP photo (JPEG, PNG or WebP), at most {limits.max_photo_bytes} "
                                    "bytes. Its type (by magic bytes) and declared dimensions are checked "
                                    "before acceptance; the full photo gate runs after it."
                                ),
                                "x-max-bytes": limits.max_photo_bytes,
                            },
                        },
                    },
                    "encoding": {
                        "registration": {"contentType": "application/json"},
                        "ktp_photo": {"contentType": ", ".join(PHOTO_MEDIA_TYPES)},
                    },
                }
            },
        },
        "responses": {
            "202": {
                "description": (
                    "Accepted: Kafka acknowledged the record (acks=all). Poll `status_url` with `status_token`."
                ),
                "headers": {
                    "Location": {"description": "The status URL.", "required": True, "schema": {"type": "string"}}
                },
                "content": {"application/json": {"schema": ref("Accepted"), "example": accepted_example}},
            },
        },
    }


def submission_status(settings: Settings) -> Operation:
    """``GET /v1/submissions/{submission_id}``."""
    http = settings.http
    return {
        "parameters": [
            _submission_id(),
            {
                "name": "partition",
                "in": "query",
                "required": False,
                "description": "The receipt's partition (with `offset`: a queued submission is answered"
                " from memory with its place in the queue).",
                "schema": {"type": "integer", "minimum": 0},
            },
            {
                "name": "offset",
                "in": "query",
                "required": False,
                "description": "The receipt's offset.",
                "schema": {"type": "integer", "minimum": 0},
            },
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
            },
            _accept_language(),
        ],
        "responses": {
            "200": json_response(
                "The submission's state, with the reason code and both messages when rejected.",
                ref("Status"),
                headers={
                    "ETag": {"schema": {"type": "string"}, "required": True},
                    "Retry-After": {
                        "description": (
                            f"Polling hint while the state is not final: {http.poll_after_s} s, more while queued"
                            f" (a fraction of the estimated wait, at most {settings.status.poll_after_max_s} s)."
                        ),
                        "schema": {"type": "integer", "minimum": 0},
                    },
                },
            ),
            "304": _not_modified(),
        },
    }


def queue(settings: Settings) -> Operation:
    """``GET /v1/queue``."""
    return {
        "description": (
            "Answered from memory (sampled every"
            f" {settings.status.queue_sample_s} s), never a broker call per request. Poll this, not the"
            " personal status, until your receipt's offset is passed. Send the last `ETag` in"
            " `If-None-Match` for a 304."
        ),
        "responses": {
            "200": json_response(
                "The watermark.",
                ref("Queue"),
                headers={
                    "ETag": {"schema": {"type": "string"}, "required": True},
                    "Cache-Control": {"schema": {"type": "string"}, "required": True},
                },
            ),
            "304": _not_modified(),
        },
    }


def ktp_image(settings: Settings) -> Operation:
    """``GET /v1/submissions/{submission_id}/ktp/{kind}``."""
    return {
        "description": (
            "Needs a request signed by a key with scope `read_ktp`, naming the operator in `Intake-Actor` "
            "(covered by the signature). Every attempt is written to the audit log, acknowledged by Kafka, "
            "before the answer: when it cannot be, 503 `audit_unavailable` and no image."
        ),
        "parameters": [
            _submission_id(),
            {
                "name": "kind",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "enum": list(KINDS)},
            },
            {
                "name": ACTOR_HEADER,
                "in": "header",
                "required": True,
                "description": "The operator reading the image (recorded in the audit log).",
                "schema": {"type": "string", "pattern": ACTOR_PATTERN},
            },
            _accept_language(),
        ],
        "responses": {
            "200": {
                "description": "The normalised image (JPEG, no metadata); never cached.",
                "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
            },
        },
    }


def healthz(settings: Settings) -> Operation:
    """``GET /healthz``."""
    return {"responses": {"200": json_response("The process answers.", _ok())}}


def readyz(settings: Settings) -> Operation:
    """``GET /readyz``."""
    http = settings.http
    return {
        "description": (
            f"200 while Kafka answered within {http.readiness_max_age_s} s, the status view has replayed the"
            " status topic (503 `starting` until then) and the process is not draining."
        ),
        "responses": {"200": json_response("Ready to accept uploads.", _ok())},
    }


def metrics(settings: Settings) -> Operation:
    """``GET /metrics``."""
    return {
        "responses": {
            "200": {
                "description": "Prometheus text format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
        }
    }


def openapi(settings: Settings) -> Operation:
    """``GET /openapi.json``."""
    return {"responses": {"200": json_response("The OpenAPI 3.1 document.", {"type": "object"})}}


# --- the demo page (documented only when it is served) -----------------------------------------------------------


def demo_redirect(settings: Settings) -> Operation:
    """``GET /demo``."""
    return {
        "responses": {
            "308": {
                "description": "The page is at `/demo/`.",
                "headers": {"Location": {"required": True, "schema": {"const": "/demo/"}}},
            }
        }
    }


def demo_file(name: str) -> Any:
    """The operation of the demo file ``name`` of :data:`ingest.demo.FILES` (a function of the settings)."""
    media_type = FILES[name].split(";")[0]

    def operation(settings: Settings) -> Operation:
        return {
            "description": "Development only (`INTAKE_DEMO_PAGE`); never cached without revalidation.",
            "responses": {"200": {"description": name, "content": {media_type: {"schema": {"type": "string"}}}}},
        }

    return operation


def demo_sign(settings: Settings) -> Operation:
    """``POST /demo/sign``."""
    asked = {
        "type": "object",
        "required": ["method", "path", "idempotency_key"],
        "properties": {
            "method": {"const": "POST"},
            "path": {"const": "/v1/registrations"},
            "idempotency_key": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
        },
    }
    return {
        "description": (
            "Development only (`INTAKE_DEMO_PAGE`): stands in for the registration site's backend and signs one"
            " upload attempt with the first `submit` key, for anyone."
        ),
        "requestBody": {"required": True, "content": {"application/json": {"schema": asked}}},
        "responses": {
            "200": json_response(
                "The headers to send with the upload.",
                {"type": "object", "additionalProperties": {"type": "string"}},
            )
        },
    }
