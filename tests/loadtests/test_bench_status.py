"""The status benchmark's load generator counts real answers, its statuses are valid records, and the profile
summary reads py-spy's collapsed stacks (no broker, no timing asserted)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from ingest.status_view import StatusView
from loadtests.bench_status import _load, _record, _sid, _top_frames


async def test_load_generator_counts_answers_by_status() -> None:
    async def ok(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == '"x"':
            return web.Response(status=304, headers={"ETag": '"x"'})
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/ok", ok)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("/ok"))
        got = await _load(url, 0.3, 2, [])
        assert got["requests"] > 0 and got["statuses"] == {200: got["requests"]} and got["errors"] == 0
        got = await _load(url, 0.3, 2, ['If-None-Match: "x"'])
        assert set(got["statuses"]) == {304}


def test_synthetic_statuses_are_distinct_valid_records() -> None:
    view = StatusView(10)
    for i in range(3):
        view.apply(_sid(i).encode(), _record(i).to_json())
    assert len(view) == 3 and view.get(_sid(2)) == _record(2)


def test_profile_summary(tmp_path: Path) -> None:
    raw = tmp_path / "p.txt"
    raw.write_text("main (cli/main.py:1);handler (ingest/status_read.py:9);write (x.py:2) 3\nmain (cli/main.py:1) 1\n")
    lines = _top_frames(raw, 5)
    assert " 75.0%  handler (ingest/status_read.py:9)" in lines
    assert _top_frames(tmp_path / "absent.txt", 5)[0].startswith("(no profile")
