"""Admission control: what a process takes on at once is bounded, and the excess is refused fast.

Two middlewares, both before the body is read:

* :meth:`Admission.gate`, second in the chain (right after the error/metrics wrapper, before CORS, signature checks
  and rate limits): an upload (POST) is refused with 503 ``overloaded`` when the process is full, i.e. when
  1. uploads in flight reach ``INTAKE_MAX_IN_FLIGHT``, or their bytes ``INTAKE_MAX_IN_FLIGHT_BYTES`` (declared
     Content-Length, or the body limit when undeclared),
  2. records awaiting Kafka's acknowledgement reach ``INTAKE_MAX_PENDING_PRODUCE`` (accepting more would only make
     every client wait past its timeout), or
  3. the event loop runs late by more than ``INTAKE_MAX_LOOP_LAG_MS`` (10 ms; 0 turns it off; :class:`LoopLag`):
     the CPU is saturated, so an upload admitted now would wait behind the work already taken on, and every
     answer, a refusal too, waits for the loop. The counts above bound memory and Kafka's queue; this bounds the
     CPU's: with the counts alone, an overloaded process kept 64 uploads in flight and each loop iteration served
     them all, so its refusals took 50-100 ms and it accepted fewer uploads, not more.
  The refusal costs a few dictionary look-ups: no signature is verified and no body byte is read. Until this
  gate admits an upload its connection is read in small reads (``INTAKE_HTTP_FIRST_READ_BYTES``,
  :mod:`ingest.reads`), so little of a refused body leaves the kernel; admission widens them.
* :meth:`Admission.middleware`, after authentication: per-client and per-source-address token buckets, 429
  ``rate_limited`` with the wait in Retry-After. Status reads (GET) are bounded by these alone.

A refusal of a request whose body is still unread says ``Connection: close``; the server then closes the
connection without reading the rest (``INTAKE_LINGER_S`` = 0, :mod:`ingest.server`), so refusing a 500 KB upload
costs no more than refusing an empty one. Which middleware applies to a request is its route's :class:`Admit`
class, declared in the route table (:mod:`ingest.routes`): uploads pass both, status reads the rate limits only,
cheap routes (health, readiness, metrics, the spec, the demo page) neither. Every refusal is counted by code in
``intake_shed_total``, and its Retry-After is spread (the base value plus up to as much again, at random) so that
shed clients do not return all at once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from enum import StrEnum

from aiohttp import web

from ingest.errors import error_response
from ingest.ratelimit import RateLimiter
from ingest.reads import widen_reads
from intake.kafka import RecordSink
from intake.metrics import Metrics
from intake.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Admit(StrEnum):
    """A route's admission class: which of the two middlewares apply to it."""

    UPLOAD = "upload"
    """The gate (503 ``overloaded`` past the process's capacity) and the rate limits (429 ``rate_limited``)."""
    LIMITED = "limited"
    """The rate limits only. Also the class of a request that matches no route (its 404/405 is rate limited)."""
    EXEMPT = "exempt"
    """Neither: cheap answers that probes and scrapers must always get."""

    @property
    def codes(self) -> tuple[str, ...]:
        """The reason codes the admission middlewares can answer a route of this class with."""
        return {Admit.UPLOAD: ("rate_limited", "overloaded"), Admit.LIMITED: ("rate_limited",)}.get(self, ())


ADMISSION_LAG_INTERVAL_S = 0.02
"""How often the loop's lag is sampled while it decides admission (``INTAKE_MAX_LOOP_LAG_MS`` set) and requests
come: a timer every 20 ms, whose overshoot is the sample."""
IDLE_LAG_INTERVAL_S = 1.0
"""How often it is sampled otherwise: for the gauge alone (lag admission off, ``INTAKE_MAX_LOOP_LAG_MS=0``), and
while no request came for ``IDLE_AFTER_S``. Every wake-up costs CPU: the 20 ms timer woke an idle API 50 times a
second, which then used 18 ms of CPU per second against 8 with this (``loadtests/README.md``, twelfth pass)."""
IDLE_AFTER_S = 1.0
"""Seconds without a request after which the probe slows to ``IDLE_LAG_INTERVAL_S``; the next request speeds it up
again (:meth:`LoopLag.poke`)."""


class LoopLag:
    """How late the event loop runs: :meth:`run` sleeps ``interval_s`` again and again and records by how much
    each wake-up overshot. ``lag_s`` is the larger of the last sample and the time the current sleep is already
    overdue, so a loop that stalls is seen while it stalls, not only afterwards.

    Each sleep is a timer callback that schedules the next one, not a task awaiting ``asyncio.sleep``: no future
    and no task step per wake-up. A loop woken 50 times a second by the probe alone spent 10.7 ms of CPU per
    second with a sleeping task and 6.5-6.9 with the callback (this machine).

    Only while requests come: admission calls :meth:`poke` for each one, and a probe that saw none for ``idle_after_s``
    sleeps ``idle_interval_s`` instead, until the next. Under load it samples exactly as a fixed 20 ms timer did, so
    the overload figures of the sixth pass hold; an idle API is woken once a second. (Sampling with a timer due at
    once, armed by each request, was tried and not kept: it changed what admission sees under overload, and this
    machine's figures were too noisy to show that it did no harm; ``loadtests/README.md``, twelfth pass.)
    Not thread-safe: the loop's thread only.
    """

    def __init__(
        self,
        interval_s: float = ADMISSION_LAG_INTERVAL_S,
        idle_interval_s: float = IDLE_LAG_INTERVAL_S,
        idle_after_s: float = IDLE_AFTER_S,
    ) -> None:
        self.interval_s = interval_s
        self.idle_interval_s = idle_interval_s
        self.idle_after_s = idle_after_s
        self.idle = True  # sleeping idle_interval_s
        self._poked = False  # a request came since the last wake-up
        self._quiet_since = 0.0
        self._last_s = 0.0
        self._due = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: Callable[[], None] | None = None
        self._pending: asyncio.TimerHandle | None = None

    @property
    def lag_s(self) -> float:
        if self._loop is None:
            return 0.0
        return max(self._last_s, self._loop.time() - self._due)

    def poke(self) -> None:
        """A request came: sample every ``interval_s`` from now until ``idle_after_s`` pass without one. An
        attribute store, plus one timer rescheduled when the probe was idle; nothing while :meth:`run` is not
        running."""
        self._poked = True
        if self.idle and self._loop is not None and self._wake is not None:
            self.idle = False
            if self._pending is not None:
                self._pending.cancel()
            self._due = self._loop.time() + self.interval_s
            self._pending = self._loop.call_at(self._due, self._wake)

    async def run(self, on_sample: Callable[[float], None] | None = None) -> None:
        """Sample until cancelled; ``on_sample(lag_s)`` after each wake-up (e.g. a gauge). The next sleep is
        scheduled before ``on_sample`` runs, so a callback that raises (the loop's exception handler reports it)
        never stops the sampling; cancelling cancels the pending sleep."""
        self._loop = loop = asyncio.get_running_loop()

        def wake() -> None:
            now = loop.time()
            self._last_s = max(0.0, now - self._due)
            if self._poked:
                self._poked, self._quiet_since = False, now
            elif not self.idle and now - self._quiet_since >= self.idle_after_s:
                self.idle = True
            self._due = now + (self.idle_interval_s if self.idle else self.interval_s)
            self._pending = loop.call_at(self._due, wake)
            if on_sample is not None:
                on_sample(self._last_s)

        self._wake = wake
        self.idle, self._quiet_since = not self._poked, loop.time()
        self._due = loop.time() + (self.idle_interval_s if self.idle else self.interval_s)
        self._pending = loop.call_at(self._due, wake)
        try:
            await loop.create_future()  # never set: the callbacks sample until the task is cancelled
        finally:
            if self._pending is not None:
                self._pending.cancel()
            self._loop = self._wake = self._pending = None


class Admission:
    """Holds the counters and buckets; :meth:`gate` and :meth:`middleware` apply them."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        client_of: Callable[[web.Request], str],
        admit_of: Callable[[web.Request], Admit],
    ) -> None:
        """``client_of`` names the authenticated client (per-client limits); ``admit_of`` gives the class of the
        request's route (:func:`ingest.routes.admit_of`)."""
        h = settings.http
        self.limit = h.max_in_flight
        self.limit_bytes = h.max_in_flight_bytes
        self.max_pending_produce = h.max_pending_produce
        self.max_lag_s = h.max_loop_lag_ms / 1000.0
        self.in_flight = 0
        self.in_flight_bytes = 0
        self._max_body = settings.limits.max_body_bytes
        self._read_bytes = h.read_bytes
        self._retry_after_s = h.retry_after_s
        self._metrics = metrics
        self._client_of = client_of
        self._admit_of = admit_of
        self._trust_forwarded = h.trust_forwarded
        self.by_address = RateLimiter(h.rate_per_address, h.burst_per_address, h.rate_limit_keys)
        self.by_client = RateLimiter(h.rate_per_client, h.burst_per_client, 10_000)
        self.sink: RecordSink | None = None
        self.lag = LoopLag()  # slow until requests come, and for good with lag admission off (never poked)

    def source_address(self, request: web.Request) -> str:
        """The client's address: the TCP peer, or X-Forwarded-For's last hop behind a trusted proxy."""
        if self._trust_forwarded:
            forwarded = request.headers.get("X-Forwarded-For", "")
            hops = [h.strip() for h in forwarded.split(",") if h.strip()]
            if hops:
                return hops[-1][:64]
        return request.remote or "unknown"

    def _shed(self, code: str, request: web.Request, retry_after_s: int, spread: bool = True) -> web.Response:
        """Refuse; ``spread`` adds up to 100 % random jitter so shed clients do not come back in lockstep. The
        connection is closed after the answer when the body was not read (the rest of it is never read)."""
        self._metrics.shed.labels(code).inc()
        if spread:
            retry_after_s += random.randint(0, retry_after_s)  # noqa: S311 - jitter, not crypto
        response = error_response(code, request, retry_after_s=retry_after_s)
        if request.body_exists:
            response.force_close()
        return response

    def overloaded(self, size: int) -> bool:
        """Whether an upload of ``size`` bytes must be refused now (see the module's list)."""
        return (
            self.in_flight >= self.limit
            or self.in_flight_bytes + size > self.limit_bytes
            or (self.sink is not None and self.sink.pending() >= self.max_pending_produce)
            or (self.max_lag_s > 0 and self.lag.lag_s > self.max_lag_s)
        )

    @web.middleware
    async def gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Refuse uploads past the process's capacity (503), before anything else is spent on them."""
        admit = self._admit_of(request)
        if admit is not Admit.UPLOAD:
            if admit is Admit.LIMITED and self.max_lag_s > 0:
                self.lag.poke()  # status reads come: the loop's lag is sampled every 20 ms
            return await handler(request)
        if self.max_lag_s > 0:
            self.lag.poke()  # uploads come: the loop's lag is sampled every 20 ms (not for probes and scrapes)
        size = (
            request.content_length
            if request.content_length is not None
            else (self._max_body if request.body_exists else 0)
        )
        size = min(size, self._max_body)
        if self.overloaded(size):
            return self._shed("overloaded", request, self._retry_after_s)
        self.in_flight += 1
        self.in_flight_bytes += size
        self._metrics.http_in_flight.inc()
        widen_reads(request.transport, self._read_bytes)  # admitted: read its body in large reads
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1
            self.in_flight_bytes -= size
            self._metrics.http_in_flight.dec()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Per-client and per-address rate limits (429), after authentication names the client."""
        if self._admit_of(request) is Admit.EXEMPT:
            return await handler(request)
        wait = max(self.by_client.check(self._client_of(request)), self.by_address.check(self.source_address(request)))
        if wait:
            return self._shed("rate_limited", request, wait, spread=False)
        return await handler(request)
