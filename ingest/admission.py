"""Admission control: what a process takes on at once is bounded, and the excess is refused fast.

In order, before the body is read:

1. per-client and per-source-address token buckets: 429 ``rate_limited`` with the wait in Retry-After;
2. uploads (POST) in flight (``INTAKE_MAX_IN_FLIGHT``) and their bytes (``INTAKE_MAX_IN_FLIGHT_BYTES``, by
   declared Content-Length, or the body limit when undeclared): 503 ``overloaded``; status reads (GET) are
   cheap and bounded by the rate limits alone;
3. records awaiting Kafka's acknowledgement (``INTAKE_MAX_PENDING_PRODUCE``): 503 ``overloaded``, since
   accepting more would only make every client wait past its timeout.

So the process never queues more than it can finish before clients give up. Cheap routes (health,
readiness, metrics) are never refused. Every refusal is counted by code in ``intake_shed_total``, and its
Retry-After is spread (the base value plus up to as much again, at random) so that shed clients do not return
all at once.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

from aiohttp import web

from ingest.errors import error_response
from ingest.ratelimit import RateLimiter
from intake.kafka import RecordSink
from intake.metrics import Metrics
from intake.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_EXEMPT = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})


class Admission:
    """Holds the counters and buckets; :meth:`middleware` applies them."""

    def __init__(self, settings: Settings, metrics: Metrics, client_of: Callable[[web.Request], str]) -> None:
        h = settings.http
        self.limit = h.max_in_flight
        self.limit_bytes = h.max_in_flight_bytes
        self.max_pending_produce = h.max_pending_produce
        self.in_flight = 0
        self.in_flight_bytes = 0
        self._max_body = settings.limits.max_body_bytes
        self._retry_after_s = h.retry_after_s
        self._metrics = metrics
        self._client_of = client_of
        self._trust_forwarded = h.trust_forwarded
        self.by_address = RateLimiter(h.rate_per_address, h.burst_per_address, h.rate_limit_keys)
        self.by_client = RateLimiter(h.rate_per_client, h.burst_per_client, 10_000)
        self.sink: RecordSink | None = None

    def source_address(self, request: web.Request) -> str:
        """The client's address: the TCP peer, or X-Forwarded-For's last hop behind a trusted proxy."""
        if self._trust_forwarded:
            forwarded = request.headers.get("X-Forwarded-For", "")
            hops = [h.strip() for h in forwarded.split(",") if h.strip()]
            if hops:
                return hops[-1][:64]
        return request.remote or "unknown"

    def _shed(self, code: str, request: web.Request, retry_after_s: int, spread: bool = True) -> web.Response:
        """Refuse; ``spread`` adds up to 100 % random jitter so shed clients do not come back in lockstep."""
        self._metrics.shed.labels(code).inc()
        if spread:
            retry_after_s += random.randint(0, retry_after_s)  # noqa: S311 - jitter, not crypto
        return error_response(code, request, retry_after_s=retry_after_s)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in _EXEMPT or request.path.startswith("/demo/"):
            return await handler(request)
        wait = max(self.by_client.check(self._client_of(request)), self.by_address.check(self.source_address(request)))
        if wait:
            return self._shed("rate_limited", request, wait, spread=False)
        if request.method != "POST":  # status polls are cheap reads: bounded by the rate limits alone
            return await handler(request)
        size = (
            request.content_length
            if request.content_length is not None
            else (self._max_body if request.body_exists else 0)
        )
        size = min(size, self._max_body)
        if self.in_flight >= self.limit or self.in_flight_bytes + size > self.limit_bytes:
            return self._shed("overloaded", request, self._retry_after_s)
        if self.sink is not None and self.sink.pending() >= self.max_pending_produce:
            return self._shed("overloaded", request, self._retry_after_s)
        self.in_flight += 1
        self.in_flight_bytes += size
        self._metrics.http_in_flight.inc()
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1
            self.in_flight_bytes -= size
            self._metrics.http_in_flight.dec()
