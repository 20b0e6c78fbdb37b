"""The OpenAPI document's components: the schemas, headers, parameters and security schemes the operations refer to.

Generated from the code, not written by hand: the registration schema from the pydantic model
:class:`processors.registration.Registration` (with the length bounds of :data:`processors.registration.LIMITS`) and
its enums; the error codes from :data:`processors.reasons.REASONS`; per-field validation codes from
:data:`processors.registration.FIELD_ERRORS` and ``NIK_CODES``; submission states from :data:`intake.status.STATES`.
"""

from __future__ import annotations

from typing import Any

from ingest.tokens import SUBMISSION_ID
from intake.auth import SCHEME
from intake.settings import Settings
from intake.status import FINAL_STATES, STATES
from processors.reasons import REASONS
from processors.registration import FIELD_ERRORS, NIK_CODES, registration_json_schema

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


def ref(name: str) -> dict[str, str]:
    """A reference to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A response with a JSON body of ``schema`` (and ``extra`` keys such as ``headers``)."""
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


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
                        "code": ref("ErrorCode"),
                        "message": {
                            "type": "string",
                            "description": "In the client's language (Accept-Language; Indonesian by default).",
                        },
                        "message_id": {"type": "string", "description": "In Bahasa Indonesia."},
                        "message_en": {"type": "string", "description": "In English."},
                        "fields": {"type": "array", "items": ref("FieldError")},
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
            "code": ref("ErrorCode"),
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
                "partition": {
                    **count,
                    "description": "The Kafka partition the record was appended to (absent with the offset when "
                    "Kafka did not report it, as after a broker failover).",
                },
                "offset": {**count, "description": "Its offset there: compare with GET /v1/queue."},
                "queue": {**place, "description": "The place in the queue when the watermark knows it."},
            },
        },
        "Status": {
            "type": "object",
            "required": ["submission_id", "state", "reason"],
            "properties": {
                "submission_id": submission_id,
                "state": ref("SubmissionState"),
                "updated_at": {"type": "string"},
                "reason": ref("Reason"),
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
                        "state": ref("SubmissionState"),
                        "reason": ref("Reason"),
                    },
                },
            },
        },
    }


def components(settings: Settings) -> dict[str, Any]:
    """The ``components`` object of the document for ``settings``."""
    return {
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
    }
