"""The route table: every route of the API, declared once, with what it needs and what it can answer.

One row per operation: method, path, handler, name (aiohttp's route name and the OpenAPI ``operationId``), summary,
who may call it (:data:`PUBLIC`, :data:`STATUS_TOKEN`, or a signing scope of :data:`intake.auth.SCOPES`), the reason
codes its handler answers with, its admission class (:class:`ingest.admission.Admit`) and its OpenAPI description
(:mod:`ingest.operations`). Everything else reads this table:

* the router: :func:`ingest.app.create_app` adds :func:`routes_for` the settings (demo rows only with
  ``INTAKE_DEMO_PAGE``), ``GET`` rows answering ``HEAD`` too;
* the authenticator (:class:`ingest.security.Authenticator`): the scope of the matched row, whatever the method;
* the admission middlewares: :func:`admit_of` the matched row;
* the metrics: the ``route`` label is the matched row's path (:func:`route_label`), ``unmatched`` otherwise;
* the OpenAPI generator (:mod:`ingest.openapi`): paths, operations and, from :attr:`Route.error_codes` and the one
  reason table (:mod:`processors.reasons`), the error responses.

Like tus/tusd's single error table, a row names reason codes, never statuses or messages: those stay in
:mod:`processors.reasons`. A row with an unknown code, scope or method fails at import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

from ingest import demo, handlers, operations
from ingest.admission import Admit, Handler
from ingest.expect import defer_continue
from ingest.ktp_read import get_ktp_image
from ingest.openapi import openapi_json
from ingest.status_read import get_queue, get_status
from intake.auth import AUTH_CODES, SCOPES
from intake.settings import Settings
from processors.reasons import REASONS

PUBLIC = "public"
"""Anyone may call the route, unsigned."""
STATUS_TOKEN = "status_token"  # noqa: S105 - the name of an auth kind, not a secret
"""The per-submission bearer token of the 202 receipt, checked by the handler (no signature)."""
INTERNAL_ERROR = "internal_error"
"""Every route: the errors middleware turns any bug into this code."""


@dataclass(frozen=True)
class Route:
    """One operation of the API. ``errors`` are the codes its handler answers with; :attr:`error_codes` adds those
    of the signature check, admission and the errors middleware."""

    method: str
    path: str
    handler: Handler
    name: str
    summary: str
    auth: str
    admission: Admit
    doc: Callable[[Settings], operations.Operation]
    errors: tuple[str, ...] = ()
    demo: bool = False

    def __post_init__(self) -> None:
        if self.method not in ("GET", "POST"):
            raise ValueError(f"{self.name}: method {self.method}")
        if self.auth not in (PUBLIC, STATUS_TOKEN, *SCOPES):
            raise ValueError(f"{self.name}: auth {self.auth!r} is not public, status_token or a signing scope")
        if unknown := set(self.errors) - set(REASONS):
            raise ValueError(f"{self.name}: codes not in the reason table: {sorted(unknown)}")

    @property
    def scope(self) -> str | None:
        """The scope the signing key must have, or ``None`` when the route is not signed."""
        return self.auth if self.auth in SCOPES else None

    @property
    def security_scheme(self) -> str | None:
        """The OpenAPI security scheme (:func:`ingest.schemas.components`) of ``auth``; ``None`` when public."""
        if self.scope is not None:
            return "clientSignature"
        return "statusToken" if self.auth == STATUS_TOKEN else None

    @property
    def error_codes(self) -> tuple[str, ...]:
        """Every code the route can answer with, in the order they are documented."""
        signed = AUTH_CODES if self.scope else ()
        return tuple(dict.fromkeys((*signed, *self.admission.codes, *self.errors, INTERNAL_ERROR)))

    def definition(self) -> web.RouteDef:
        """The aiohttp route (``GET`` answers ``HEAD`` too). An upload route (:attr:`Admit.UPLOAD`: admitted before
        its body is read) defers ``100 Continue`` to its handler (:mod:`ingest.expect`)."""
        if self.method == "GET":
            return web.get(self.path, self.handler, name=self.name)
        if self.admission is Admit.UPLOAD:
            return web.route(self.method, self.path, self.handler, name=self.name, expect_handler=defer_continue)
        return web.route(self.method, self.path, self.handler, name=self.name)


ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/v1/registrations",
        handlers.post_registration,
        "createRegistration",
        "Submit a registration with the KTP photo",
        auth="submit",
        admission=Admit.UPLOAD,
        doc=operations.create_registration,
        errors=(
            "idempotency_key_invalid",
            "unsupported_media_type",
            "body_too_large",
            "expectation_failed",
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
            "storage_unavailable",  # the key store did not give the applicant's data key in time
        ),
    ),
    Route(
        "GET",
        "/v1/submissions/{submission_id}",
        get_status,
        "getSubmissionStatus",
        "Where a submission stands",
        auth=STATUS_TOKEN,
        admission=Admit.LIMITED,
        doc=operations.submission_status,
        errors=("not_found", "unauthorized", "storage_unavailable"),
    ),
    Route(
        "GET",
        "/v1/queue",
        get_queue,
        "getQueue",
        "The public queue watermark (same for everybody, cacheable)",
        auth=PUBLIC,
        admission=Admit.LIMITED,
        doc=operations.queue,
    ),
    Route(
        "GET",
        "/v1/submissions/{submission_id}/ktp/{kind}",
        get_ktp_image,
        "getKtpImage",
        "A stored KTP image, for the verification back office (audited)",
        auth="read_ktp",
        admission=Admit.LIMITED,
        doc=operations.ktp_image,
        errors=("actor_required", "not_found", "storage_unavailable", "audit_unavailable"),
    ),
    Route(
        "GET",
        "/healthz",
        handlers.healthz,
        "healthz",
        "Liveness",
        auth=PUBLIC,
        admission=Admit.EXEMPT,
        doc=operations.healthz,
    ),
    Route(
        "GET",
        "/readyz",
        handlers.readyz,
        "readyz",
        "Readiness",
        auth=PUBLIC,
        admission=Admit.EXEMPT,
        doc=operations.readyz,
        errors=("overloaded", "queue_unavailable", "starting"),  # draining, Kafka silent, status view replaying
    ),
    Route(
        "GET",
        "/metrics",
        handlers.metrics,
        "metrics",
        "Prometheus exposition",
        auth=PUBLIC,
        admission=Admit.EXEMPT,
        doc=operations.metrics,
    ),
    Route(
        "GET",
        "/openapi.json",
        openapi_json,
        "openapi",
        "This document",
        auth=PUBLIC,
        admission=Admit.EXEMPT,
        doc=operations.openapi,
    ),
    # The demo page (ingest.demo): development only.
    Route(
        "GET",
        "/demo",
        demo.redirect,
        "demoRedirect",
        "The demo page's address",
        auth=PUBLIC,
        admission=Admit.EXEMPT,
        doc=operations.demo_redirect,
        demo=True,
    ),
    Route(
        "POST",
        "/demo/sign",
        demo.sign_upload,
        "demoSign",
        "Sign one upload attempt for the demo page",
        auth=PUBLIC,
        admission=Admit.EXEMPT,
        doc=operations.demo_sign,
        errors=("invalid_json", "validation_failed"),
        demo=True,
    ),
    *(
        Route(
            "GET",
            "/demo/" if file == "demo.html" else f"/demo/{file}",
            demo.serve(file),
            "demo:" + file,
            f"The demo page's {file}",
            auth=PUBLIC,
            admission=Admit.EXEMPT,
            doc=operations.demo_file(file),
            errors=("not_found",),  # a build without the static files
            demo=True,
        )
        for file in demo.FILES
    ),
)
"""Every route, in the order it is routed and documented."""

_BY_NAME = {route.name: route for route in ROUTES}
if len(_BY_NAME) != len(ROUTES) or len({(r.method, r.path) for r in ROUTES}) != len(ROUTES):
    raise ValueError("route names and (method, path) pairs must be unique")


def routes_for(settings: Settings) -> tuple[Route, ...]:
    """The rows an app built with ``settings`` serves: the demo page's only when ``INTAKE_DEMO_PAGE`` is on."""
    return tuple(route for route in ROUTES if not route.demo or settings.http.demo_page)


def add_routes(app: web.Application, routes: Iterable[Route]) -> None:
    """Route ``routes`` in ``app``."""
    app.router.add_routes([route.definition() for route in routes])


def route_of(request: web.Request) -> Route | None:
    """The row the request matched (``HEAD`` matches its ``GET`` row), or ``None`` (404, 405)."""
    name = request.match_info.route.name
    return _BY_NAME.get(name) if name is not None else None


def route_label(request: web.Request) -> str:
    """The metrics ``route`` label: the matched row's path (``/v1/submissions/{submission_id}``), never the raw
    path with its ids; ``unmatched`` for a request that matched no route."""
    route = route_of(request)
    return route.path if route is not None else "unmatched"


def admit_of(request: web.Request) -> Admit:
    """The admission class of the request's route; a request that matched none is rate limited."""
    route = route_of(request)
    return route.admission if route is not None else Admit.LIMITED
