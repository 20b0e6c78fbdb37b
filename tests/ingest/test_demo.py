"""The demo page is served only when INTAKE_DEMO_PAGE is on, from a fixed list of files, with safe headers."""

from __future__ import annotations

from dataclasses import replace

from ingest.demo import FILES, STATIC_DIR
from intake.settings import Settings
from tests.ingest.conftest import Served
from tests.support import unit_settings


def _demo(on: bool) -> Settings:
    settings = unit_settings()
    return replace(settings, http=replace(settings.http, demo_page=on))


def test_demo_page_is_off_by_default() -> None:
    assert unit_settings().http.demo_page is False


async def test_demo_page_is_404_when_off(served: Served) -> None:
    client = await served(_demo(False))
    for path in ("/demo/", "/demo", "/demo/intake-client.js", "/demo/demo.js"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 404, path
        assert (await resp.json())["error"]["code"] == "not_found"


async def test_demo_page_is_served_when_on(served: Served) -> None:
    client = await served(_demo(True))
    resp = await client.get("/demo/")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    html = await resp.text()
    assert '<script type="module" src="./demo.js">' in html
    assert 'id="ktp_photo"' in html

    resp = await client.get("/demo/intake-client.js")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    body = await resp.text()
    for name in ("shrinkPhoto", "submitRegistration", "pollStatus", "messageFor"):
        assert f"export async function {name}" in body or f"export function {name}" in body

    resp = await client.get("/demo", allow_redirects=False)
    assert resp.status == 308
    assert resp.headers["Location"] == "/demo/"


async def test_every_listed_file_exists_and_nothing_else_is_served(served: Served) -> None:
    assert all((STATIC_DIR / name).is_file() for name in FILES)
    client = await served(_demo(True))
    for name, content_type in FILES.items():
        path = "/demo/" if name == "demo.html" else f"/demo/{name}"
        resp = await client.get(path)
        assert resp.status == 200, path
        assert resp.headers["Content-Type"] == content_type
    # No directory listing, no other file, no traversal.
    for path in ("/demo/static/", "/demo/demo.html", "/demo/../ingest/demo.py", "/demo/%2e%2e/app.py", "/demo/x.js"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 404, path
