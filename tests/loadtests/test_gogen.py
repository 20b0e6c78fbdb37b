"""The Go open-loop generator: its plan (made in Python) and the binary against small servers on loopback.

The binary is built with the machine's ``go`` (as ``deploy/local/stack.sh`` builds MinIO); a machine without it
fails these tests, as it fails to start the stack.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import BodyPartReader, web

from intake.auth import Verifier, parse_client_keys, signing_key
from loadtests import gogen, outcomes
from loadtests.openloop import schedule
from loadtests.payloads import photo_files

KEYS = f"web:k1:{'w' * 40}:submit"


@dataclass
class Seen:
    count: int = 0
    parts: list[list[str]] = field(default_factory=list)
    photos: list[bytes] = field(default_factory=list)
    delay_s: float = 0.0


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Seen]]:
    seen = Seen()
    verifier = Verifier(parse_client_keys(KEYS), max_skew_s=300, max_nonces=10_000)

    async def handler(request: web.Request) -> web.Response:
        seen.count += 1
        verifier.verify("POST", request.path, request.headers, "submit")
        reader = await request.multipart()
        names = []
        while (part := await reader.next()) is not None:
            assert isinstance(part, BodyPartReader)
            names.append(part.name or "")
            data = await part.read()
            if part.name == "ktp_photo":
                seen.photos.append(bytes(data))
        seen.parts.append(names)
        if seen.delay_s:
            await asyncio.sleep(seen.delay_s)
        return web.json_response({"submission_id": "x"}, status=202)

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/v1/registrations", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1/registrations", seen
    finally:
        await runner.cleanup()


def _run(url: str, offsets: list[float], **kw: object) -> tuple[list[outcomes.Outcome], int, float]:
    return gogen.run(url, offsets, "200k", key=signing_key(KEYS, "submit"), timeout_s=5, **kw)  # type: ignore[arg-type]


def test_the_plan_names_each_body_and_signs_it_for_its_due_second() -> None:
    out = io.StringIO()
    offsets = schedule(rate=10, duration_s=0.5, max_requests=100)
    now = time.time()
    n = gogen.write_plan(
        out, "http://127.0.0.1:9/v1/registrations", offsets, "200k", key=signing_key(KEYS, "submit"),
        timeout_s=7, max_outstanding=3, expect=True, seed=1, now=now,
    )  # fmt: skip
    header, *rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert n == len(rows) == 5
    assert header["addr"] == "127.0.0.1:9" and header["path"] == "/v1/registrations"
    assert header["timeout_s"] == 7 and header["max_outstanding"] == 3 and header["expect"] is True
    assert header["photos"] == [str(p) for p in photo_files(["200k"])["200k"]]
    assert base64.b64decode(header["tail"]).endswith(b"--\r\n")
    verifier = Verifier(parse_client_keys(KEYS), max_skew_s=300, max_nonces=100)
    for due, row in zip(offsets, rows, strict=True):
        assert row["due"] == pytest.approx(due) and row["label"] == "200k"
        head = base64.b64decode(row["head"])
        assert b'name="registration"' in head and head.endswith(b"Content-Type: image/jpeg\r\n\r\n")
        headers = dict(row["headers"])
        assert f"Timestamp={int(now + due)}," in headers["Authorization"]
        assert verifier.verify("POST", "/v1/registrations", headers, "submit").client_id == "web"
    assert len({dict(r["headers"])["Idempotency-Key"] for r in rows}) == 5


def test_only_loopback_targets() -> None:
    with pytest.raises(ValueError, match="loopback"):
        gogen.write_plan(
            io.StringIO(), "http://10.0.0.1:8080/v1/registrations", [0.0], "200k", key=None, timeout_s=1,
            max_outstanding=1, expect=False,
        )  # fmt: skip


async def test_sends_every_planned_upload_whole_and_signed(server: tuple[str, Seen]) -> None:
    url, seen = server
    offsets = schedule(rate=100, duration_s=0.5, max_requests=1000)
    rows, launched, late_p99 = await asyncio.to_thread(_run, url, offsets)
    assert launched == len(rows) == seen.count == 50
    assert all(r.outcome == "accepted" and r.status == 202 and r.size_class == "200k" for r in rows)
    assert all(parts == ["registration", "ktp_photo"] for parts in seen.parts)
    files = {p.read_bytes() for p in photo_files(["200k"])["200k"]}
    assert set(seen.photos) <= files
    assert all(r.bytes > len(min(files, key=len)) for r in rows)
    assert rows[-1].start - rows[0].start == pytest.approx(0.49, abs=0.005)  # scheduled times, not completions
    assert late_p99 < 1000


async def test_outstanding_requests_are_bounded(server: tuple[str, Seen]) -> None:
    url, seen = server
    seen.delay_s = 0.5
    rows, launched, _ = await asyncio.to_thread(_run, url, schedule(200, 0.1, 100), max_outstanding=5)
    assert len(rows) == 20 and launched == 5 == seen.count
    assert sum(r.outcome == "client_saturated" for r in rows) == 15


async def _refusing_server(bodies: list[int]) -> asyncio.Server:
    """Answers 503 with the API's error shape after the head, then takes what else comes for 0.3 s and closes
    (unread bytes make the close a reset): the gate's refusal, body unread."""

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        answer = b'{"error":{"code":"overloaded"}}'
        writer.write(
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(answer), answer)
        )
        await writer.drain()
        received = 0
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(0.3):
                while chunk := await reader.read(65536):
                    received += len(chunk)
        bodies.append(received)
        writer.transport.abort()

    return await asyncio.start_server(refuse, "127.0.0.1", 0)


@pytest.mark.parametrize("expect", [False, True])
async def test_an_answer_before_the_body_is_read_and_classified(expect: bool) -> None:
    """Refused before its body was read: the answer counts (not a transport error), and with Expect the body is
    never sent."""
    bodies: list[int] = []
    srv = await _refusing_server(bodies)
    url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/v1/registrations"
    try:
        rows, launched, _ = await asyncio.to_thread(_run, url, schedule(40, 0.25, 100), expect=expect)
    finally:
        srv.close()
        await srv.wait_closed()
    assert launched == 10
    assert [(r.status, r.outcome) for r in rows] == [(503, "overloaded")] * 10
    assert outcomes.summarise(rows).shed == 10
    if expect:
        assert bodies == [0] * 10
    else:
        assert all(b > 0 for b in bodies)


def test_the_binary_is_cached_per_source(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("INTAKE_CACHE_DIR", str(tmp_path))
    path = gogen.binary_path()
    assert path.parent.parent == tmp_path and path.parent.name.startswith("gogen-")
    assert gogen.build() == path and path.exists()


def test_the_sources_are_gofmt_clean_and_vetted() -> None:
    assert (
        subprocess.run(["gofmt", "-l", "."], cwd=gogen.SOURCE, capture_output=True, text=True, check=True).stdout == ""
    )
    subprocess.run(["go", "vet", "."], cwd=gogen.SOURCE, capture_output=True, check=True)
