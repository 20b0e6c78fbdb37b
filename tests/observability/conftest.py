"""Fixtures of the observability tests, and a session-wide capture of every log record for the NIK scan.

Every record logged by the ``intake.*`` loggers (at DEBUG and up) and by anything else (at the root logger's
level) during the whole session is written, unmasked, to a temporary file: message, extra fields and
traceback. ``test_zz_log_scan.py`` (moved to the end of the run) fails on any valid NIK in it or in
``.stack/logs/*``. The capture is unmasked on purpose: :mod:`intake.logs` masks 16-digit runs as a last line
of defence, the scan checks that no code path hands a NIK to a logger in the first place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from consumers.runner import run_consumer
from ingest.app import create_app
from intake.kafka import ensure_topics
from intake.metrics import Metrics
from intake.settings import Settings
from loadtests.procs import free_port
from tests.support import api_client

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_SH = REPO / "deploy" / "local" / "prometheus.sh"


@dataclass(frozen=True)
class LogCapture:
    path: Path
    handlers: list[tuple[logging.Logger, logging.Handler]]
    previous_level: int


LOG_CAPTURE = pytest.StashKey[LogCapture]()
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class RawFormatter(logging.Formatter):
    """Everything a record carries, unmasked, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [record.levelname, record.name, record.getMessage()]
        parts += [f"{k}={v!r}" for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")]
        if record.exc_info and record.exc_info[0] is not None:
            parts.append(self.formatException(record.exc_info))
        if record.stack_info:
            parts.append(record.stack_info)
        return " | ".join(parts).replace("\n", "\\n")


def log_capture_path(config: pytest.Config) -> Path | None:
    """The session's captured log file, when this conftest was loaded."""
    capture = config.stash.get(LOG_CAPTURE, None)
    return capture.path if capture else None


class _NotIntake(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "intake" or record.name.startswith("intake."))


def pytest_configure(config: pytest.Config) -> None:
    """Capture to a file: ``intake.*`` through a handler on the ``intake`` logger (it survives
    ``configure_logging``, which replaces the root's handlers), everything else through the root logger."""
    fd, name = tempfile.mkstemp(prefix="intake-test-logs-", suffix=".log")
    os.close(fd)
    handlers: list[tuple[logging.Logger, logging.Handler]] = []
    intake_logger = logging.getLogger("intake")
    for logger, flt in ((intake_logger, None), (logging.getLogger(), _NotIntake())):
        handler = logging.FileHandler(name, encoding="utf-8")
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(RawFormatter())
        if flt is not None:
            handler.addFilter(flt)
        logger.addHandler(handler)
        handlers.append((logger, handler))
    previous = intake_logger.level
    if intake_logger.getEffectiveLevel() > logging.DEBUG:
        intake_logger.setLevel(logging.DEBUG)
    config.stash[LOG_CAPTURE] = LogCapture(Path(name), handlers, previous)


def pytest_unconfigure(config: pytest.Config) -> None:
    capture = config.stash.get(LOG_CAPTURE, None)
    if capture is None:
        return
    for logger, handler in capture.handlers:
        logger.removeHandler(handler)
        handler.close()
    logging.getLogger("intake").setLevel(capture.previous_level)
    capture.path.unlink(missing_ok=True)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The log scan runs last, after every other test of the session logged what it logs."""
    last = [i for i in items if i.nodeid.startswith("tests/observability/test_zz_log_scan.py")]
    if last:
        items[:] = [i for i in items if i not in last] + last


# --------------------------------------------------------------------------------------------- integration
async def wait_for(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str, every_s: float = 0.25) -> None:
    """Poll ``check`` until true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(every_s)


@pytest.fixture
async def isolated(live_settings: Settings) -> Settings:
    """The live stack with topics and a group of this test alone (counters move only for its records)."""
    run = uuid.uuid4().hex[:8]
    s = replace(
        live_settings,
        kafka=replace(live_settings.kafka, topic_prefix=f"obs-{run}", group_id=f"obs-{run}-workers"),
        consumer=replace(live_settings.consumer, pool_workers=1, metrics_port=0),
    )
    try:
        await asyncio.wait_for(ensure_topics(s), 60)
    except Exception as exc:
        pytest.fail(f"Kafka at {s.kafka.bootstrap} is not reachable: {exc!r}")
    return s


@contextlib.asynccontextmanager
async def running_api(settings: Settings, metrics: Metrics) -> AsyncIterator[TestClient[Any, Any]]:
    """The real API (real producer and store) on an ephemeral port of 127.0.0.1, ready."""
    client: TestClient[Any, Any] = api_client(create_app(settings, metrics=metrics), settings, host="127.0.0.1")
    await client.start_server()
    try:

        async def ready() -> bool:
            return (await client.get("/readyz")).status == 200

        await wait_for(ready, 30, "API readiness")
        yield client
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def running_consumer(settings: Settings, metrics: Metrics) -> AsyncIterator[None]:
    """One consumer group member, stopped (batch finished and committed) on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_consumer(settings, stop, metrics))
    try:
        yield
        if task.done():
            task.result()  # raise what killed it
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


@dataclass
class PrometheusServer:
    """Our own Prometheus, started by deploy/local/prometheus.sh for this test (own port, folder and log)."""

    url: str
    env: dict[str, str]

    def start(self, *targets: str) -> None:
        run = self._script("start", *targets, timeout=300)
        if run.returncode != 0:
            pytest.fail(f"prometheus.sh start failed ({run.returncode}):\n{run.stderr}")

    def stop(self) -> None:
        self._script("stop", timeout=60)

    def _script(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        cmd = [str(PROMETHEUS_SH), *args]
        return subprocess.run(cmd, check=False, env=self.env, capture_output=True, text=True, timeout=timeout)

    async def query(self, session: aiohttp.ClientSession, promql: str) -> list[dict[str, Any]]:
        """An instant query; fails the test on a PromQL error."""
        async with session.get(f"{self.url}/api/v1/query", params={"query": promql}) as resp:
            body = await resp.json()
        if body.get("status") != "success":
            pytest.fail(f"PromQL {promql!r} failed: {body}")
        return list(body["data"]["result"])

    async def value(self, session: aiohttp.ClientSession, promql: str) -> float | None:
        """The single value of an instant query, or None when it returns nothing."""
        result = await self.query(session, promql)
        return float(result[0]["value"][1]) if result else None


@pytest.fixture
def prometheus(live_settings: Settings) -> Iterator[PrometheusServer]:
    """A Prometheus scraping every second, in .stack/prometheus-test/, stopped afterwards."""
    stack = Path(os.environ.get("INTAKE_STACK_DIR", REPO / ".stack"))
    port = free_port()
    env = {
        **os.environ,
        "INTAKE_PROMETHEUS_PORT": str(port),
        "INTAKE_PROMETHEUS_DIR": str(stack / "prometheus-test"),
        "INTAKE_PROMETHEUS_LOG": str(stack / "logs" / "prometheus-test.log"),
        "INTAKE_PROMETHEUS_INTERVAL": "1s",
    }
    server = PrometheusServer(f"http://127.0.0.1:{port}", env)
    server.stop()  # a leftover of an interrupted run
    shutil.rmtree(stack / "prometheus-test" / "data", ignore_errors=True)
    try:
        yield server
    finally:
        server.stop()
