"""JSON error responses built from the one reason table (``processors.reasons``).

Every error body has the same shape::

    {"error": {"code": "...", "message": "...", "message_id": "...", "message_en": "...", ...extra}}

``message`` is in the language the client asked for (``Accept-Language``: Indonesian unless it prefers
English). Retryable codes carry ``Retry-After``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from processors.reasons import Category, reason

ERROR_CODE = web.ResponseKey("error_code", str)
"""The reason code of an error response, for the metrics middleware (no need to parse the body back)."""


def prefers_english(request: web.Request | None) -> bool:
    """True when the client's Accept-Language puts English before Indonesian."""
    if request is None:
        return False
    header = request.headers.get("Accept-Language", "").lower()
    for part in header.split(","):
        tag = part.split(";")[0].strip()
        if tag.startswith("id"):
            return False
        if tag.startswith("en"):
            return True
    return False


def error_response(
    code: str,
    request: web.Request | None = None,
    *,
    retry_after_s: int | None = None,
    status: int | None = None,
    extra: dict[str, Any] | None = None,
) -> web.Response:
    """A JSON error for ``code``. ``status`` overrides the table's HTTP status (rarely needed)."""
    row = reason(code)
    body: dict[str, Any] = {
        "code": code,
        "message": row.message_en if prefers_english(request) else row.message_id,
        "message_id": row.message_id,
        "message_en": row.message_en,
    }
    if extra:
        body.update(extra)
    headers = {"Cache-Control": "no-store"}
    if row.category is Category.RETRYABLE:
        headers["Retry-After"] = str(retry_after_s if retry_after_s is not None else 5)
    response = web.Response(
        status=status or row.http_status,
        body=json.dumps({"error": body}, ensure_ascii=False).encode(),
        content_type="application/json",
        headers=headers,
    )
    response[ERROR_CODE] = code
    return response
