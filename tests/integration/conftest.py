"""Integration fixtures: the real Kafka and S3 servers of deploy/local/stack.sh, the real API and consumers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from consumers.runner import run_consumer
from ingest.app import create_app
from intake.kafka import ensure_topics
from intake.settings import Settings
from intake.status import StatusRecord, status_key
from intake.storage import MinioStore
from tests.support import api_client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def topics_ready(live_settings: Settings) -> Settings:
    """Creates this session's topics on the real broker; fails if Kafka does not answer."""
    try:
        asyncio.run(asyncio.wait_for(ensure_topics(live_settings), 60))
    except Exception as exc:
        pytest.fail(f"Kafka at {live_settings.kafka.bootstrap} is not reachable: {exc!r}")
    return live_settings


STACK = Path(__file__).resolve().parents[2] / "deploy" / "local" / "stack.sh"


def stack(action: str) -> None:
    """Run ``deploy/local/stack.sh ACTION`` (start/stop Kafka or an S3 server for fault tests); blocks until done."""
    subprocess.run([str(STACK), action], check=True, capture_output=True, timeout=180)


async def outage(service: str, seconds: float) -> None:
    """Stop ``service`` (kafka, minio or seaweedfs), keep it down ``seconds``, start it and wait until healthy."""
    await asyncio.to_thread(stack, f"stop-{service}")
    await asyncio.sleep(seconds)
    await asyncio.to_thread(stack, f"start-{service}")


async def wait_until(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    """Poll ``check`` until true; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.2)


TEARDOWN_S = 150.0
"""Longest a fixture's teardown may take before it fails naming what it waits for (below pytest's timeout, so a
hang is reported with the stacks of every asyncio task instead of only the threads')."""


async def bounded_teardown(closing: Awaitable[None], what: str) -> None:
    """Await ``closing``; past :data:`TEARDOWN_S` print every asyncio task's stack and fail naming ``what``.

    Then collect garbage while the loop still runs, so that a client left unclosed is reported (warnings are
    errors) at the teardown of the test that left it, and not in whichever later test the collector happens to run.
    """
    task = asyncio.ensure_future(closing)
    done, _ = await asyncio.wait({task}, timeout=TEARDOWN_S)
    if task in done:
        task.result()
        gc.collect()
        return
    for pending in asyncio.all_tasks():
        if pending is not asyncio.current_task():
            print(f"--- task {pending.get_name()} ({pending.get_coro()!r})")
            pending.print_stack(limit=30)
    task.cancel()
    pytest.fail(f"{what} did not end within {TEARDOWN_S:.0f} s (every asyncio task's stack is printed above)")


async def started_api(
    settings: Settings, *, scope: str = "submit", actor: str | None = None, ready_within_s: float = 60
) -> TestClient[Any, Any]:
    """The real API (real producer and store) on an ephemeral port, returned once ``/readyz`` says Kafka answered;
    its client signs with the first key of ``scope`` (as ``actor``). The caller closes it."""
    client: TestClient[Any, Any] = api_client(create_app(settings), settings, scope=scope, actor=actor)
    await client.start_server()

    async def ready() -> bool:
        return (await client.get("/readyz")).status == 200

    await wait_until(ready, ready_within_s, "API readiness")
    return client


@pytest.fixture
async def api(topics_ready: Settings) -> AsyncIterator[TestClient[Any, Any]]:
    """The real API on an ephemeral port, ready when Kafka answered."""
    client = await started_api(topics_ready)
    yield client
    await bounded_teardown(client.close(), "closing the API")


class Consumers:
    """Starts and stops in-process consumer group members (each with its own pool and clients)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.members: list[tuple[asyncio.Task[None], asyncio.Event]] = []

    def start(self) -> int:
        stop = asyncio.Event()
        self.members.append((asyncio.create_task(run_consumer(self.settings, stop)), stop))
        return len(self.members) - 1

    async def stop(self, index: int) -> None:
        task, stop = self.members[index]
        stop.set()
        await asyncio.wait_for(task, 60)

    async def crash(self, index: int) -> None:
        """Cancel abruptly: the batch under way is neither finished nor committed."""
        task, _ = self.members[index]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def close(self) -> None:
        for task, stop in self.members:
            stop.set()
            if not task.done():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, 60)


@pytest.fixture
async def consumers(topics_ready: Settings) -> AsyncIterator[Consumers]:
    group = Consumers(topics_ready)
    yield group
    await bounded_teardown(group.close(), "stopping the consumers")


async def read_status(store: MinioStore, settings: Settings, submission_id: str) -> StatusRecord | None:
    stored = await store.get(settings.s3.bucket_status, status_key(submission_id))
    return StatusRecord.from_json(stored.data) if stored else None
