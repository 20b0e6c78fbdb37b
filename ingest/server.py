"""Running the API: one process with a graceful shutdown, or several sharing the port.

:func:`serve` blocks until SIGINT/SIGTERM, then: readiness turns false (``/readyz`` answers 503), after
``INTAKE_DRAIN_DELAY_S`` the listener closes, requests in flight finish (up to the produce timeout plus a
margin), and the cleanup contexts flush and stop the Kafka producer. Connections that do not deliver a complete
request head within ``INTAKE_HEADER_TIMEOUT_S`` are closed (aiohttp's keep-alive timer also guards the first
request), and bodies are bounded by ``INTAKE_BODY_READ_TIMEOUT_S`` in the handler: slow clients cannot pin a
worker.

:func:`serve_processes` starts N such processes bound with ``SO_REUSEPORT`` so every core serves, sets up a
shared Prometheus multiprocess directory when none is given, forwards SIGINT/SIGTERM and waits for them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ingest.app import create_app
from ingest.keys import LIFECYCLE
from ingest.reads import first_reads
from intake.heap import tune_heap
from intake.metrics import MULTIPROC_ENV, mark_process_dead
from intake.settings import Settings


class FirstReadsSite(web.TCPSite):
    """A TCP site whose connections start with small reads (:mod:`ingest.reads`): ``first_read_bytes`` per
    ``recv`` until the admission gate widens them."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, first_read_bytes: int, **kw: Any) -> None:
        super().__init__(runner, host, port, **kw)
        self._first_read_bytes = first_read_bytes

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner (what TCPSite.start does first);
        # the rest is TCPSite.start with the protocol factory wrapped: keep it in step with aiohttp's
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            first_reads(server, self._first_read_bytes),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port  # what TCPSite.start does last


async def serve(
    settings: Settings,
    stop: asyncio.Event | None = None,
    app_factory: Callable[[Settings], web.Application] = create_app,
) -> None:
    """Serve until ``stop`` is set (default: until SIGINT/SIGTERM), then shut down gracefully.

    The process's heap keeps its large buffers (:func:`intake.heap.tune_heap`): every upload passes through
    buffers of its body's size, which glibc would otherwise ``mmap`` and zero afresh each time."""
    tune_heap()
    app = app_factory(settings)
    h = settings.http
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        keepalive_timeout=h.header_timeout_s,
        lingering_time=h.linger_s,
        shutdown_timeout=h.produce_timeout_s + 5,
        max_line_size=h.max_header_bytes,
        max_field_size=h.max_header_bytes,
        max_headers=h.max_headers,
    )
    await runner.setup()
    site = FirstReadsSite(
        runner, h.host, h.port, reuse_port=True, backlog=h.backlog, first_read_bytes=h.first_read_bytes
    )
    await site.start()
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        app[LIFECYCLE].draining = True
        await asyncio.sleep(h.drain_delay_s)  # let load balancers see readiness turn false
    finally:
        await runner.cleanup()
        mark_process_dead()  # multiprocess metrics: this process's live gauges stop counting


def process_count(settings: Settings) -> int:
    """API processes to run: the setting, or one per core when it is 0."""
    return settings.http.processes or (os.cpu_count() or 1)


def serve_processes(settings: Settings) -> int:
    """Run ``process_count`` API processes on one port until SIGINT/SIGTERM; returns the worst exit code."""
    count = process_count(settings)
    env = dict(os.environ, INTAKE_HTTP_PROCESSES="1")
    own_dir = None
    if not env.get(MULTIPROC_ENV):
        own_dir = tempfile.mkdtemp(prefix="intake-metrics-")
        env[MULTIPROC_ENV] = own_dir
    cmd = [sys.executable, "-m", "cli", "serve"]
    children = [subprocess.Popen(cmd, env=env) for _ in range(count)]  # noqa: S603 - our own interpreter and module
    stopping = False

    def forward(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    try:
        while not stopping and all(c.poll() is None for c in children):
            time.sleep(0.5)  # supervision poll; a signal interrupts it
        if not stopping:  # a child died: stop the others too
            forward(signal.SIGTERM, None)
        codes = []
        for child in children:
            try:
                codes.append(child.wait(timeout=settings.http.produce_timeout_s + settings.http.drain_delay_s + 15))
            except subprocess.TimeoutExpired:
                child.kill()
                codes.append(child.wait())
            if own_dir is None:
                mark_process_dead(child.pid)
    finally:
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)
    return max((abs(c) for c in codes), default=0) if not stopping else 0
