"""A tiny ``/metrics`` HTTP server for processes that have no API of their own (consumers).

    async with serve_metrics(metrics, "127.0.0.1", 9102) as server:
        ...  # server.url is http://127.0.0.1:9102/metrics; port 0 picks a free port

``GET /metrics`` answers the text exposition of ``metrics`` (all processes of the directory in multiprocess
mode, see :mod:`intake.metrics`); ``GET /healthz`` answers 200. The server stops when the block exits.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from intake.metrics import Metrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class MetricsServer:
    """Where a running metrics server listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"


def metrics_app(metrics: Metrics) -> web.Application:
    """The aiohttp application: ``/metrics`` and ``/healthz``."""

    async def exposition(request: web.Request) -> web.StreamResponse:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def healthz(request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/metrics", exposition)
    app.router.add_get("/healthz", healthz)
    return app


@contextlib.asynccontextmanager
async def serve_metrics(metrics: Metrics, host: str, port: int) -> AsyncIterator[MetricsServer]:
    """Serve ``metrics`` on ``host:port`` (0 = a free port) while the block runs. Raises ``OSError`` if taken."""
    runner = web.AppRunner(metrics_app(metrics), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        yield MetricsServer(host, int(bound[1]))
    finally:
        await runner.cleanup()
