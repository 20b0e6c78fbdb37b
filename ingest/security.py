"""The API's security middlewares: response headers, CORS for the browser front end, client authentication.

* :func:`headers_middleware`: every answer carries ``nosniff``, ``no-referrer``, HSTS and, unless the handler set
  its own (the demo page), a Content-Security-Policy that lets nothing load or frame it.
* :class:`Cors`: only origins listed in ``INTAKE_CORS_ORIGINS`` get CORS headers. Preflights (``OPTIONS`` with
  ``Access-Control-Request-Method``) are answered here, 204 for a listed origin and 403 ``origin_not_allowed``
  otherwise; no cookies are ever allowed (credentials are headers the page sets).
* :class:`Authenticator`: a route whose row in the route table (:mod:`ingest.routes`) names a signing scope needs a
  signed request (:mod:`intake.auth`) whose key has that scope, whatever the method (``HEAD`` too); the
  :class:`~intake.auth.Principal` is put on the request under :data:`ingest.keys.PRINCIPAL`. Everything else
  (status reads with their per-submission token, health, metrics, the spec) is not signed.
"""

from __future__ import annotations

from aiohttp import web

from ingest.admission import Handler
from ingest.errors import error_response
from ingest.keys import PRINCIPAL
from ingest.routes import route_of
from intake.auth import ACTOR_HEADER, AuthError, Verifier, parse_client_keys
from intake.metrics import Metrics
from intake.settings import Settings

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Frame-Options": "DENY",
}
_ALLOW_HEADERS = f"Authorization, Content-Type, Idempotency-Key, If-None-Match, Accept-Language, {ACTOR_HEADER}"
_EXPOSE_HEADERS = "Location, Retry-After, ETag"
_PREFLIGHT_MAX_AGE_S = 600


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Add the security headers to every answer, errors included (outermost but one)."""
    response = await handler(request)
    for name, value in _ALWAYS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Content-Security-Policy", API_CSP)
    return response


class Cors:
    """The CORS policy: the listed origins may call the API from a browser; no one else gets CORS headers."""

    def __init__(self, origins: tuple[str, ...]) -> None:
        self._origins = frozenset(origins)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS" and origin and "Access-Control-Request-Method" in request.headers:
            return self._preflight(request, origin)
        response = await handler(request)
        if origin in self._origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = _EXPOSE_HEADERS
        response.headers.add("Vary", "Origin")
        return response

    def _preflight(self, request: web.Request, origin: str) -> web.StreamResponse:
        wanted = request.headers["Access-Control-Request-Method"].upper()
        if origin not in self._origins or wanted not in ("GET", "POST"):
            response = error_response("origin_not_allowed", request)
        else:
            response = web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": "GET, POST",
                    "Access-Control-Allow-Headers": _ALLOW_HEADERS,
                    "Access-Control-Max-Age": str(_PREFLIGHT_MAX_AGE_S),
                },
            )
        response.headers.add("Vary", "Origin")
        return response


class Authenticator:
    """Verifies signed requests for the routes whose row names a signing scope; counts failures by code."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        sec = settings.security
        self.verifier = Verifier(parse_client_keys(sec.client_keys), sec.auth_max_skew_s, sec.auth_max_nonces)
        self._metrics = metrics

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_of(request)
        scope = route.scope if route is not None else None
        if scope is None:
            return await handler(request)
        try:
            principal = self.verifier.verify(request.method, request.path, request.headers, scope)
        except AuthError as exc:
            self._metrics.auth_failures.labels(exc.code).inc()
            response = error_response(exc.code, request)
            response.headers["WWW-Authenticate"] = 'INTAKE-HMAC-SHA256 realm="intake"'
            return response
        request[PRINCIPAL] = principal
        return await handler(request)


def client_of(request: web.Request) -> str:
    """The authenticated client's id, or ``anonymous`` on routes that are not signed (for per-client limits)."""
    principal = request.get(PRINCIPAL)
    return principal.client_id if principal is not None else "anonymous"
