"""The CPU benchmark's floors: the bare reader that forwards to Kafka, the API with nothing outside the process,
and the split of an API's CPU they give."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from loadtests import baseline_app
from loadtests.bench_cpu import parse_args, render, split, summarise, variants_of
from loadtests.memory_api import DiscardingSink, memory_app
from loadtests.outcomes import classify
from tests.loadtests.test_bench_cpu import _row
from tests.support import FakeSink, api_client, make_registration, multipart, unit_settings

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 2000 + b"\xff\xd9"


async def test_the_bare_reader_forwards_each_body_whole_and_answers_after_the_ack() -> None:
    app = baseline_app.create_app()
    sink = FakeSink()
    app[baseline_app.SINK], app[baseline_app.TOPIC] = sink, "t.submissions"
    async with TestClient(TestServer(app)) as client:
        body = bytes(range(256)) * 1000
        resp = await client.post("/v1/registrations", data=body)
        assert resp.status == 202 and (await resp.json())["bytes"] == len(body)
        assert [(topic, value) for topic, _, value, _ in sink.records] == [("t.submissions", body)]
        sink.down = True
        resp = await client.post("/v1/registrations", data=body)
        assert resp.status == 503 and resp.headers["Retry-After"] == "1"


async def test_without_produce_the_bare_reader_only_reads() -> None:
    async with TestClient(TestServer(baseline_app.create_app())) as client:
        resp = await client.post("/v1/registrations", data=b"x" * 1000)
        assert resp.status == 202 and (await resp.json())["bytes"] == 1000


async def test_the_refusing_bare_server_answers_overloaded_unread_and_closes() -> None:
    async with TestClient(TestServer(baseline_app.create_app(refusing=True))) as client:
        resp = await client.post("/v1/registrations", data=b"x" * 100_000)
        assert resp.status == 503 and resp.headers["Retry-After"] == "5"
        assert resp.headers["Connection"] == "close"
        assert classify(resp.status, await resp.read()) == "overloaded"


def test_the_refusal_floor_is_measured_with_the_shed_variants(tmp_path: Path) -> None:
    args = parse_args(["--producers", "", "--shed", "--out", str(tmp_path)])
    assert variants_of(args)[-3:] == ["bare-refuse", "shed", "shed-linger"]


async def test_the_memory_api_is_the_real_api_on_a_discarding_sink() -> None:
    settings = unit_settings()
    app = memory_app(settings)
    async with api_client(app, settings) as client:
        for offset in range(2):
            resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG))
            assert resp.status == 202, await resp.text()
            assert (await resp.json())["offset"] == offset
        resp = await client.post("/v1/registrations", data=b"{}", headers={"Content-Type": "application/json"})
        assert resp.status == 415  # the API's own checks, unchanged


async def test_the_discarding_sink_keeps_nothing() -> None:
    sink = DiscardingSink()
    assert [(await sink.send("t", b"k", b"v" * 10)).offset for _ in range(3)] == [0, 1, 2]
    assert sink.ready() and sink.pending() == 0 and not hasattr(sink, "records")


def test_floors_are_measured_right_after_the_bare_reader(tmp_path: Path) -> None:
    args = parse_args(["--producers", "confluent", "--floors", "--bare-tuned", "--out", str(tmp_path)])
    assert variants_of(args) == ["bare", "bare-produce", "api-memory", "bare-tuned", "api-confluent"]


def test_the_split_adds_up_to_the_api(tmp_path: Path) -> None:
    rows = [_row("bare", 1.0), _row("bare-tuned", 0.7), _row("bare-produce", 1.5), _row("api-memory", 1.3)]
    rows += [_row("api-confluent", 2.9), _row("api-confluent-before", 3.5)]
    summary = summarise(rows)
    parts = split(summary, "api-confluent")
    assert parts is not None
    assert abs(sum(parts[k] for k in ("reading", "own work", "forwarding", "other clients")) - parts["total"]) < 1e-9
    assert abs(parts["forwarding"] - 0.8) < 1e-9 and abs(parts["other clients"] - 0.8) < 1e-9
    assert abs(parts["floor_ratio"] - 1.4 / 2.8) < 1e-9
    text = render(summary, rows, tmp_path, parse_args(["--floors", "--out", str(tmp_path)]))
    assert "| api-confluent | 0.60 | 0.60 | 0.80 | 0.80 | 2.80 | 0.50 |" in text
    assert "| api-confluent-before |" not in text.split("Where each API")[1].split("\n\n")[1]
    assert split(summarise([_row("bare", 1.0), _row("api-confluent", 2.0)]), "api-confluent") is None
