"""The consumer's /metrics server: serves the exposition while the block runs, and stops with it."""

from __future__ import annotations

import aiohttp
import pytest

from intake.metrics import build_metrics
from intake.metrics_http import serve_metrics


async def test_serves_metrics_on_a_free_port_and_stops() -> None:
    metrics = build_metrics()
    metrics.dead_letters.labels("bug").inc()
    async with aiohttp.ClientSession() as http:
        async with serve_metrics(metrics, "127.0.0.1", 0) as server:
            assert server.port > 0
            assert server.url == f"http://127.0.0.1:{server.port}/metrics"
            async with http.get(server.url) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                assert 'intake_dead_letters_total{reason="bug"} 1.0' in await resp.text()
            async with http.get(f"http://127.0.0.1:{server.port}/healthz") as resp:
                assert resp.status == 200
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.get(server.url) as resp:
                pass


async def test_a_taken_port_raises() -> None:
    metrics = build_metrics()
    async with serve_metrics(metrics, "127.0.0.1", 0) as server:
        with pytest.raises(OSError):
            async with serve_metrics(metrics, "127.0.0.1", server.port):
                pass
