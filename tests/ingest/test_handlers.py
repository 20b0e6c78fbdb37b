"""The API with a fake producer and an in-memory store: codes, limits, idempotency, status access."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from ingest.keys import ADMISSION
from ingest.tokens import status_token
from intake.settings import Limits
from intake.status import StatusRecord, status_key
from intake.storage import MemoryStore
from tests.ingest.conftest import Served
from tests.support import TEST_KEY, FakeSink, make_registration, multipart, open_record, unit_settings

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 2000 + b"\xff\xd9"


async def _error(resp: ClientResponse, status: int, code: str) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert body["error"]["code"] == code
    assert body["error"]["message_id"] and body["error"]["message_en"]
    return dict(body["error"])


async def test_accepts_after_kafka_ack(served: Served, sink: FakeSink, store: MemoryStore) -> None:
    client = await served()
    reg = make_registration()
    resp = await client.post("/v1/registrations", data=multipart(reg, JPEG))
    assert resp.status == 202, await resp.text()
    body = await resp.json()
    assert body["state"] == "received"
    # The receipt names where Kafka appended the record; the status URL carries that place in the queue.
    assert (body["partition"], body["offset"]) == (0, 0)
    assert body["status_url"] == f"/v1/submissions/{body['submission_id']}?partition=0&offset=0"
    assert resp.headers["Location"] == body["status_url"]
    assert len(sink.records) == 1
    topic, key, value, _ = sink.records[0]
    assert topic == "intake.submissions.v1"
    # The personal data is sealed in the record (envelope v2); the consumer opens it with the applicant's key.
    assert reg["nik"].encode() not in value and reg["full_name"].encode() not in value and JPEG not in value
    sub = await open_record(value, store)
    assert sub.submission_id == body["submission_id"]
    assert sub.photo == JPEG
    assert sub.registration["nik"] == reg["nik"]
    # The record key is a keyed hash, never the NIK; the response never echoes the NIK.
    assert reg["nik"].encode() not in key and key == sub.nik_hash.encode()
    assert reg["nik"] not in await resp.text()


async def test_broker_down_is_503_never_202(served: Served, sink: FakeSink) -> None:
    client = await served()
    sink.down = True
    resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG))
    await _error(resp, 503, "queue_unavailable")
    assert resp.headers["Retry-After"] == "5"
    assert sink.records == []


async def test_idempotency_key_gives_same_submission(served: Served) -> None:
    client = await served()
    reg = make_registration()
    ids = set()
    for _ in range(3):
        resp = await client.post(
            "/v1/registrations", data=multipart(reg, JPEG), headers={"Idempotency-Key": "retry-key-0001"}
        )
        assert resp.status == 202
        ids.add((await resp.json())["submission_id"])
    assert len(ids) == 1
    other = await client.post("/v1/registrations", data=multipart(reg, JPEG))
    assert (await other.json())["submission_id"] not in ids


async def test_bad_idempotency_key(served: Served) -> None:
    client = await served()
    resp = await client.post(
        "/v1/registrations", data=multipart(make_registration(), JPEG), headers={"Idempotency-Key": "x"}
    )
    await _error(resp, 400, "idempotency_key_invalid")


async def test_wrong_content_type_is_415(served: Served) -> None:
    client = await served()
    resp = await client.post("/v1/registrations", json=make_registration())
    await _error(resp, 415, "unsupported_media_type")


async def test_malformed_multipart_is_400(served: Served) -> None:
    client = await served()
    body = b'--xyz\r\nContent-Disposition: form-data; name="registration"\r\n\r\n{}'  # never terminated
    resp = await client.post(
        "/v1/registrations", data=body, headers={"Content-Type": "multipart/form-data; boundary=xyz"}
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] in ("malformed_multipart", "missing_part")


async def test_missing_photo_part(served: Served) -> None:
    from aiohttp import FormData

    client = await served()
    form = FormData()
    form.add_field("registration", json.dumps(make_registration()), content_type="application/json")
    resp = await client.post("/v1/registrations", data=form)
    err = await _error(resp, 400, "missing_part")
    assert err["part"] == "ktp_photo"


async def test_invalid_json(served: Served) -> None:
    client = await served()
    resp = await client.post("/v1/registrations", data=multipart(b"{not json", JPEG))
    await _error(resp, 400, "invalid_json")


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"[" * 5000 + b"]" * 5000, 400, "invalid_json"),  # nesting past the parser's recursion limit
        (b'{"a":' * 2000 + b"1" + b"}" * 2000, 400, "invalid_json"),
        (b"[1]", 400, "invalid_json"),  # not an object
        (b'{"wave": 1' + b"0" * 5000 + b"}", 400, "invalid_json"),  # an integer past Python's digit limit
        (b"\xff\xfe{}", 400, "invalid_json"),  # not UTF-8
        (b"{" + b'"k": 1, ' * 1500 + b'"z": 1}', 422, "validation_failed"),  # flat, within the limit: unknown fields
        (b'{"full_name": "' + b"a" * 20_000 + b'"}', 413, "body_too_large"),  # past the registration part's limit
    ],
    ids=["deep-array", "deep-object", "array", "huge-integer", "bad-utf8", "many-keys", "huge"],
)
async def test_hostile_json_gets_a_code(served: Served, sink: FakeSink, raw: bytes, status: int, code: str) -> None:
    client = await served()
    resp = await client.post("/v1/registrations", data=multipart(raw, JPEG))
    await _error(resp, status, code)
    assert sink.records == []


@pytest.mark.parametrize(
    "name",
    ["Siti\u202eNurhaliza", "Siti\u200bNurhaliza", "Siti\x00Nurhaliza", "Siti \U0001f600", "\ufeff"],
    ids=["rtl-override", "zero-width-space", "nul", "emoji", "bom-only"],
)
async def test_unicode_tricks_in_names_are_field_errors(served: Served, sink: FakeSink, name: str) -> None:
    client = await served()
    reg = make_registration()
    reg["full_name"] = name
    resp = await client.post("/v1/registrations", data=multipart(reg, JPEG))
    err = await _error(resp, 422, "validation_failed")
    assert [f["field"] for f in err["fields"]] == ["full_name"]
    assert sink.records == []


async def test_field_errors_are_422_with_codes(served: Served, sink: FakeSink) -> None:
    client = await served()
    reg = make_registration()
    reg["email"] = "not-an-email"
    reg["nik"] = "12"
    resp = await client.post("/v1/registrations", data=multipart(reg, JPEG))
    err = await _error(resp, 422, "validation_failed")
    fields = {f["field"] for f in err["fields"]}
    assert {"email", "nik"} <= fields
    assert "12" not in json.dumps(err)
    assert sink.records == []


async def test_wrong_wave_is_409(served: Served) -> None:
    client = await served()
    resp = await client.post("/v1/registrations", data=multipart(make_registration(wave=99), JPEG))
    err = await _error(resp, 409, "wave_not_open")
    assert err["open_wave"] == 1


async def test_declared_oversize_body_refused_before_reading(served: Served, sink: FakeSink) -> None:
    settings = unit_settings(limits=Limits(max_photo_bytes=100_000))
    client = await served(settings)
    resp = await client.post(
        "/v1/registrations",
        data=b"x" * 10,
        headers={
            "Content-Type": "multipart/form-data; boundary=b",
            "Content-Length": str(settings.limits.max_body_bytes + 1),
        },
    )
    assert resp.status == 413


async def test_photo_over_limit_is_413_while_streaming(served: Served, sink: FakeSink) -> None:
    settings = unit_settings(limits=Limits(max_photo_bytes=100_000))
    client = await served(settings)

    async def chunks() -> AsyncIterator[bytes]:
        yield (
            b'--b\r\nContent-Disposition: form-data; name="registration"\r\n'
            b"Content-Type: application/json\r\n\r\n" + json.dumps(make_registration()).encode() + b"\r\n"
            b'--b\r\nContent-Disposition: form-data; name="ktp_photo"; filename="k.jpg"\r\n\r\n'
        )
        for _ in range(50):  # 50 x 64 KiB > limit; no Content-Length, so only counting can stop it
            yield b"\xff" * 65536

    resp = await client.post(
        "/v1/registrations", data=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    err = await _error(resp, 413, "photo_too_large")
    assert err["limit_bytes"] == 100_000
    assert sink.records == []


async def test_photo_at_limit_is_accepted(served: Served, sink: FakeSink) -> None:
    settings = unit_settings(limits=Limits(max_photo_bytes=100_000))
    client = await served(settings)
    photo = JPEG[:4] + b"\x00" * (100_000 - len(JPEG)) + JPEG[4:]
    assert len(photo) == 100_000
    resp = await client.post("/v1/registrations", data=multipart(make_registration(), photo))
    assert resp.status == 202
    assert len(sink.records[0][2]) <= settings.limits.max_message_bytes


async def test_admission_sheds_with_503(served: Served) -> None:
    settings = unit_settings()
    settings = replace(settings, http=replace(settings.http, max_in_flight=1))
    client = await served(settings)
    app = client.app
    assert app is not None
    app[ADMISSION].in_flight = 1  # one request is being handled
    resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG))
    await _error(resp, 503, "overloaded")
    assert resp.headers["Retry-After"]
    assert (await client.get("/healthz")).status == 200  # health is never shed


async def _accept(client: TestClient[Any, Any]) -> dict[str, Any]:
    resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG))
    assert resp.status == 202
    return dict(await resp.json())


async def test_status_received_then_stored(served: Served, store: MemoryStore) -> None:
    client = await served()
    body = await _accept(client)
    auth = {"Authorization": f"Bearer {body['status_token']}"}
    resp = await client.get(body["status_url"], headers=auth)
    assert resp.status == 200
    assert (await resp.json())["state"] == "received"
    record = StatusRecord(
        body["submission_id"], "rejected", "2026-11-28T00:00:00+00:00", reason="blurry", measured=12.5, threshold=60.0
    )
    await store.put("intake-status", status_key(body["submission_id"]), record.to_json(), "application/json")
    resp = await client.get(body["status_url"], headers={**auth, "Accept-Language": "en"})
    status = await resp.json()
    assert status["state"] == "rejected"
    assert status["reason"]["code"] == "blurry"
    assert status["reason"]["message_id"].startswith("Foto KTP buram")
    etag = resp.headers["ETag"]
    again = await client.get(body["status_url"], headers={**auth, "If-None-Match": etag})
    assert again.status == 304


async def test_status_needs_the_token(served: Served) -> None:
    client = await served()
    body = await _accept(client)
    other = await _accept(client)
    await _error(await client.get(body["status_url"]), 401, "unauthorized")
    wrong = {"Authorization": f"Bearer {other['status_token']}"}
    await _error(await client.get(body["status_url"], headers=wrong), 401, "unauthorized")
    assert status_token(TEST_KEY.encode(), body["submission_id"]) == body["status_token"]


async def test_unknown_routes_are_json(served: Served) -> None:
    client = await served()
    await _error(await client.get("/nope"), 404, "not_found")
    await _error(await client.get("/v1/submissions/NOT-AN-ID", headers={"Authorization": "Bearer x"}), 404, "not_found")
    resp = await client.delete("/v1/registrations")
    await _error(resp, 405, "method_not_allowed")
    assert resp.headers["Allow"] == "POST"


async def test_health_and_readiness(served: Served, sink: FakeSink) -> None:
    client = await served()
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    sink.down = True
    await _error(await client.get("/readyz"), 503, "queue_unavailable")


async def test_metrics_count_by_code(served: Served) -> None:
    client = await served()
    await _accept(client)
    await client.post("/v1/registrations", json={})
    text = await (await client.get("/metrics")).text()
    assert 'intake_http_requests_total{code="ok",route="/v1/registrations",status="202"} 1.0' in text
    assert 'code="unsupported_media_type"' in text
