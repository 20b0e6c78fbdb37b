"""The OpenAPI 3.1 description of API v1, generated from the route table so that it cannot drift, served at
/openapi.json.

Generated, not written by hand: one operation per row of the app's route table (:mod:`ingest.routes`): its
``operationId``, summary and security from the row, its request and success answers from the row's ``doc``
(:mod:`ingest.operations`), and its error responses from the row's :attr:`~ingest.routes.Route.error_codes`, grouped
by the HTTP status of the one reason table (:data:`processors.reasons.REASONS`), so a code moved to another status
moves in the document too. The components (schemas, headers, security schemes) are :mod:`ingest.schemas`.

``tests/ingest/test_openapi.py`` keeps the document, the table and the router in step (every route documented, every
documented path routed) and checks that each code a handler can emit is listed for its route.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ingest.keys import ROUTES, SETTINGS
from ingest.schemas import components, ref
from intake.settings import Settings
from processors.reasons import REASONS, Category

if TYPE_CHECKING:
    from ingest.routes import Route

API_VERSION = "1.0.0"

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


def error_responses(codes: Sequence[str]) -> dict[str, Any]:
    """The error responses for ``codes``: grouped by the reason table's HTTP status, in the order given."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(REASONS[code].http_status, []).append(code)
    responses: dict[str, Any] = {}
    for status in sorted(by_status):
        group = by_status[status]
        lines = [f"* `{c}`: {REASONS[c].message_en}" for c in group]
        schema = {
            "allOf": [ref("Error"), {"properties": {"error": {"properties": {"code": {"enum": group}}}}}],
        }
        response: dict[str, Any] = {
            "description": _STATUS_TEXT.get(status, "Error") + ".\n\n" + "\n".join(lines),
            "content": {"application/json": {"schema": schema}},
        }
        if any(REASONS[c].category is Category.RETRYABLE for c in group):
            response["headers"] = {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
        responses[str(status)] = response
    return responses


def operation(route: Route, settings: Settings) -> dict[str, Any]:
    """The OpenAPI operation of ``route`` for ``settings``."""
    doc = route.doc(settings)
    out: dict[str, Any] = {"operationId": route.name, "summary": route.summary}
    if "description" in doc:
        out["description"] = doc["description"]
    scheme = route.security_scheme
    out["security"] = [{scheme: []}] if scheme is not None else []
    for key in ("parameters", "requestBody"):
        if key in doc:
            out[key] = doc[key]
    out["responses"] = {**doc["responses"], **error_responses(route.error_codes)}
    return out


def openapi_document(settings: Settings, routes: Sequence[Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API built with ``settings`` serving ``routes`` (a fresh dict on every
    call); ``routes`` is :func:`ingest.routes.routes_for` the settings."""
    http = settings.http
    paths: dict[str, Any] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = operation(route, settings)
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
        "components": components(settings),
    }


@functools.lru_cache(maxsize=8)
def _document_bytes(settings: Settings, routes: tuple[Route, ...]) -> bytes:
    return json.dumps(openapi_document(settings, routes), ensure_ascii=False).encode()


async def openapi_json(request: web.Request) -> web.Response:
    """``GET /openapi.json``: the document of this app's settings and routes, built once and cached."""
    return web.Response(
        body=_document_bytes(request.app[SETTINGS], request.app[ROUTES]),
        content_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )
