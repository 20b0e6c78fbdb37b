"""Fixtures of the API's unit tests: a fake Kafka sink, an in-memory object store, and the API served over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ingest.app import create_app
from intake.metrics import build_metrics
from intake.settings import Settings
from intake.storage import MemoryStore
from tests.support import FakeSink, api_client, unit_settings

Served = Callable[..., Awaitable[TestClient[Any, Any]]]
"""``served(settings=None, sink=None, store=None, *, signed=True, scope="submit", actor=None)``."""


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
async def store() -> MemoryStore:
    s = MemoryStore()
    await s.ensure_buckets(["intake-ktp", "intake-status", "intake-keys"])
    return s


@pytest.fixture
async def served(sink: FakeSink, store: MemoryStore) -> AsyncIterator[Served]:
    """Start the API for ``settings`` (default: :func:`unit_settings`) with this test's fake sink and store (or the
    given ones) on a test server, and return a client. The client signs its requests with the first key of
    ``scope`` (as ``actor``) unless ``signed=False``. Every client is closed after the test."""
    clients: list[TestClient[Any, Any]] = []

    async def factory(
        settings: Settings | None = None,
        sink_: FakeSink | None = None,
        store_: MemoryStore | None = None,
        *,
        signed: bool = True,
        scope: str = "submit",
        actor: str | None = None,
    ) -> TestClient[Any, Any]:
        settings = settings or unit_settings()
        app = create_app(settings, sink=sink_ or sink, store=store_ or store, metrics=build_metrics())
        client: TestClient[Any, Any] = (
            api_client(app, settings, scope=scope, actor=actor) if signed else TestClient(TestServer(app))
        )
        await client.start_server()
        clients.append(client)
        return client

    yield factory
    for c in clients:
        await c.close()
