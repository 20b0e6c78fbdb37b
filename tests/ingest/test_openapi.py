"""The OpenAPI document: valid 3.1, in step with the router and the handlers, and true of real answers."""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
import types
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from aiohttp import ClientResponse, FormData, web

from ingest import tokens
from ingest.admission import Admit
from ingest.app import create_app
from ingest.openapi import openapi_document
from ingest.routes import ROUTES, routes_for
from ingest.schemas import EXAMPLE_REGISTRATION, IDEMPOTENCY_KEY_PATTERN
from intake.auth import AUTH_CODES
from intake.metrics import build_metrics
from intake.settings import Limits, Settings
from intake.storage import MemoryStore
from processors.reasons import REASONS, Category
from processors.registration import parse_registration
from processors.waves import Wave
from tests.ingest.conftest import Served
from tests.support import TEST_KEY, FakeSink, api_store, make_registration, multipart, unit_settings

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200 + b"\xff\xd9"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
ROWS = {(route.method, route.path): route for route in ROUTES}


def _document(settings: Settings) -> dict[str, Any]:
    return openapi_document(settings, routes_for(settings))


def _demo(on: bool) -> Settings:
    settings = unit_settings()
    return replace(settings, http=replace(settings.http, demo_page=on))


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return _document(unit_settings())


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def _validator(doc: dict[str, Any], schema: dict[str, Any]) -> jsonschema_rs.Validator:
    """A 2020-12 validator for ``schema`` whose ``#/components/...`` references resolve in ``doc``."""
    return jsonschema_rs.validator_for({**schema, "components": doc["components"]})


def _documented_codes(doc: dict[str, Any], method: str, path: str) -> dict[str, int]:
    """Error code -> the HTTP status under which the operation documents it."""
    out: dict[str, int] = {}
    for status, response in doc["paths"][path][method.lower()]["responses"].items():
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        for part in schema.get("allOf", []):
            for code in (
                part.get("properties", {}).get("error", {}).get("properties", {}).get("code", {}).get("enum", [])
            ):
                out[code] = int(status)
    return out


# --- the document itself ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("demo_page", [False, True])
def test_document_is_valid_openapi_31(demo_page: bool) -> None:
    doc = _document(_demo(demo_page))
    assert doc["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(json.loads(json.dumps(doc))).validate()  # the OAS 3.1 meta-schema

    def schemas(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            if isinstance(node.get("schema"), dict):
                yield node["schema"]
            for value in node.values():
                yield from schemas(value)
        elif isinstance(node, list):
            for value in node:
                yield from schemas(value)

    every = [*doc["components"]["schemas"].values(), *schemas(doc["paths"]), *schemas(doc["components"])]
    assert len(every) > 20
    for schema in every:  # each schema is a valid JSON Schema 2020-12 and its references resolve
        jsonschema_rs.meta.validate(schema)
        _validator(doc, schema)


def test_document_follows_the_settings() -> None:
    settings = unit_settings(limits=Limits(max_photo_bytes=123_456))
    doc = _document(settings)
    body = doc["paths"]["/v1/registrations"]["post"]["requestBody"]
    assert body["x-max-body-bytes"] == settings.limits.max_body_bytes
    photo = body["content"]["multipart/form-data"]["schema"]["properties"]["ktp_photo"]
    assert photo["x-max-bytes"] == 123_456
    assert "123456" in photo["description"]


def test_patterns_are_the_services(doc: dict[str, Any]) -> None:
    assert tokens._IDEMPOTENCY_KEY.pattern == IDEMPOTENCY_KEY_PATTERN
    status = doc["paths"]["/v1/submissions/{submission_id}"]["get"]
    (path_param,) = [p for p in status["parameters"] if p.get("in") == "path"]
    assert path_param["schema"]["pattern"] == tokens.SUBMISSION_ID.pattern == "^[a-z2-7]{26}$"
    post = doc["paths"]["/v1/registrations"]["post"]
    (key,) = [p for p in post["parameters"] if p.get("name") == "Idempotency-Key"]
    assert key["schema"]["pattern"] == "^[A-Za-z0-9._:-]{8,128}$"
    assert status["security"] == [{"statusToken": []}]
    assert doc["components"]["securitySchemes"]["statusToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["statusToken"]["description"],
    }


def test_error_codes_and_statuses_come_from_the_reason_table(doc: dict[str, Any]) -> None:
    assert doc["components"]["schemas"]["ErrorCode"]["enum"] == sorted(REASONS)
    for method, path, operation in _operations(doc):
        codes = _documented_codes(doc, method, path)
        assert set(codes) == set(ROWS[(method, path)].error_codes)
        for code, status in codes.items():
            assert REASONS[code].http_status == status, (method, path, code)
            response = operation["responses"][str(status)]
            if REASONS[code].category is Category.RETRYABLE:
                assert "Retry-After" in response["headers"], (method, path, status)


def test_registration_schema_is_the_models(doc: dict[str, Any]) -> None:
    from processors.registration import Education, EmploymentStatus, Registration

    schema = doc["components"]["schemas"]["Registration"]
    assert list(schema["properties"]) == list(Registration.model_fields)
    assert set(schema["required"]) == set(Registration.model_fields)
    assert schema["additionalProperties"] is False
    assert doc["components"]["schemas"]["Education"]["enum"] == [e.value for e in Education]
    assert doc["components"]["schemas"]["EmploymentStatus"]["enum"] == [e.value for e in EmploymentStatus]
    form = doc["paths"]["/v1/registrations"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert form["encoding"]["registration"]["contentType"] == "application/json"
    assert set(form["schema"]["required"]) == {"registration", "ktp_photo"}
    assert form["schema"]["properties"]["ktp_photo"]["format"] == "binary"
    # The example is a real, acceptable registration.
    _validator(doc, schema).validate(EXAMPLE_REGISTRATION)
    wave = Wave(1, unit_settings().wave.opens_at, unit_settings().wave.closes_at, 10)
    parse_registration(EXAMPLE_REGISTRATION, on=wave.opening_date)


def test_examples_validate(doc: dict[str, Any]) -> None:
    accepted = doc["paths"]["/v1/registrations"]["post"]["responses"]["202"]["content"]["application/json"]
    _validator(doc, accepted["schema"]).validate(accepted["example"])
    token = tokens.status_token(TEST_KEY.encode(), accepted["example"]["submission_id"])
    assert len(token) == len(accepted["example"]["status_token"])


# --- the document and the router ----------------------------------------------------------------------------------


def _routes(app: web.Application) -> dict[tuple[str, str], Any]:
    """(method, path) -> handler of every route of ``app`` (``HEAD`` is its ``GET``'s)."""
    out: dict[tuple[str, str], Any] = {}
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource is not None else ""
        out[(route.method, canonical)] = route.handler
    for method, path in [key for key in out if key[0] == "HEAD"]:
        assert out.pop((method, path)) is out[("GET", path)]
    return out


@pytest.mark.parametrize("demo_page", [False, True])
def test_every_route_is_documented_and_every_documented_path_routed(demo_page: bool) -> None:
    settings = _demo(demo_page)
    app = create_app(settings, sink=FakeSink(), store=api_store(), metrics=build_metrics())
    routed = set(_routes(app))
    documented = {(method, path) for method, path, _ in _operations(_document(settings))}
    assert routed == documented
    assert {(r.method, r.path) for r in routes_for(settings)} == documented
    assert any(path.startswith("/demo") for _, path in documented) is demo_page


_RAISERS = {"error_response", "UploadError", "Rejected", "_shed"}
_PROJECT = ("ingest.", "intake.", "processors.")


def _codes_of(func: Callable[..., Any], seen: set[Any] | None = None) -> set[str]:
    """Reason codes written as literals in ``func`` and in the project functions it calls, transitively (a project
    class it makes counts as calling each of its methods)."""
    seen = set() if seen is None else seen
    if isinstance(func, type) and func.__module__.startswith(_PROJECT) and func not in seen:
        seen.add(func)
        return set().union(*(_codes_of(f, seen) for f in vars(func).values() if isinstance(f, types.FunctionType)))
    if func in seen or not isinstance(func, types.FunctionType):
        return set()
    seen.add(func)
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except OSError:  # made at run time (a dataclass's __init__): no source, no literal codes
        return set()
    codes: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        literals = [a.value for a in [*node.args, *(k.value for k in node.keywords)] if isinstance(a, ast.Constant)]
        codes |= {v for v in literals if isinstance(v, str) and v in REASONS}
        if isinstance(node.func, ast.Name):
            callee = func.__globals__.get(node.func.id)
            if isinstance(callee, types.FunctionType | type) and callee.__module__.startswith(_PROJECT):
                codes |= _codes_of(callee, seen)
    return codes


def test_walker_finds_the_upload_codes() -> None:
    from ingest.upload import read_upload

    assert _codes_of(read_upload) >= {"unsupported_media_type", "body_too_large", "photo_too_large", "missing_part"}


def test_every_code_a_route_can_emit_is_documented() -> None:
    settings = _demo(True)
    doc = _document(settings)
    app = create_app(settings, sink=FakeSink(), store=api_store(), metrics=build_metrics())
    for (method, path), handler in _routes(app).items():
        row = ROWS[(method, path)]
        emitted = _codes_of(handler) | {"internal_error"}  # the errors middleware, on any bug
        if row.scope is not None:
            emitted |= set(AUTH_CODES)
        if row.admission is not Admit.EXEMPT:
            emitted.add("rate_limited")
        if row.admission is Admit.UPLOAD:
            emitted.add("overloaded")
        documented = set(_documented_codes(doc, method, path))
        assert emitted - documented == set(), (method, path)
        assert documented - emitted == set(), (method, path)  # nothing documented that cannot happen


# --- real answers conform to the document ------------------------------------------------------------------------


class Conformance:
    """Checks that an answer's status, headers and JSON body are what the document says for its operation."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.seen: set[tuple[str, str, int, str]] = set()

    async def check(self, resp: ClientResponse, method: str, path: str) -> dict[str, Any] | None:
        responses = self.doc["paths"][path][method.lower()]["responses"]
        assert str(resp.status) in responses, (method, path, resp.status, await resp.text())
        spec = responses[str(resp.status)]
        for name, declared in spec.get("headers", {}).items():
            header = self.doc["components"]["headers"][name] if "$ref" in declared else declared
            if header.get("required"):
                assert name in resp.headers, (method, path, resp.status, name)
        if "content" not in spec:
            assert not await resp.read()
            self.seen.add((method, path, resp.status, ""))
            return None
        media = spec["content"]
        (content_type,) = media
        assert resp.content_type == content_type
        if content_type != "application/json":
            self.seen.add((method, path, resp.status, ""))
            return None
        body = await resp.json()
        errors = [e.message for e in _validator(self.doc, media[content_type]["schema"]).iter_errors(body)]
        assert errors == [], (method, path, resp.status, body)
        code = body["error"]["code"] if "error" in body else ""
        self.seen.add((method, path, resp.status, code))
        return dict(body)


async def test_served_document_is_the_generated_one(served: Served) -> None:
    settings = unit_settings()
    client = await served(settings)
    first = await client.get("/openapi.json")
    assert first.status == 200
    assert first.content_type == "application/json"
    assert await first.json() == json.loads(json.dumps(_document(settings)))
    second = await client.get("/openapi.json")
    assert await second.read() == await first.read()


async def test_real_answers_conform(served: Served, doc: dict[str, Any]) -> None:
    c = Conformance(doc)
    post, status = "/v1/registrations", "/v1/submissions/{submission_id}"
    sink = FakeSink()
    store = api_store()
    await store.ensure_buckets(["intake-ktp", "intake-status"])
    client = await served(unit_settings(), sink, store)

    accepted = await c.check(await client.post(post, data=multipart(make_registration(), JPEG)), "POST", post)
    assert accepted is not None
    url, token = accepted["status_url"], accepted["status_token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert await c.check(await client.post(post, data=multipart(make_registration(), JPEG)), "POST", post)
    got = await client.get(url, headers=auth)
    await c.check(got, "GET", status)
    await c.check(await client.get(url, headers={**auth, "If-None-Match": got.headers["ETag"]}), "GET", status)
    await c.check(await client.get(url), "GET", status)  # 401
    await c.check(await client.get("/v1/submissions/NOT-AN-ID", headers=auth), "GET", status)  # 404
    store.fail_next = 1
    await c.check(await client.get(url, headers=auth), "GET", status)  # 503 storage_unavailable

    bad_requests: list[tuple[dict[str, Any], str]] = [
        ({"data": multipart(make_registration(), JPEG), "headers": {"Idempotency-Key": "short"}}, "idempotency"),
        ({"json": make_registration()}, "415"),
        ({"data": multipart(b"{not json", JPEG)}, "invalid_json"),
        ({"data": multipart(b"[1]", JPEG)}, "invalid_json (array)"),
        ({"data": multipart({}, JPEG)}, "validation_failed"),
        ({"data": multipart(make_registration(), b"")}, "photo_empty"),
        ({"data": multipart(make_registration(wave=2), JPEG)}, "wave_not_open"),
    ]
    form = FormData()
    form.add_field("registration", json.dumps(make_registration()), content_type="application/json")
    bad_requests.append(({"data": form}, "missing_part"))
    extra = FormData()
    extra.add_field("other", "x", content_type="text/plain")
    bad_requests.append(({"data": extra}, "malformed_multipart"))
    for kwargs, what in bad_requests:
        body = await c.check(await client.post(post, **kwargs), "POST", post)
        assert body is not None and "error" in body, what

    small = await served(unit_settings(limits=Limits(max_photo_bytes=1000)))
    await c.check(await small.post(post, data=multipart(make_registration(), b"\xff" * 5000)), "POST", post)
    # A Content-Length over the limit is refused before reading (its own client: the connection is not reusable).
    lying = await served()
    headers = {
        "Content-Type": "multipart/form-data; boundary=b",
        "Content-Length": str(unit_settings().limits.max_body_bytes + 1),
    }
    await c.check(await lying.post(post, data=b"x", headers=headers), "POST", post)

    sink.down = True
    await c.check(await client.post(post, data=multipart(make_registration(), JPEG)), "POST", post)
    await c.check(await client.get("/readyz"), "GET", "/readyz")
    sink.down = False
    sink.pending_override = 10**6
    await c.check(await client.post(post, data=multipart(make_registration(), JPEG)), "POST", post)  # overloaded
    sink.pending_override = 0
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        await c.check(await client.get(path), "GET", path)

    settings = unit_settings()
    limited = await served(replace(settings, http=replace(settings.http, rate_per_address=0.001, burst_per_address=1)))
    await limited.get("/v1/submissions/" + "a" * 26)
    await c.check(await limited.get("/v1/submissions/" + "a" * 26), "GET", status)  # 429

    class Broken(MemoryStore):
        async def get(self, bucket: str, key: str) -> Any:
            raise RuntimeError("a bug")

    broken = Broken()
    await broken.ensure_buckets(["intake-ktp", "intake-status"])
    buggy = await served(unit_settings(), FakeSink(), broken)
    await c.check(await buggy.get(url, headers=auth), "GET", status)  # 500 internal_error

    codes = {code for *_, code in c.seen if code}
    assert codes >= {
        "idempotency_key_invalid",
        "unsupported_media_type",
        "invalid_json",
        "validation_failed",
        "photo_empty",
        "wave_not_open",
        "missing_part",
        "malformed_multipart",
        "body_too_large",
        "photo_too_large",
        "queue_unavailable",
        "overloaded",
        "unauthorized",
        "not_found",
        "storage_unavailable",
        "rate_limited",
        "internal_error",
    }
    assert {s for _, _, s, _ in c.seen} >= {200, 202, 304, 400, 401, 404, 409, 413, 415, 422, 429, 500, 503}


async def test_demo_answers_conform(served: Served) -> None:
    settings = _demo(True)
    c = Conformance(_document(settings))
    client = await served(settings, signed=False)
    await c.check(await client.get("/demo", allow_redirects=False), "GET", "/demo")
    for route in routes_for(settings):
        if route.demo and route.method == "GET" and route.path != "/demo":
            await c.check(await client.get(route.path), "GET", route.path)
    asked = {"method": "POST", "path": "/v1/registrations", "idempotency_key": "demo-key-0001"}
    assert await c.check(await client.post("/demo/sign", json=asked), "POST", "/demo/sign")
    await c.check(await client.post("/demo/sign", data=b"{"), "POST", "/demo/sign")  # 400 invalid_json
    await c.check(await client.post("/demo/sign", json={**asked, "path": "/x"}), "POST", "/demo/sign")  # 422
    assert {(path, status) for _, path, status, _ in c.seen} >= {
        ("/demo", 308),
        ("/demo/", 200),
        ("/demo/sign", 200),
        ("/demo/sign", 400),
        ("/demo/sign", 422),
    }
