"""One way to run a background task for the duration of a block, and one way to repeat a step periodically."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def background(coro: Coroutine[Any, Any, None], name: str | None = None) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``coro`` as a task while the block runs; on exit cancel it and wait until it has ended."""
    task = asyncio.create_task(coro, name=name)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def repeat(
    step: Callable[[], Awaitable[object]],
    interval_s: float,
    on_error: Callable[[Exception], None],
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run ``step`` every ``interval_s`` (start to start) until cancelled; an exception of a step is handed to
    ``on_error`` (count it, log it) and the next step runs on time. Never raises but the cancellation."""
    while True:
        started = clock()
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            on_error(exc)
        await asyncio.sleep(max(0.0, interval_s - (clock() - started)))
