"""The demo registration page and the reference browser client, served at ``/demo/`` (development only).

Its routes are rows of the route table (:mod:`ingest.routes`, marked ``demo``), routed by
:func:`ingest.app.create_app` only when ``INTAKE_DEMO_PAGE`` is on (off by default, so production never serves
it). Only the files named in :data:`FILES` are served, each with an explicit content type (``text/javascript`` for
the modules, whatever the platform's MIME table says): there is no directory listing and no path taken from the
URL. ``POST /demo/sign`` stands in for the registration site's
backend, which in production signs each upload attempt after the applicant's login and OTP: it signs
``POST /v1/registrations`` with the first ``submit`` key for anyone, which is why the demo is off by default.
Every answer carries ``nosniff`` and a strict Content-Security-Policy (scripts, styles and connections from this
origin only; no inline script).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ingest.admission import Handler
from ingest.errors import error_response
from ingest.keys import SETTINGS
from intake.auth import sign, signing_key

STATIC_DIR = Path(__file__).with_name("static")
"""Where the page, its script, its style and the client module live."""

FILES: dict[str, str] = {
    "demo.html": "text/html; charset=utf-8",
    "demo.js": "text/javascript; charset=utf-8",
    "demo.css": "text/css; charset=utf-8",
    "intake-client.js": "text/javascript; charset=utf-8",
}
"""File name -> Content-Type: everything that is served. ``demo.html`` is served as ``/demo/``."""

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""The page is same-origin with the API: nothing else is loaded, framed or posted to."""

_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def serve(name: str) -> Handler:
    """The handler serving the file ``name`` of :data:`FILES` (404 ``not_found`` when it is missing)."""
    path = STATIC_DIR / name
    headers = {**_HEADERS, "Content-Type": FILES[name]}

    async def serve(request: web.Request) -> web.StreamResponse:
        if not path.is_file():  # e.g. a wheel built without the static files
            return error_response("not_found", request)
        return web.FileResponse(path, headers=headers)

    return serve


async def redirect(request: web.Request) -> web.StreamResponse:
    """``/demo`` -> ``/demo/`` (308)."""
    # Returned, not raised: the errors middleware turns raised HTTP exceptions into JSON errors.
    return web.Response(status=308, headers={"Location": "/demo/", **_HEADERS})


async def sign_upload(request: web.Request) -> web.StreamResponse:
    """Sign one upload attempt: JSON ``{"method", "path", "idempotency_key"}`` in, the headers to send out."""
    try:
        asked = await request.json()
        idempotency_key = asked.get("idempotency_key")
        ok = asked.get("method") == "POST" and asked.get("path") == "/v1/registrations"
    except (ValueError, AttributeError):
        return error_response("invalid_json", request)
    if not ok or not isinstance(idempotency_key, str) or not 8 <= len(idempotency_key) <= 128:
        # The shape the document gives validation_failed; no registration field is at fault here.
        return error_response("validation_failed", request, extra={"fields": [], "truncated": False})
    key = signing_key(request.app[SETTINGS].security.client_keys, "submit")
    headers = sign(key, "POST", "/v1/registrations", idempotency_key=idempotency_key)
    return web.json_response(headers, headers={"Cache-Control": "no-store"})
