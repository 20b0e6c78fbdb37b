"""Browser fixtures: Debian's Chromium (deploy/local/browser.sh) driven by Playwright, against the real stack.

The API under test is the real one (real Kafka producer, real MinIO) with the demo page on, on an ephemeral
port of 127.0.0.1 that Chromium reaches over HTTP. No browser is downloaded: Playwright's driver launches
``/usr/bin/chromium`` (``INTAKE_CHROMIUM`` overrides it). A missing browser FAILS the tests, never skips them.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, Page, async_playwright

from ingest.admission import Handler
from ingest.app import create_app
from intake.settings import Settings
from tests.integration.conftest import consumers, topics_ready, wait_until  # noqa: F401

CHROMIUM = os.environ.get("INTAKE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPORTS = Path(__file__).resolve().parents[2] / "reports" / "browser"


@dataclass(frozen=True)
class Seen:
    """One request as the server received it (no body: only its declared size)."""

    method: str
    path: str
    content_length: int | None
    idempotency_key: str | None
    at: float
    status: int


@dataclass
class DemoServer:
    """The API with the demo page on, and what it received."""

    client: TestClient[Any, Any]
    settings: Settings
    seen: list[Seen] = field(default_factory=list)

    def url(self, path: str) -> str:
        return str(self.client.make_url(path))

    def posts(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST" and s.path == "/v1/registrations"]


@pytest.fixture
async def demo_server(topics_ready: Settings) -> AsyncIterator[DemoServer]:  # noqa: F811
    """The real API (real producer and store) with INTAKE_DEMO_PAGE on and a 1 s polling hint."""
    settings = replace(topics_ready, http=replace(topics_ready.http, demo_page=True, poll_after_s=1))
    app = create_app(settings)
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
    server = DemoServer(client, settings)

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        server.seen.append(
            Seen(
                request.method,
                request.path,
                request.content_length,
                request.headers.get("Idempotency-Key"),
                time.monotonic(),
                response.status,
            )
        )
        return response

    app.middlewares.append(record)  # innermost: sees what reached the handlers
    await client.start_server()

    async def ready() -> bool:
        return (await client.get("/readyz")).status == 200

    await wait_until(ready, 30, "API readiness")
    yield server
    await client.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium, one per test (Playwright's objects are bound to the test's event loop)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run deploy/local/browser.sh (installs Debian's chromium package)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page; an uncaught script error on it fails the test."""
    context = await browser.new_context(locale="id-ID", viewport={"width": 1000, "height": 900})
    opened = await context.new_page()
    opened.set_default_timeout(20_000)
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    await context.close()
    assert not errors, f"uncaught errors on the page: {errors}"
