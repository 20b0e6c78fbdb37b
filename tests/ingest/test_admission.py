"""Admission control and slow clients: rate limits, bounded bytes and produce queue, deadlines, draining."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, unused_port

from ingest.admission import ADMISSION_LAG_INTERVAL_S, IDLE_AFTER_S, IDLE_LAG_INTERVAL_S, LoopLag
from ingest.app import create_app
from ingest.keys import ADMISSION
from ingest.ratelimit import RateLimiter, TokenBucket
from ingest.server import serve
from intake.auth import sign
from intake.metrics import build_metrics
from intake.settings import Settings
from tests.support import FakeSink, api_client, api_store, client_key, make_registration, multipart, unit_settings

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 2000 + b"\xff\xd9"


def _settings(**http: Any) -> Settings:
    s = unit_settings()
    return replace(s, http=replace(s.http, **http))


@pytest.fixture
async def client_for() -> AsyncIterator[Any]:
    clients: list[TestClient[Any, Any]] = []
    sink = FakeSink()

    async def make(settings: Settings) -> tuple[TestClient[Any, Any], FakeSink]:
        store = api_store()
        await store.ensure_buckets(["intake-ktp", "intake-status"])
        client: TestClient[Any, Any] = api_client(
            create_app(settings, sink=sink, store=store, metrics=build_metrics()), settings
        )
        await client.start_server()
        clients.append(client)
        return client, sink

    yield make
    for c in clients:
        await c.close()


def test_token_bucket_refills() -> None:
    bucket = TokenBucket(rate=2.0, burst=2, tokens=2.0, updated=0.0)
    assert bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0.0  # one token refilled after 0.5 s


def test_rate_limiter_is_bounded_and_reports_the_wait() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=0.2, burst=1, max_keys=3, clock=lambda: now[0])
    assert limiter.check("a") == 0
    assert limiter.check("a") == 5  # next token in 5 s
    for key in "bcdef":
        limiter.check(key)
    assert len(limiter) == 3
    assert limiter.check("a") == 0  # evicted, so it starts with a full bucket again


async def test_rate_limit_per_address_is_429_with_retry_after(client_for: Any) -> None:
    client, _ = await client_for(_settings(rate_per_address=0.5, burst_per_address=2))
    statuses = []
    for _ in range(3):
        resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG))
        statuses.append(resp.status)
    assert statuses == [202, 202, 429]
    body = await resp.json()
    assert body["error"]["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) >= 1
    assert (await client.get("/healthz")).status == 200  # never limited
    metrics = await (await client.get("/metrics")).text()
    assert 'intake_shed_total{code="rate_limited"} 1.0' in metrics


async def test_forwarded_address_only_when_trusted(client_for: Any) -> None:
    client, _ = await client_for(_settings(rate_per_address=0.5, burst_per_address=1, trust_forwarded=True))
    for hop in ("10.0.0.1", "10.0.0.2"):
        resp = await client.post(
            "/v1/registrations",
            data=multipart(make_registration(), JPEG),
            headers={"X-Forwarded-For": f"203.0.113.9, {hop}"},
        )
        assert resp.status == 202  # distinct applicants behind the proxy


async def test_bytes_in_flight_are_bounded(client_for: Any) -> None:
    settings = unit_settings()
    client, _ = await client_for(_settings(max_in_flight_bytes=settings.limits.max_body_bytes))
    app = client.server.app
    assert app is not None
    app[ADMISSION].in_flight_bytes = settings.limits.max_body_bytes - 100  # a large upload is being read
    resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG))
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "overloaded"
    app[ADMISSION].in_flight_bytes = 0
    assert (await client.post("/v1/registrations", data=multipart(make_registration(), JPEG))).status == 202


async def test_deep_produce_queue_sheds_posts_only(client_for: Any) -> None:
    client, sink = await client_for(_settings(max_pending_produce=4))
    sink.pending_override = 4
    resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG))
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "overloaded"
    assert resp.headers["Retry-After"]
    assert sink.records == []  # shed before producing: nothing waited on the deep queue
    assert (await client.get("/healthz")).status == 200  # GETs are not shed


def _fake_app(settings: Settings) -> Any:
    return create_app(settings, sink=FakeSink(), store=api_store(), metrics=build_metrics())


async def _start(settings: Settings, factory: Any = _fake_app) -> tuple[asyncio.Task[None], asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop, factory))
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection(settings.http.host, settings.http.port)
            writer.close()
            await writer.wait_closed()
            break
        except OSError:
            await asyncio.sleep(0.05)
    return task, stop


@contextlib.asynccontextmanager
async def _serving(settings: Settings) -> AsyncIterator[None]:
    """The real server (``serve``) on its port for the block; stopped gracefully after it."""
    task, stop = await _start(settings)
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def _raw_exchange(settings: Settings, data: bytes, until: bytes | None = None) -> bytes:
    """Send ``data`` on a new connection; return what comes back up to ``until`` (or until the server closes)."""
    reader, writer = await asyncio.open_connection(settings.http.host, settings.http.port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(until) if until else reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()


def _server_settings(**http: Any) -> Settings:
    return _settings(host="127.0.0.1", port=unused_port(), **http)


@pytest.mark.parametrize(
    "head",
    [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"a" * 9000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(100)) + b"\r\n",
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
    ids=["huge-field", "too-many-fields", "huge-request-line"],
)
async def test_oversized_heads_are_refused_with_400(head: bytes) -> None:
    settings = _server_settings()
    assert settings.http.max_header_bytes < 9000 and settings.http.max_headers < 100
    async with _serving(settings):
        answer = await _raw_exchange(settings, head)  # answered, then closed by the server
    assert answer.split(b" ", 2)[1] in (b"400", b"431"), answer[:100]  # the HTTP parser's own answer


async def test_slowloris_head_is_cut_off() -> None:
    """The server closes a connection whose head never completes. The wait for that is bounded by a deadline
    (a socket timeout, which fails the test) far below the default header timeout, so only the configured one
    can close it in time; nothing is measured."""
    settings = _server_settings(header_timeout_s=0.5)
    deadline_s = unit_settings().http.header_timeout_s / 2
    assert deadline_s >= 10 * settings.http.header_timeout_s
    async with _serving(settings):
        sock = socket.create_connection((settings.http.host, settings.http.port))
        try:
            sock.sendall(b"POST /v1/registrations HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finishes the head
            sock.settimeout(deadline_s)
            data = await asyncio.to_thread(sock.recv, 1024)
        finally:
            sock.close()
        assert data == b""  # closed by the server


async def test_slow_body_gets_408() -> None:
    settings = _server_settings(body_read_timeout_s=0.5)
    auth = sign(client_key(settings), "POST", "/v1/registrations")["Authorization"]
    request = (
        b"POST /v1/registrations HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        + f"Authorization: {auth}\r\n".encode()
        + b"Content-Length: 100000\r\n\r\n--b\r\n"
    )
    async with _serving(settings):
        head = await _raw_exchange(settings, request, until=b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")


async def test_graceful_shutdown_turns_readiness_false_first() -> None:
    settings = _server_settings(drain_delay_s=1.0)
    task, stop = await _start(settings)
    url = f"http://{settings.http.host}:{settings.http.port}/readyz"
    async with ClientSession() as session:
        assert (await session.get(url)).status == 200
        stop.set()
        statuses = [(await session.get(url)).status]
        while statuses[-1] == 200:  # until the stop is seen; a closed listener would raise and fail the test
            await asyncio.sleep(0)
            statuses.append((await session.get(url)).status)
        assert statuses[-1] == 503  # draining, the listener still open: load balancers stop sending
        await asyncio.wait_for(task, 30)
        with pytest.raises(OSError):
            await session.get(url)  # the listener is closed


class _BusySink(FakeSink):
    """A sink with more records awaiting Kafka than any process admits: every upload is shed."""

    def pending(self) -> int:
        return 1_000_000


async def test_shed_answers_before_the_body_is_read_and_closes() -> None:
    settings = _server_settings(max_pending_produce=4)
    assert settings.http.linger_s == 0
    head = (
        b"POST /v1/registrations HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 5000000\r\n\r\n--b\r\n"
    )  # unsigned, and only the first bytes of a 5 MB body: the gate answers before either matters
    task, stop = await _start(
        settings, lambda s: create_app(s, sink=_BusySink(), store=api_store(), metrics=build_metrics())
    )
    # Not the body deadline: the exchange must end (the server closed) long before it, with 5 MB never sent.
    deadline_s = settings.http.body_read_timeout_s / 2
    try:
        answer = await asyncio.wait_for(_raw_exchange(settings, head), deadline_s)  # returns once the server closed
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    status_line, _, rest = answer.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert status_line.startswith(b"HTTP/1.1 503"), answer[:200]
    lowered = headers.lower()
    assert b"\r\nretry-after: " in b"\r\n" + lowered and b"connection: close" in lowered
    assert b'"code": "overloaded"' in body


async def test_gate_refuses_before_authentication(client_for: Any) -> None:
    client, _ = await client_for(_settings(max_in_flight=1))
    client.server.app[ADMISSION].in_flight = 1
    async with ClientSession() as raw:  # no signature at all: 503, not 401
        resp = await raw.post(client.make_url("/v1/registrations"), data=multipart(make_registration(), JPEG))
        assert resp.status == 503
        assert (await resp.json())["error"]["code"] == "overloaded"
        assert 5 <= int(resp.headers["Retry-After"]) <= 10
    client.server.app[ADMISSION].in_flight = 0
    assert (await client.get("/healthz")).status == 200  # cheap routes are never refused


async def test_event_loop_lag_sheds_uploads(client_for: Any) -> None:
    client, sink = await client_for(_settings(max_loop_lag_ms=50.0))
    admission = client.server.app[ADMISSION]
    admission.lag.poke()  # a request came in (each one pokes a probe), then the loop ran late
    time.sleep(0.3)  # noqa: ASYNC251 - the point: a loop that runs late
    assert admission.lag.lag_s >= 0.2  # the waiting probe counts while it waits
    resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG))
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "overloaded"
    assert resp.headers["Retry-After"]
    await asyncio.sleep(0.35)  # the loop is on time again, and the late sample stood as long as it measured
    assert admission.lag.lag_s < 0.05
    assert (await client.post("/v1/registrations", data=multipart(make_registration(), JPEG))).status == 202
    assert len(sink.records) == 1


@contextlib.asynccontextmanager
async def _sampling(lag: LoopLag, on_sample: Callable[[float], None]) -> AsyncIterator[None]:
    """``lag.run(on_sample)`` as a task while the block runs; cancelled, and awaited, when it ends."""
    task = asyncio.ensure_future(lag.run(on_sample))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_probe_samples_often_only_while_requests_come() -> None:
    lag, samples = LoopLag(0.01, idle_interval_s=0.3, idle_after_s=0.05), list[float]()
    lag.poke()  # not running: remembered, nothing scheduled
    assert lag.idle and lag.lag_s == 0.0
    lag = LoopLag(0.01, idle_interval_s=0.3, idle_after_s=0.05)
    async with _sampling(lag, samples.append):
        await asyncio.sleep(0.1)
        assert lag.idle and samples == []  # no request yet: one wake-up per 0.3 s
        for _ in range(10):  # requests every 20 ms
            lag.poke()
            assert not lag.idle
            await asyncio.sleep(0.02)
        assert len(samples) >= 5  # every 10 ms while they come
        await asyncio.sleep(0.15)  # then 50 ms without one
        assert lag.idle
        count = len(samples)
        await asyncio.sleep(0.15)
        assert len(samples) <= count + 1  # slow again
        stalled = asyncio.get_running_loop().time()
        lag.poke()  # a request after a quiet spell: the next sample is due in 10 ms, not in up to 0.3 s
        time.sleep(0.1)  # noqa: ASYNC251 - the point: a loop that runs late
        assert lag.lag_s >= asyncio.get_running_loop().time() - stalled - 0.02  # overdue while still stalled
    count = len(samples)
    await asyncio.sleep(0.05)
    assert len(samples) == count and lag.lag_s == 0.0  # cancelled: no timer left, and it says nothing


async def test_the_lag_probe_samples_each_wake_up_and_sees_a_stall_while_it_lasts() -> None:
    lag, samples = LoopLag(0.01, idle_interval_s=0.01), list[float]()
    async with _sampling(lag, samples.append):
        await asyncio.sleep(0.1)
        assert len(samples) >= 4  # a sample at each wake-up
        stalled = asyncio.get_running_loop().time()
        time.sleep(0.2)  # noqa: ASYNC251 - the point: a loop that runs late
        assert lag.lag_s >= asyncio.get_running_loop().time() - stalled - 0.02  # overdue while still stalled
        count = len(samples)
        await asyncio.sleep(0)  # the overdue wake-up runs and records the stall
        await asyncio.sleep(0.05)
        assert len(samples) > count and max(samples[count:]) >= 0.15
    count = len(samples)
    await asyncio.sleep(0.05)
    assert len(samples) == count  # cancelled: its pending wake-up is cancelled too


async def test_a_failing_sample_callback_does_not_stop_the_probe() -> None:
    loop, reported, calls = asyncio.get_running_loop(), list[dict[str, Any]](), list[float]()

    def on_sample(lag_s: float) -> None:
        calls.append(lag_s)
        if len(calls) == 1:
            raise RuntimeError("gauge broke")

    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    lag = LoopLag(0.01, idle_interval_s=0.01)
    try:
        async with _sampling(lag, on_sample):
            await asyncio.sleep(0.1)
    finally:
        loop.set_exception_handler(None)
    assert len(calls) >= 4  # sampling went on after the first callback raised
    assert [type(c.get("exception")) for c in reported] == [RuntimeError]


async def test_requests_probe_the_lag_only_while_it_decides_admission(
    client_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for max_loop_lag_ms, probes in ((50.0, 2), (0.0, 0)):
        client, _ = await client_for(_settings(max_loop_lag_ms=max_loop_lag_ms))
        lag = client.server.app[ADMISSION].lag
        assert lag.interval_s == ADMISSION_LAG_INTERVAL_S == 0.02
        assert lag.idle_interval_s == IDLE_LAG_INTERVAL_S == IDLE_AFTER_S == 1.0  # an idle API is not woken often
        pokes = list[None]()
        monkeypatch.setattr(lag, "poke", lambda pokes=pokes: pokes.append(None))
        assert (await client.get("/healthz")).status == 200  # health probes and scrapes do not keep it awake
        assert (await client.post("/v1/registrations", data=multipart(make_registration(), JPEG))).status == 202
        assert (await client.get("/v1/queue")).status in (200, 503)  # a status read keeps it awake too
        assert len(pokes) == probes  # off: never poked, so sampled once a second for the gauge alone


async def test_event_loop_lag_can_be_switched_off(client_for: Any) -> None:
    client, _ = await client_for(_settings(max_loop_lag_ms=0.0))
    time.sleep(0.3)  # noqa: ASYNC251
    assert (await client.post("/v1/registrations", data=multipart(make_registration(), JPEG))).status == 202
