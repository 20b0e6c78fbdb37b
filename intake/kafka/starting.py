"""Starting an aiokafka client so that a cancelled start leaves no connection open.

aiokafka's ``bootstrap`` (run by every client's ``start()``) opens a connection, sends a metadata request on it and
closes it when the answer or a Kafka error comes back; a cancellation while that request is out (a caller's
``asyncio.timeout``, an owner shutting down) skips the close, and the connection, held by no one, stays open until the
garbage collector finds it ("Unclosed AIOKafkaConnection"). This happens when a broker has just come back: it accepts
connections before it answers. :func:`start_client` therefore never cancels a start half-way: the start runs in a
task of its own, shielded from the caller's cancellation, and is left to end by itself (its requests are bounded
by the client's request timeout) before the client is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


async def start_client(start: Awaitable[None], stop: Callable[[], Awaitable[None]], *, settle_s: float) -> None:
    """Await ``start`` (a client's ``start()``); return when it did, raise what it raised.

    If the caller is cancelled meanwhile (by its own timeout, or its owner closing), the start is not interrupted:
    this waits up to ``settle_s`` for it to end by itself, then awaits ``stop()`` (exceptions suppressed), then
    re-raises the cancellation, so an ``asyncio.timeout`` around the call still raises ``TimeoutError``. Only a start
    still running after ``settle_s``, or a second cancellation during that wait, is cancelled outright. ``stop`` must
    be safe to call again (aiokafka's ``stop()``/``close()`` are); the caller may still stop the client itself.
    """
    task = asyncio.ensure_future(start)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        try:
            await asyncio.wait({task}, timeout=settle_s)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})  # its cancellation unwinds before the client is stopped
            _retrieve(task)
            with contextlib.suppress(Exception):
                await stop()
        raise


def _retrieve(task: asyncio.Future[None]) -> None:
    """Mark the outcome of an ended start as seen (asyncio logs an exception nobody retrieved)."""
    if not task.cancelled():
        task.exception()
