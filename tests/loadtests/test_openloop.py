"""The open-loop generator issues exactly the planned requests on schedule, against a tiny in-process server."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import BodyPartReader, web

from intake.auth import Verifier, parse_client_keys
from loadtests import outcomes
from loadtests.openloop import check_loopback, registration_factory, run_open_loop, schedule
from loadtests.payloads import BodyFactory, fresh_registration
from loadtests.signing import load_key


@dataclass
class Seen:
    count: int = 0
    parts: list[list[str]] = field(default_factory=list)
    delay_s: float = 0.0
    status: int = 202


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Seen]]:
    seen = Seen()

    async def handler(request: web.Request) -> web.Response:
        seen.count += 1
        reader = await request.multipart()
        names = []
        while (part := await reader.next()) is not None:
            assert isinstance(part, BodyPartReader)
            names.append(part.name or "")
            await part.read()
        seen.parts.append(names)
        if seen.delay_s:
            await asyncio.sleep(seen.delay_s)
        if seen.status == 202:
            return web.json_response({"submission_id": "x"}, status=202)
        return web.json_response({"error": {"code": "overloaded"}}, status=seen.status, headers={"Retry-After": "1"})

    app = web.Application()
    app.router.add_post("/v1/registrations", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1/registrations", seen
    finally:
        await runner.cleanup()


def _factory() -> tuple[BodyFactory, random.Random]:
    return BodyFactory(), random.Random(7)


def _make(i: int) -> tuple[bytes, dict[str, str], str]:
    bodies, rng = _factory()
    return bodies.body(fresh_registration(rng), b"\xff\xd8photo\xff\xd9"), {"Content-Type": bodies.content_type}, "t"


def test_schedule_is_evenly_spaced_and_bounded() -> None:
    assert schedule(100, 0.5, 1000) == [i / 100 for i in range(50)]
    assert len(schedule(1000, 10, 123)) == 123
    assert schedule(0, 10, 10) == []


def test_only_loopback_targets() -> None:
    check_loopback("http://127.0.0.1:8080/v1/registrations")
    check_loopback("http://localhost:1/")
    with pytest.raises(ValueError, match="loopback"):
        check_loopback("http://10.0.0.1:8080/")


async def test_issues_the_planned_number_of_requests(server: tuple[str, Seen]) -> None:
    url, seen = server
    offsets = schedule(rate=200, duration_s=0.5, max_requests=1000)
    assert len(offsets) == 100
    result = await run_open_loop(url, offsets, _make, timeout_s=5)
    assert seen.count == 100
    assert result.planned == result.launched == 100
    assert len(result.rows) == 100
    assert all(r.outcome == "accepted" and r.status == 202 for r in result.rows)
    assert all(parts == ["registration", "ktp_photo"] for parts in seen.parts)
    starts = sorted(r.start for r in result.rows)
    assert starts[-1] - starts[0] == pytest.approx(0.495, abs=0.01)  # scheduled times, not completion times


async def test_requests_are_launched_without_waiting_for_answers(server: tuple[str, Seen]) -> None:
    url, seen = server
    seen.delay_s = 0.4  # every answer is slow; a closed loop would send one request per 0.4 s
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await run_open_loop(url, schedule(100, 0.2, 100), _make, timeout_s=5)
    assert result.launched == 20
    assert loop.time() - started < 1.5
    assert min(r.latency_ms for r in result.rows) >= 390  # measured from the due time


async def test_outstanding_requests_are_bounded(server: tuple[str, Seen]) -> None:
    url, seen = server
    seen.delay_s = 0.5
    result = await run_open_loop(url, schedule(200, 0.1, 100), _make, timeout_s=5, max_outstanding=5)
    assert result.planned == 20 and result.launched == 5
    assert sum(r.outcome == "client_saturated" for r in result.rows) == 15
    assert seen.count == 5


async def test_shed_answers_are_classified(server: tuple[str, Seen]) -> None:
    url, seen = server
    seen.status = 503
    result = await run_open_loop(url, schedule(100, 0.1, 100), _make, timeout_s=5)
    s = outcomes.summarise(result.rows)
    assert s.shed == 10 and s.accepted == 0
    assert s.by_outcome == {"overloaded": 10}


async def test_with_expect_a_refused_upload_never_sends_its_body() -> None:
    """A server that refuses at once, as the API's gate does: an Expect client sends it the head only."""
    body_bytes: list[int] = []

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        received = 0
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(0.5):  # whatever the client sends after the answer, until it closes
                while chunk := await reader.read(65536):
                    received += len(chunk)
        body_bytes.append(received)
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/registrations"
    try:
        result = await run_open_loop(url, schedule(20, 0.1, 2), _make, timeout_s=5, expect=True)
    finally:
        server.close()
        await server.wait_closed()
    assert [r.status for r in result.rows] == [503, 503]
    assert body_bytes == [0, 0]  # without Expect the body follows the head at once


def test_generated_uploads_are_signed_for_their_idempotency_key(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = f"web:k1:{'w' * 40}:submit"
    monkeypatch.setenv("INTAKE_CLIENT_KEYS", keys)
    load_key.cache_clear()
    verifier = Verifier(parse_client_keys(keys), max_skew_s=300, max_nonces=100)
    make = registration_factory("200k", seed=1, key=load_key())
    for i in range(2):
        _, headers, _ = make(i)
        assert verifier.verify("POST", "/v1/registrations", headers, "submit").client_id == "web"
    load_key.cache_clear()


def test_a_generator_without_a_key_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTAKE_CLIENT_KEYS", raising=False)
    load_key.cache_clear()
    with pytest.raises(SystemExit, match="INTAKE_CLIENT_KEYS"):
        load_key()
