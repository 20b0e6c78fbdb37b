"""The OpenAPI 3.1 description of API v1, generated from the code so that it cannot drift, served at /openapi.json.

Generated, not written by hand:

* the registration schema from the pydantic model :class:`processors.registration.Registration` (with the
  length bounds of :data:`processors.registration.LIMITS`) and its enums;
* error codes, their HTTP statuses and messages from :data:`processors.reasons.REASONS`: each operation lists
  the codes of :data:`ROUTE_ERRORS`, grouped by the table's status, so a code moved to another status moves in
  the document too;
* per-field validation codes from :data:`processors.registration.FIELD_ERRORS` and ``NIK_CODES``;
* submission states from :data:`intake.status.STATES`;
* size limits and the ``Retry-After``/polling hints from the settings the app was built with.

``tests/ingest/test_openapi.py`` keeps the document and the router in step (every route documented, every
documented path routed) and checks that each code a handler can emit is listed for its route.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from aiohttp import web

from ingest.keys import SETTINGS
from ingest.ktp_read import KINDS
from ingest.tokens import SUBMISSION_ID
from intake.auth import ACTOR_HEADER, ACTOR_PATTERN, AUTH_CODES, SCHEME
from intake.settings import Settings
from intake.status import FINAL_STATES, STATES
from processors.reasons import REASONS, Category
from processors.registration import FIELD_ERRORS, NIK_CODES, registration_json_schema

API_VERSION = "1.0.0"
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9._:-]{8,128}$"
"""The ``Idempotency-Key`` header's syntax (kept equal to :mod:`ingest.tokens`' by a test)."""
SUBMISSION_ID_PATTERN = SUBMISSION_ID.pattern
PHOTO_MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp")
EXAMPLE_REGISTRATION: dict[str, Any] = {
    "full_name": "Siti Nurhaliza",
    "email": "siti@example.co.id",
    "nik": "3171015705950001",
    "birth_date": "1995-05-17",
    "ktp_address": "Jl. Merdeka No. 1, Jakarta",
    "domicile_address": "Jl. Merdeka No. 1, Jakarta",
    "education": "s1",
    "employment_status": "pencari_kerja",
    "phone": "081234567890",
    "wave": 1,
}
"""A synthetic applicant (not a real NIK): the README's example."""

_COMMON_ERRORS = ("internal_error",)
"""Every route: the errors middleware turns any bug into a JSON ``internal_error``."""
_ADMITTED = ("rate_limited",)
"""Routes behind admission control (all but health, readiness, metrics and this document)."""
_SIGNED = AUTH_CODES
"""Routes that need a signed request (:data:`ingest.security.ROUTE_SCOPES`)."""

ROUTE_ERRORS: dict[tuple[str, str], tuple[str, ...]] = {
    ("POST", "/v1/registrations"): (
        *_SIGNED,
        *_ADMITTED,
        "overloaded",  # uploads in flight / bytes in flight / produce queue full, before the body is read
        "idempotency_key_invalid",
        "unsupported_media_type",
        "body_too_large",
        "photo_too_large",
        "request_timeout",
        "malformed_multipart",
        "missing_part",
        "photo_empty",
        "not_an_image",  # the edge's header checks (processors.photo.precheck)
        "unsupported_format",
        "too_many_pixels",
        "image_too_small",
        "image_corrupt",
        "invalid_json",
        "validation_failed",
        "wave_not_open",
        "queue_unavailable",
        "storage_unavailable",
        *_COMMON_ERRORS,
    ),
    ("GET", "/v1/submissions/{submission_id}"): (
        *_ADMITTED,
        "not_found",
        "unauthorized",
        "storage_unavailable",
        *_COMMON_ERRORS,
    ),
    ("GET", "/v1/submissions/{submission_id}/ktp/{kind}"): (
        *_SIGNED,
        *_ADMITTED,
        "actor_required",
        "not_found",
        "storage_unavailable",
        "audit_unavailable",
        *_COMMON_ERRORS,
    ),
    ("GET", "/v1/queue"): (*_ADMITTED, *_COMMON_ERRORS),
    ("GET", "/healthz"): _COMMON_ERRORS,
    ("GET", "/readyz"): ("overloaded", "queue_unavailable", "starting", *_COMMON_ERRORS),
    ("GET", "/metrics"): _COMMON_ERRORS,
    ("GET", "/openapi.json"): _COMMON_ERRORS,
}
"""(method, path) -> every error code the route can answer with. Its statuses come from the reason table."""

_STATUS_TEXT = {
    400: "Bad request",
    401: "Not authenticated (signature or status token)",
    403: "Not allowed",
    404: "Not found",
    408: "Request too slow",
    409: "Conflict with the wave",
    413: "Too large",
    415: "Unsupported media type",
    422: "Unprocessable registration or photo",
    429: "Rate limited",
    500: "Internal error",
    503: "Unavailable, retry later",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _registration_schemas() -> dict[str, Any]:
    """The ``Registration`` schema (and its enums) from the pydantic model, with the documented length bounds."""
    generated, defs = registration_json_schema("#/components/schemas/{model}")
    generated["description"] = (
        "One applicant's registration. Text is NFC-normalised and whitespace collapsed before the length bounds "
        "are applied; enum values match case-insensitively; `phone` is an Indonesian mobile number (08…, +628…); "
        "`nik` is the 16-digit NIK (spaces, '-' and '.' are ignored) and must match `birth_date`; the applicant "
        "must be 18 on the wave's opening date. Unknown fields are rejected."
    )
    generated["examples"] = [EXAMPLE_REGISTRATION]
    return {"Registration": generated, **defs}


def _error_schemas() -> dict[str, Any]:
    field_codes = sorted({*FIELD_ERRORS, *NIK_CODES})
    return {
        "ErrorCode": {"type": "string", "enum": sorted(REASONS), "description": "A code of the one reason table."},
        "FieldError": {
            "type": "object",
            "required": ["field", "code", "message_id", "message_en"],
            "properties": {
                "field": {"type": "string", "description": "The registration field (`_` for an unnamable one)."},
                "code": {"type": "string", "enum": field_codes},
                "message_id": {"type": "string"},
                "message_en": {"type": "string"},
            },
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "message_id", "message_en"],
                    "properties": {
                        "code": _ref("ErrorCode"),
                        "message": {
                            "type": "string",
                            "description": "In the client's language (Accept-Language; Indonesian by default).",
                        },
                        "message_id": {"type": "string", "description": "In Bahasa Indonesia."},
                        "message_en": {"type": "string", "description": "In English."},
                        "fields": {"type": "array", "items": _ref("FieldError")},
                        "truncated": {"type": "boolean"},
                        "limit_bytes": {"type": "integer"},
                        "part": {"type": "string"},
                        "unexpected_part": {"type": "string"},
                        "open_wave": {"type": "integer"},
                        "draining": {"type": "boolean"},
                        "reason": {"type": "string"},
                        "measured": {"type": ["number", "string", "null"]},
                        "threshold": {"type": ["number", "string", "null"]},
                    },
                    "additionalProperties": True,
                    "if": {"properties": {"code": {"const": "validation_failed"}}, "required": ["code"]},
                    "then": {"required": ["fields", "truncated"]},
                }
            },
        },
    }


def _status_schemas() -> dict[str, Any]:
    reason = {
        "type": "object",
        "required": ["code", "message_id", "message_en"],
        "properties": {
            "code": _ref("ErrorCode"),
            "message_id": {"type": "string"},
            "message_en": {"type": "string"},
            "measured": {"type": ["number", "string", "null"]},
            "threshold": {"type": ["number", "string", "null"]},
        },
    }
    submission_id = {"type": "string", "pattern": SUBMISSION_ID_PATTERN}
    count = {"type": "integer", "minimum": 0}
    place = {
        "type": "object",
        "description": (
            "The place in the queue: `ahead` submissions before this one in its partition (each partition is a"
            " lane drained in parallel), `position` = ahead + 1, the estimated wait at the partition's measured"
            " drain rate (null while no rate was measured), and the line for the applicant in both languages."
        ),
        "required": ["partition", "offset", "ahead", "position", "estimated_wait_seconds", "message_id", "message_en"],
        "properties": {
            "partition": count,
            "offset": count,
            "ahead": count,
            "position": {"type": "integer", "minimum": 1},
            "drain_per_second": {"type": ["number", "null"]},
            "estimated_wait_seconds": {"type": ["integer", "null"], "minimum": 0},
            "message_id": {"type": "string"},
            "message_en": {"type": "string"},
        },
    }
    return {
        "QueuePlace": place,
        "Queue": {
            "type": "object",
            "description": (
                "The public watermark: per partition of the submissions topic, the workers' next offset to process"
                " (`committed`), the log end and the measured drain rate. A submission with receipt (partition,"
                " offset) is queued while `committed <= offset`, `offset - committed` ahead of it."
            ),
            "required": ["sampled_at", "max_age_seconds", "partitions"],
            "properties": {
                "sampled_at": {
                    "type": ["string", "null"],
                    "description": "When the offsets were read (null: not yet).",
                },
                "max_age_seconds": {"type": "integer", "minimum": 1},
                "partitions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["partition", "committed", "end", "drain_per_second"],
                        "properties": {
                            "partition": count,
                            "committed": count,
                            "end": count,
                            "drain_per_second": {"type": ["number", "null"]},
                        },
                    },
                },
            },
        },
        "SubmissionState": {
            "type": "string",
            "enum": list(STATES),
            "description": f"Final states: {', '.join(FINAL_STATES)}; the others change (poll again).",
        },
        "Reason": {"oneOf": [{"type": "null"}, reason]},
        "Accepted": {
            "type": "object",
            "required": [
                "submission_id",
                "state",
                "status_url",
                "status_token",
                "poll_after_seconds",
                "partition",
                "offset",
            ],
            "properties": {
                "submission_id": submission_id,
                "state": {"const": "received"},
                "status_url": {
                    "type": "string",
                    "pattern": "^/v1/submissions/"
                    + SUBMISSION_ID_PATTERN.strip("^$")
                    + r"\?partition=[0-9]+&offset=[0-9]+$",
                },
                "status_token": {"type": "string", "description": "Bearer token for the status URL; keep it."},
                "poll_after_seconds": {"type": "integer", "minimum": 0},
                "partition": {**count, "description": "The Kafka partition the record was appended to."},
                "offset": {**count, "description": "Its offset there: compare with GET /v1/queue."},
                "queue": {**place, "description": "The place in the queue when the watermark knows it."},
            },
        },
        "Status": {
            "type": "object",
            "required": ["submission_id", "state", "reason"],
            "properties": {
                "submission_id": submission_id,
                "state": _ref("SubmissionState"),
                "updated_at": {"type": "string"},
                "reason": _ref("Reason"),
                "objects": {"type": "object", "additionalProperties": {"type": "string"}},
                "facts": {"type": "object"},
                "poll_after_seconds": {"type": "integer", "minimum": 0},
                "queue": {**place, "description": "While `received` and the receipt's place is in the URL."},
                "first_submission": {
                    "type": "object",
                    "description": "Where this applicant's earlier registration in the wave stands.",
                    "required": ["submission_id", "state", "reason"],
                    "properties": {
                        "submission_id": submission_id,
                        "state": _ref("SubmissionState"),
                        "reason": _ref("Reason"),
                    },
                },
            },
        },
    }


def _error_responses(route: tuple[str, str]) -> dict[str, Any]:
    """The error responses of ``route``: its codes grouped by the reason table's HTTP status."""
    by_status: dict[int, list[str]] = {}
    for code in ROUTE_ERRORS[route]:
        by_status.setdefault(REASONS[code].http_status, []).append(code)
    responses: dict[str, Any] = {}
    for status in sorted(by_status):
        codes = by_status[status]
        lines = [f"* `{c}`: {REASONS[c].message_en}" for c in codes]
        schema = {
            "allOf": [_ref("Error"), {"properties": {"error": {"properties": {"code": {"enum": codes}}}}}],
        }
        response: dict[str, Any] = {
            "description": _STATUS_TEXT.get(status, "Error") + ".\n\n" + "\n".join(lines),
            "content": {"application/json": {"schema": schema}},
        }
        if any(REASONS[c].category is Category.RETRYABLE for c in codes):
            response["headers"] = {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
        responses[str(status)] = response
    return responses


def _json_response(description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API built with ``settings`` (a fresh dict on every call)."""
    limits = settings.limits
    http = settings.http
    post = ("POST", "/v1/registrations")
    status = ("GET", "/v1/submissions/{submission_id}")
    accepted_example = {
        "submission_id": "k5vq3n2xw7hj4m6p2r3t5y7u2a",
        "state": "received",
        "status_url": "/v1/submissions/k5vq3n2xw7hj4m6p2r3t5y7u2a?partition=3&offset=120456",
        "status_token": "q1Zb2v7o8QeXy9s0AbCdEfGhIjKlMnOp",
        "poll_after_seconds": http.poll_after_s,
        "partition": 3,
        "offset": 120456,
    }
    post_responses = {
        "202": {
            "description": "Accepted: Kafka acknowledged the record (acks=all). Poll `status_url` with `status_token`.",
            "headers": {"Location": {"description": "The status URL.", "required": True, "schema": {"type": "string"}}},
            "content": {"application/json": {"schema": _ref("Accepted"), "example": accepted_example}},
        },
        **_error_responses(post),
    }
    status_responses = {
        "200": _json_response(
            "The submission's state, with the reason code and both messages when rejected.",
            _ref("Status"),
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
        "304": {
            "description": "Not modified (If-None-Match matched the ETag).",
            "headers": {"ETag": {"schema": {"type": "string"}}},
        },
        **_error_responses(status),
    }
    ok = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}
    paths: dict[str, Any] = {
        "/v1/registrations": {
            "post": {
                "operationId": "createRegistration",
                "summary": "Submit a registration with the KTP photo",
                "description": (
                    "Answers 202 only after Kafka acknowledged the record. 503 `queue_unavailable` means the "
                    "submission is not confirmed: the record may still be appended later, so resend with the same "
                    "`Idempotency-Key` (it maps to the same submission). "
                    f"The body is limited to {limits.max_body_bytes} bytes "
                    f"(photo {limits.max_photo_bytes}, registration part {limits.max_registration_bytes}), "
                    "enforced while streaming."
                ),
                "security": [{"clientSignature": []}],
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "A retry with the same key gets the same submission id (and is signed).",
                        "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
                    },
                    {"$ref": "#/components/parameters/Accept-Language"},
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
                                    "registration": _ref("Registration"),
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
                "responses": post_responses,
            }
        },
        "/v1/submissions/{submission_id}": {
            "get": {
                "operationId": "getSubmissionStatus",
                "summary": "Where a submission stands",
                "security": [{"statusToken": []}],
                "parameters": [
                    {
                        "name": "submission_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": SUBMISSION_ID_PATTERN},
                    },
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
                    {"$ref": "#/components/parameters/Accept-Language"},
                ],
                "responses": status_responses,
            }
        },
        "/v1/queue": {
            "get": {
                "operationId": "getQueue",
                "summary": "The public queue watermark (same for everybody, cacheable)",
                "description": (
                    "Answered from memory (sampled every"
                    f" {settings.status.queue_sample_s} s), never a broker call per request. Poll this, not the"
                    " personal status, until your receipt's offset is passed. Send the last `ETag` in"
                    " `If-None-Match` for a 304."
                ),
                "security": [],
                "responses": {
                    "200": _json_response(
                        "The watermark.",
                        _ref("Queue"),
                        headers={
                            "ETag": {"schema": {"type": "string"}, "required": True},
                            "Cache-Control": {"schema": {"type": "string"}, "required": True},
                        },
                    ),
                    "304": {
                        "description": "Not modified (If-None-Match matched the ETag).",
                        "headers": {"ETag": {"schema": {"type": "string"}}},
                    },
                    **_error_responses(("GET", "/v1/queue")),
                },
            }
        },
        "/v1/submissions/{submission_id}/ktp/{kind}": {
            "get": {
                "operationId": "getKtpImage",
                "summary": "A stored KTP image, for the verification back office (audited)",
                "description": (
                    "Needs a request signed by a key with scope `read_ktp`, naming the operator in `Intake-Actor` "
                    "(covered by the signature). Every attempt is written to the audit log, acknowledged by Kafka, "
                    "before the answer: when it cannot be, 503 `audit_unavailable` and no image."
                ),
                "security": [{"clientSignature": []}],
                "parameters": [
                    {
                        "name": "submission_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": SUBMISSION_ID_PATTERN},
                    },
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
                    {"$ref": "#/components/parameters/Accept-Language"},
                ],
                "responses": {
                    "200": {
                        "description": "The normalised image (JPEG, no metadata); never cached.",
                        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    **_error_responses(("GET", "/v1/submissions/{submission_id}/ktp/{kind}")),
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness",
                "security": [],
                "responses": {
                    "200": _json_response("The process answers.", ok),
                    **_error_responses(("GET", "/healthz")),
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness",
                "description": (
                    f"200 while Kafka answered within {http.readiness_max_age_s} s, the status view has replayed the"
                    " status topic (503 `starting` until then) and the process is not draining."
                ),
                "security": [],
                "responses": {
                    "200": _json_response("Ready to accept uploads.", ok),
                    **_error_responses(("GET", "/readyz")),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus exposition",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Prometheus text format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_error_responses(("GET", "/metrics")),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": _json_response("The OpenAPI 3.1 document.", {"type": "object"}),
                    **_error_responses(("GET", "/openapi.json")),
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "Prakerja Intake",
            "version": API_VERSION,
            "description": (
                "Load-resilient intake of Kartu Prakerja registrations. Every error is JSON "
                '`{"error": {"code", "message", "message_id", "message_en", …}}` with a code of one table; '
                f"429 and 503 answers carry Retry-After (base {http.retry_after_s} s)."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": {
                **_registration_schemas(),
                **_error_schemas(),
                **_status_schemas(),
            },
            "headers": {
                "Retry-After": {
                    "description": "Seconds to wait before retrying.",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 0},
                }
            },
            "parameters": {
                "Accept-Language": {
                    "name": "Accept-Language",
                    "in": "header",
                    "required": False,
                    "description": "`message` is in English when English is preferred to Indonesian.",
                    "schema": {"type": "string"},
                }
            },
            "securitySchemes": {
                "clientSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": (
                        f"`{SCHEME} Credential=<client>/<key id>, Timestamp=<unix s>, Nonce=<16-64 of "
                        "[A-Za-z0-9_-]>, Signature=<base64url HMAC-SHA256>` over the scheme, method, path, timestamp, "
                        "nonce, Idempotency-Key and Intake-Actor, joined by newlines. Valid for "
                        f"{settings.security.auth_max_skew_s:g} s either side of the server's clock, once. "
                        "Browsers get it from the registration site's backend for each attempt."
                    ),
                },
                "statusToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The `status_token` returned with the 202 of that submission.",
                },
            },
        },
    }


@functools.lru_cache(maxsize=8)
def _document_bytes(settings: Settings) -> bytes:
    return json.dumps(openapi_document(settings), ensure_ascii=False).encode()


async def openapi_json(request: web.Request) -> web.Response:
    """``GET /openapi.json``: the document for this app's settings, built once and cached."""
    return web.Response(
        body=_document_bytes(request.app[SETTINGS]),
        content_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )
