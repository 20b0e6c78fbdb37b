"""The API probes the object store it builds at start: it refuses to start on a store that ignores conditional
create or encryption at rest (in either bucket), and starts, warning, when the store does not answer."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ingest import app as app_module
from ingest.app import create_app
from intake.metrics import build_metrics
from intake.storage import MemoryStore, StorageUnavailable, StoreUnfit
from tests.store_doubles import IgnoresIfNoneMatch, IgnoresSse
from tests.support import FakeSink, unit_settings


def _serve_with(store: MemoryStore, monkeypatch: pytest.MonkeyPatch) -> TestClient[Any, Any]:
    monkeypatch.setattr(app_module, "build_store", lambda settings: store)
    app = create_app(unit_settings(), sink=FakeSink(), metrics=build_metrics())
    return TestClient(TestServer(app))


@pytest.mark.parametrize(
    ("store", "names"),
    [
        (IgnoresIfNoneMatch(), "If-None-Match"),
        (IgnoresSse("intake-ktp"), "'intake-ktp'"),
        (IgnoresSse("intake-status"), "'intake-status'"),
        (IgnoresSse("intake-keys"), "'intake-keys'"),
    ],
    ids=["ignores-if-none-match", "photos-unencrypted", "status-unencrypted", "keys-unencrypted"],
)
async def test_api_refuses_to_start_on_an_unfit_store(
    store: MemoryStore, names: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    client = _serve_with(store, monkeypatch)
    with caplog.at_level(logging.CRITICAL, logger="intake.ingest"), pytest.raises(StoreUnfit, match=names):
        await client.start_server()
    await client.close()
    assert any("refusing to start" in r.getMessage() and names in r.getMessage() for r in caplog.records)


async def test_api_starts_on_a_fit_store(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _serve_with(MemoryStore(), monkeypatch)
    await client.start_server()
    try:
        assert (await client.get("/healthz")).status == 200
    finally:
        await client.close()


async def test_api_starts_when_the_store_does_not_answer(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Uploads need Kafka (and the key store only for a data key not cached: 503 until it is back); the consumers,
    which write, never start unprobed."""
    monkeypatch.setattr(MemoryStore, "ensure_buckets", _unavailable)
    client = _serve_with(MemoryStore(), monkeypatch)
    with caplog.at_level(logging.WARNING, logger="intake.ingest"):
        await client.start_server()
    try:
        assert (await client.get("/healthz")).status == 200
    finally:
        await client.close()
    assert any("not answering" in r.getMessage() for r in caplog.records)


async def _unavailable(self: MemoryStore, buckets: object) -> None:
    raise StorageUnavailable("ensure_buckets: ConnectionRefusedError")
