"""Submission ids and per-submission status tokens.

* A submission id is 26 lowercase base32 characters. Without an ``Idempotency-Key`` it is random; with one it
  is derived by HMAC from the client and the key, so a retry of the same request gets the same id across
  processes and machines, with no shared state.
* The status token is an HMAC of the submission id under ``INTAKE_STATUS_TOKEN_KEY``: whoever holds it may read
  that submission's status, and nobody else. It is verified without storage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
SUBMISSION_ID = re.compile(r"^[a-z2-7]{26}$")


class InvalidIdempotencyKey(ValueError):
    """The Idempotency-Key header is not 8 to 128 characters of [A-Za-z0-9._:-]."""


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()


def new_submission_id(key: bytes, client_id: str, idempotency_key: str | None) -> str:
    """A submission id: deterministic for (client, Idempotency-Key), random otherwise."""
    if idempotency_key is None:
        return _b32(secrets.token_bytes(16))
    if not _IDEMPOTENCY_KEY.match(idempotency_key):
        raise InvalidIdempotencyKey
    digest = hmac.new(key, f"idem\x00{client_id}\x00{idempotency_key}".encode(), hashlib.sha256).digest()
    return _b32(digest[:16])


def status_token(key: bytes, submission_id: str) -> str:
    """The bearer token that lets its holder read ``submission_id``'s status."""
    digest = hmac.new(key, f"status\x00{submission_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()


def verify_status_token(key: bytes, submission_id: str, token: str) -> bool:
    """Constant-time check of a status token."""
    return hmac.compare_digest(status_token(key, submission_id), token)
