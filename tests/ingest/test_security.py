"""Client authentication, per-client limits, CORS, security headers and the audited KTP read, over HTTP (fakes)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import ClientResponse

from intake.audit import AuditRecord
from intake.auth import parse_client_keys, sign
from intake.settings import Settings
from intake.status import photo_key
from intake.storage import MemoryStore
from intake.topics import topic_names
from tests.ingest.conftest import Served
from tests.support import FakeSink, client_key, make_registration, multipart, unit_settings

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 2000 + b"\xff\xd9"
SID = "a" * 26
KTP_PATH = f"/v1/submissions/{SID}/ktp/card"
ORIGIN = "https://daftar.prakerja.example"


CORS = unit_settings(http=replace(unit_settings().http, cors_origins=ORIGIN))
"""Settings with the front end's origin allowed."""


async def _code(resp: ClientResponse, status: int) -> str:
    assert resp.status == status, await resp.text()
    return str((await resp.json())["error"]["code"])


def _signed(
    settings: Settings, scope: str = "submit", method: str = "POST", path: str = "/v1/registrations", **kw: Any
) -> dict[str, str]:
    return sign(client_key(settings, scope), method, path, **kw)


# --- authentication -------------------------------------------------------------------------------------------


async def test_unsigned_upload_is_401_and_nothing_is_queued(served: Served, sink: FakeSink) -> None:
    client = await served(CORS, signed=False)
    resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG))
    assert await _code(resp, 401) == "unauthorized"
    assert resp.headers["WWW-Authenticate"].startswith("INTAKE-HMAC-SHA256")
    assert sink.records == []


async def test_signed_upload_is_accepted_and_carries_the_client(served: Served, sink: FakeSink) -> None:
    settings = unit_settings()
    client = await served(settings, signed=False)
    headers = {**_signed(settings, idempotency_key="idem-00000001"), "Idempotency-Key": "idem-00000001"}
    resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG), headers=headers)
    assert resp.status == 202, await resp.text()
    assert len(sink.records) == 1


async def test_wrong_signature_is_401(served: Served, sink: FakeSink) -> None:
    settings = unit_settings()
    client = await served(settings, signed=False)
    headers = _signed(settings, idempotency_key="idem-00000001")  # signed for a key, sent without it
    resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG), headers=headers)
    assert await _code(resp, 401) == "unauthorized"
    assert sink.records == []


async def test_replayed_signature_is_401(served: Served, sink: FakeSink) -> None:
    settings = unit_settings()
    client = await served(settings, signed=False)
    headers = _signed(settings)
    first = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG), headers=headers)
    assert first.status == 202
    again = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG), headers=headers)
    assert await _code(again, 401) == "request_replayed"
    assert len(sink.records) == 1


async def test_expired_signature_is_401(served: Served) -> None:
    settings = unit_settings()
    client = await served(settings, signed=False)
    headers = _signed(settings, timestamp=1_000_000_000)
    resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG), headers=headers)
    assert await _code(resp, 401) == "signature_expired"


async def test_key_without_submit_scope_is_403(served: Served, sink: FakeSink) -> None:
    settings = unit_settings()
    client = await served(settings, signed=False)
    headers = _signed(settings, scope="read_ktp")
    resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG), headers=headers)
    assert await _code(resp, 403) == "forbidden"
    assert sink.records == []


async def test_auth_failures_are_counted_by_code(served: Served) -> None:
    client = await served(CORS, signed=False)
    await client.post("/v1/registrations", data=b"x")
    text = await (await client.get("/metrics")).text()
    assert 'intake_auth_failures_total{code="unauthorized"} 1.0' in text


async def test_idempotency_is_per_client(served: Served, sink: FakeSink) -> None:
    two = "web:k1:" + "w" * 40 + ":submit,partner:p1:" + "q" * 40 + ":submit"
    settings = unit_settings(security=replace(unit_settings().security, client_keys=two))
    client = await served(settings, signed=False)
    ids = []
    for k in parse_client_keys(two).values():
        headers = {
            **sign(k, "POST", "/v1/registrations", idempotency_key="same-key-0001"),
            "Idempotency-Key": "same-key-0001",
        }
        resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG), headers=headers)
        ids.append((await resp.json())["submission_id"])
    assert ids[0] != ids[1]


# --- per-client limits --------------------------------------------------------------------------------------------


async def test_per_client_rate_limit_does_not_touch_other_clients(served: Served) -> None:
    two = "web:k1:" + "w" * 40 + ":submit,partner:p1:" + "q" * 40 + ":submit"
    base = unit_settings()
    settings = replace(
        base,
        security=replace(base.security, client_keys=two),
        http=replace(base.http, rate_per_client=0.01, burst_per_client=2),
    )
    keys = parse_client_keys(two)
    client = await served(settings, signed=False)

    async def post(client_id: str) -> int:
        k = next(v for (c, _), v in keys.items() if c == client_id)
        headers = sign(k, "POST", "/v1/registrations")
        resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG), headers=headers)
        return int(resp.status)

    assert [await post("web") for _ in range(3)] == [202, 202, 429]
    assert await post("partner") == 202


# --- CORS and headers ---------------------------------------------------------------------------------------------


async def test_preflight_from_a_listed_origin(served: Served) -> None:
    client = await served(CORS, signed=False)
    resp = await client.options(
        "/v1/registrations",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
    assert "Idempotency-Key" in resp.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in resp.headers


async def test_preflight_from_another_origin_is_403(served: Served) -> None:
    client = await served(CORS, signed=False)
    resp = await client.options(
        "/v1/registrations", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert await _code(resp, 403) == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_cors_headers_only_for_listed_origins(served: Served) -> None:
    client = await served(CORS, signed=False)
    ok = await client.get("/healthz", headers={"Origin": ORIGIN})
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Retry-After" in ok.headers["Access-Control-Expose-Headers"]
    other = await client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Origin" in other.headers.getall("Vary")


async def test_no_cors_by_default(served: Served) -> None:
    client = await served(unit_settings(), signed=False)
    resp = await client.options(
        "/v1/registrations", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert await _code(resp, 403) == "origin_not_allowed"


@pytest.mark.parametrize("path", ["/healthz", "/v1/registrations", "/nope", "/v1/submissions/" + SID, "/openapi.json"])
async def test_security_headers_on_every_answer(served: Served, path: str) -> None:
    client = await served(CORS, signed=False)
    resp = await (client.post(path, data=b"x") if path == "/v1/registrations" else client.get(path))
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert "max-age=" in resp.headers["Strict-Transport-Security"]
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]


# --- the audited KTP read -------------------------------------------------------------------------------------------


def _audits(sink: FakeSink) -> list[AuditRecord]:
    topic = topic_names(unit_settings()).audit
    return [AuditRecord.from_json(value) for t, _, value, _ in sink.records if t == topic]


async def test_ktp_read_is_audited_before_it_is_served(served: Served, sink: FakeSink, store: MemoryStore) -> None:
    await store.put("intake-ktp", photo_key(SID, "card"), b"\xff\xd8card", "image/jpeg")
    client = await served(unit_settings(), scope="read_ktp", actor="siti.verifikator")
    resp = await client.get(KTP_PATH)
    assert resp.status == 200
    assert await resp.read() == b"\xff\xd8card"
    assert resp.headers["Content-Type"] == "image/jpeg"
    assert resp.headers["Cache-Control"] == "no-store"
    [audit] = _audits(sink)
    assert (audit.client_id, audit.key_id, audit.actor, audit.submission_id, audit.kind, audit.outcome) == (
        "backoffice",
        "b1",
        "siti.verifikator",
        SID,
        "card",
        "served",
    )
    assert audit.at and audit.source_address


async def test_ktp_read_of_a_missing_image_is_audited_and_404(served: Served, sink: FakeSink) -> None:
    client = await served(unit_settings(), scope="read_ktp", actor="siti")
    assert await _code(await client.get(KTP_PATH), 404) == "not_found"
    assert [a.outcome for a in _audits(sink)] == ["not_found"]


async def test_ktp_read_without_audit_serves_nothing(served: Served, sink: FakeSink, store: MemoryStore) -> None:
    await store.put("intake-ktp", photo_key(SID, "card"), b"\xff\xd8card", "image/jpeg")
    client = await served(unit_settings(), scope="read_ktp", actor="siti")
    sink.down = True
    resp = await client.get(KTP_PATH)
    assert await _code(resp, 503) == "audit_unavailable"
    assert b"card" not in await resp.read()
    assert "Retry-After" in resp.headers


async def test_ktp_read_needs_the_read_scope_and_an_actor(served: Served, sink: FakeSink) -> None:
    settings = unit_settings()
    as_front_end = await served(settings, scope="submit", actor="someone")
    assert await _code(await as_front_end.get(KTP_PATH), 403) == "forbidden"
    anonymous = await served(settings, scope="read_ktp")
    assert await _code(await anonymous.get(KTP_PATH), 400) == "actor_required"
    unsigned = await served(settings, signed=False)
    assert await _code(await unsigned.get(KTP_PATH), 401) == "unauthorized"
    assert _audits(sink) == []


async def test_ktp_read_with_a_status_token_is_refused(served: Served) -> None:
    """The applicant's status token reads the status, never the image."""
    from ingest.tokens import status_token
    from tests.support import TEST_KEY

    client = await served(unit_settings(), signed=False)
    resp = await client.get(KTP_PATH, headers={"Authorization": f"Bearer {status_token(TEST_KEY.encode(), SID)}"})
    assert await _code(resp, 401) == "unauthorized"


@pytest.mark.parametrize("path", [f"/v1/submissions/{SID}/ktp/other", "/v1/submissions/NOT-AN-ID/ktp/card"])
async def test_ktp_read_of_unknown_kinds_or_ids_is_404_without_touching_the_store(
    served: Served, sink: FakeSink, path: str
) -> None:
    client = await served(unit_settings(), scope="read_ktp", actor="siti")
    assert await _code(await client.get(path), 404) == "not_found"
    assert _audits(sink) == []


# --- the demo signer --------------------------------------------------------------------------------------------------


async def test_demo_signer_signs_only_uploads(served: Served, sink: FakeSink) -> None:
    base = unit_settings()
    client = await served(replace(base, http=replace(base.http, demo_page=True)), signed=False)
    signed = await client.post(
        "/demo/sign", json={"method": "POST", "path": "/v1/registrations", "idempotency_key": "demo-key-0001"}
    )
    headers = await signed.json()
    resp = await client.post(
        "/v1/registrations",
        data=multipart(make_registration(), JPEG),
        headers={**headers, "Idempotency-Key": "demo-key-0001"},
    )
    assert resp.status == 202, await resp.text()
    other = await client.post("/demo/sign", json={"method": "GET", "path": KTP_PATH, "idempotency_key": "x" * 8})
    assert await _code(other, 422) == "validation_failed"
    assert await _code(await client.post("/demo/sign", data=b"{"), 400) == "invalid_json"
    assert json.dumps(headers).count("INTAKE-HMAC-SHA256") == 1
