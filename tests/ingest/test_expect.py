"""``Expect: 100-continue`` on the upload route: the go-ahead comes after admission, the signature and the declared
length, so a refused upload is answered while its body is still on the client."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ingest.expect import CONTINUE, continue_body
from intake.auth import sign
from tests.ingest.conftest import Served
from tests.support import FakeSink, client_key, make_registration, multipart, unit_settings

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 2000 + b"\xff\xd9"
PATH = "/v1/registrations"


def _body() -> bytes:
    registration = json.dumps(make_registration()).encode()
    return (
        b'--b\r\nContent-Disposition: form-data; name="registration"\r\nContent-Type: application/json\r\n\r\n'
        + registration
        + b'\r\n--b\r\nContent-Disposition: form-data; name="ktp_photo"; filename="ktp.jpg"\r\n'
        + b"Content-Type: image/jpeg\r\n\r\n"
        + JPEG
        + b"\r\n--b--\r\n"
    )


def _head(length: int, *, expect: str = "100-continue", signed: bool = True) -> bytes:
    lines = [
        f"POST {PATH} HTTP/1.1",
        "Host: x",
        "Content-Type: multipart/form-data; boundary=b",
        f"Content-Length: {length}",
        f"Expect: {expect}",
    ]
    if signed:
        lines.append("Authorization: " + sign(client_key(unit_settings()), "POST", PATH)["Authorization"])
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _read_answer(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    """One answer: status line, headers (lower-case names), body (by its Content-Length)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status, *lines = head.decode().split("\r\n")[:-2]
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 10)
    return status.encode(), headers, body


async def _exchange(client: TestClient[Any, Any], head: bytes) -> tuple[bytes, dict[str, str], bytes]:
    """Send only ``head`` (no body byte) and read the first answer."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(head)
        await writer.drain()
        return await _read_answer(reader)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_the_go_ahead_comes_once_the_upload_may_be_read(served: Served, sink: FakeSink) -> None:
    client = await served(signed=False)
    body = _body()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(_head(len(body)))
        await writer.drain()
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10) == CONTINUE  # nothing sent but the head
        writer.write(body)
        await writer.drain()
        status, _, answer = await _read_answer(reader)
    finally:
        writer.close()
        await writer.wait_closed()
    assert status == b"HTTP/1.1 202 Accepted", answer
    assert len(sink.records) == 1


class _BusySink(FakeSink):
    """More records awaiting Kafka than any process admits: every upload is shed."""

    def pending(self) -> int:
        return 1_000_000


async def test_a_shed_upload_is_refused_instead_of_the_go_ahead(served: Served) -> None:
    settings = unit_settings()
    settings = replace(settings, http=replace(settings.http, max_pending_produce=4))
    client = await served(settings, _BusySink(), signed=False)
    status, headers, body = await _exchange(client, _head(len(_body())))
    assert status.startswith(b"HTTP/1.1 503"), body  # not 100: the client keeps its photo
    assert int(headers["retry-after"]) >= 1 and headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "overloaded"


async def test_unsigned_and_oversized_uploads_are_refused_before_the_go_ahead(served: Served) -> None:
    client = await served(signed=False)
    status, _, body = await _exchange(client, _head(len(_body()), signed=False))
    assert status.startswith(b"HTTP/1.1 401") and json.loads(body)["error"]["code"] == "unauthorized"
    too_large = unit_settings().limits.max_body_bytes + 1
    status, _, body = await _exchange(client, _head(too_large))
    assert status.startswith(b"HTTP/1.1 413") and json.loads(body)["error"]["code"] == "body_too_large"


async def test_another_expectation_is_417_from_the_error_table(served: Served, sink: FakeSink) -> None:
    client = await served(signed=False)
    status, _, body = await _exchange(client, _head(len(_body()), expect="something-else"))
    assert status.startswith(b"HTTP/1.1 417"), body
    error = json.loads(body)["error"]
    assert error["code"] == "expectation_failed" and error["message"]
    assert sink.records == []


async def test_a_client_that_waits_for_the_go_ahead_gets_its_upload_accepted(served: Served, sink: FakeSink) -> None:
    client = await served()
    resp = await client.post(PATH, data=multipart(make_registration(), JPEG), expect100=True)
    assert resp.status == 202, await resp.text()
    assert len(sink.records) == 1


async def test_a_route_that_does_not_defer_keeps_aiohttps_go_ahead() -> None:
    """Only the routes that defer answer 100 from their handler; elsewhere aiohttp answered at routing (never two)."""

    async def handler(request: web.Request) -> web.Response:
        assert await continue_body(request)  # writes nothing: aiohttp's own expect handler already did
        return web.Response(body=await request.read())

    app = web.Application()
    app.router.add_post("/echo", handler)
    async with TestClient(TestServer(app)) as client:
        reader, writer = await asyncio.open_connection(client.host, client.port)
        try:
            writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
            await writer.drain()
            assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10) == CONTINUE
            writer.write(b"ok")
            status, _, body = await _read_answer(reader)
        finally:
            writer.close()
            await writer.wait_closed()
    assert status == b"HTTP/1.1 200 OK" and body == b"ok"
