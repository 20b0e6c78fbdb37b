"""Admission control: a bounded number of requests in flight per process.

Past the bound a request is refused at once with 503 ``overloaded`` and ``Retry-After``, before its body is
read, so the process never queues more work than it can finish before clients time out. Cheap routes
(health, readiness, metrics) are never refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ingest.errors import error_response
from intake.metrics import Metrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})


class Admission:
    """Counts requests in flight; :meth:`middleware` refuses those past ``limit``."""

    def __init__(self, limit: int, retry_after_s: int, metrics: Metrics) -> None:
        self.limit = limit
        self.in_flight = 0
        self._retry_after_s = retry_after_s
        self._metrics = metrics

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in _EXEMPT:
            return await handler(request)
        if self.in_flight >= self.limit:
            self._metrics.shed.labels("overloaded").inc()
            return error_response("overloaded", request, retry_after_s=self._retry_after_s)
        self.in_flight += 1
        self._metrics.http_in_flight.inc()
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1
            self._metrics.http_in_flight.dec()
