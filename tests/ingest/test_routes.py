"""The route table is what the app does: its rows are the routes, their auth is what the authenticator enforces
(for every method the route answers), their admission class is what the admission middlewares apply, their path is
the metrics label, and every code they declare is a documented response."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from ingest import handlers, operations
from ingest.admission import Admit
from ingest.keys import METRICS
from ingest.openapi import openapi_document
from ingest.routes import PUBLIC, ROUTES, STATUS_TOKEN, Route, routes_for
from intake.auth import SCOPES, sign
from intake.settings import Settings
from processors.reasons import REASONS
from tests.ingest.conftest import Served
from tests.support import FakeSink, client_key, unit_settings

SID = "a" * 26


def _demo(settings: Settings | None = None) -> Settings:
    settings = settings or unit_settings()
    return replace(settings, http=replace(settings.http, demo_page=True))


def _path(route: Route) -> str:
    return route.path.replace("{submission_id}", SID).replace("{kind}", "card")


def _methods(route: Route) -> list[str]:
    return [route.method, "HEAD"] if route.method == "GET" else [route.method]


def _signed(settings: Settings, scope: str, method: str, path: str) -> dict[str, str]:
    return sign(client_key(settings, scope), method, path)


def _name(route: Route) -> str:
    return f"{route.method} {route.path}"


def test_the_table_holds_the_routes_of_the_issue() -> None:
    rows = {(r.method, r.path): r for r in ROUTES}
    assert rows[("POST", "/v1/registrations")].scope == "submit"
    assert rows[("GET", "/v1/submissions/{submission_id}/ktp/{kind}")].scope == "read_ktp"
    assert rows[("GET", "/v1/submissions/{submission_id}")].auth == STATUS_TOKEN
    for path in ("/v1/queue", "/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert rows[("GET", path)].auth == PUBLIC
    assert {r.path for r in ROUTES if r.demo} == {r.path for r in ROUTES if r.path.startswith("/demo")}
    assert routes_for(unit_settings()) == tuple(r for r in ROUTES if not r.demo)
    assert routes_for(_demo()) == ROUTES


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"errors": ("no_such_code",)}, "not in the reason table"),
        ({"auth": "write_everything"}, "not public, status_token or a signing scope"),
        ({"method": "PUT"}, "method PUT"),
    ],
)
def test_a_row_with_an_unknown_code_scope_or_method_fails(change: dict[str, Any], message: str) -> None:
    row: dict[str, Any] = {
        "method": "GET",
        "path": "/x",
        "handler": handlers.healthz,
        "name": "x",
        "summary": "x",
        "auth": PUBLIC,
        "admission": Admit.EXEMPT,
        "doc": operations.healthz,
    }
    with pytest.raises(ValueError, match=message):
        Route(**{**row, **change})


def test_every_declared_code_is_a_documented_response() -> None:
    settings = _demo()
    doc = openapi_document(settings, routes_for(settings))
    for route in routes_for(settings):
        responses = doc["paths"][route.path][route.method.lower()]["responses"]
        for code in route.error_codes:
            response = responses[str(REASONS[code].http_status)]
            enum = response["content"]["application/json"]["schema"]["allOf"][1]["properties"]["error"]
            assert code in enum["properties"]["code"]["enum"], (_name(route), code)
        expected: list[dict[str, list[str]]] = (
            [{"clientSignature": []}] if route.scope else [{"statusToken": []}] if route.auth == STATUS_TOKEN else []
        )
        assert doc["paths"][route.path][route.method.lower()]["security"] == expected


@pytest.mark.parametrize("route", [r for r in ROUTES if r.scope is not None], ids=_name)
async def test_a_scoped_route_needs_a_signature_of_its_scope(served: Served, sink: FakeSink, route: Route) -> None:
    assert route.scope is not None
    settings = unit_settings()
    client = await served(settings, signed=False)
    path = _path(route)
    other = next(scope for scope in sorted(SCOPES) if scope != route.scope)
    for method in _methods(route):
        unsigned = await client.request(method, path)
        assert unsigned.status == 401, (method, path)
        assert unsigned.headers["WWW-Authenticate"].startswith("INTAKE-HMAC-SHA256")
        wrong = await client.request(method, path, headers=_signed(settings, other, method, path))
        assert wrong.status == 403, (method, path)
        right = await client.request(method, path, headers=_signed(settings, route.scope, method, path))
        assert right.status not in (401, 403), (method, path, await right.text())
    assert sink.records == []  # nothing was queued or audited by a refused request


@pytest.mark.parametrize("route", [r for r in ROUTES if r.scope is None], ids=_name)
async def test_a_route_without_scope_is_not_signed(served: Served, route: Route) -> None:
    settings = _demo()
    client = await served(settings, signed=False)
    path = _path(route)
    for method in _methods(route):
        resp = await client.request(method, path, allow_redirects=False)
        if route.auth == STATUS_TOKEN:  # the handler wants the receipt's token, signed or not
            assert resp.status == 401, (method, path)
            signed = await client.request(method, path, headers=_signed(settings, "submit", method, path))
            assert signed.status == 401, (method, path)
        else:
            assert resp.status not in (401, 403), (method, path)
            assert "WWW-Authenticate" not in resp.headers


@pytest.mark.parametrize("route", ROUTES, ids=_name)
async def test_the_admission_class_is_what_the_middlewares_apply(served: Served, sink: FakeSink, route: Route) -> None:
    base = _demo()
    settings = replace(base, http=replace(base.http, rate_per_address=0.001, burst_per_address=1))
    client = await served(settings, signed=False)
    path = _path(route)

    def headers() -> dict[str, str]:
        return _signed(settings, route.scope, route.method, path) if route.scope else {}

    await client.request(route.method, path, headers=headers(), allow_redirects=False)
    second = await client.request(route.method, path, headers=headers(), allow_redirects=False)
    assert (second.status == 429) is (route.admission is not Admit.EXEMPT), second.status

    sink.pending_override = 10**6  # the process is full: the gate refuses uploads before anything else
    fresh = await served(base, signed=False)
    full = await fresh.request(route.method, path, allow_redirects=False)
    overloaded = full.status == 503 and (await full.json())["error"]["code"] == "overloaded"
    assert overloaded is (route.admission is Admit.UPLOAD), full.status


async def test_the_metrics_label_is_the_rows_path(served: Served) -> None:
    settings = _demo()
    client = await served(settings, signed=False)
    for route in routes_for(settings):
        await client.request(route.method, _path(route), allow_redirects=False)
    await client.get("/no/such/route")
    app = client.app
    assert app is not None
    text = app[METRICS].render().decode()
    labels = {
        line.split('route="')[1].split('"')[0] for line in text.splitlines() if "intake_http_requests_total{" in line
    }
    assert labels == {route.path for route in routes_for(settings)} | {"unmatched"}
