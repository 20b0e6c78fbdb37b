"""``start_client``: a start cancelled half-way is let end, then the client is stopped; no connection stays open.

The unit tests use a fake client; the integration tests use a real aiokafka consumer against the local stack's
Kafka, with the bootstrap's metadata answer held back (as a broker that has just come back holds it) so that the
caller's timeout fires while the request is out. The first of those shows the leak ``start_client`` exists for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.conn import AIOKafkaConnection

from intake.kafka import connection_config, start_client
from intake.settings import Settings


class FakeClient:
    """A client whose ``start()`` takes ``start_s`` (or raises ``error``); records what happened, in order."""

    def __init__(self, start_s: float, error: Exception | None = None) -> None:
        self.start_s = start_s
        self.error = error
        self.events: list[str] = []

    async def start(self) -> None:
        try:
            await asyncio.sleep(self.start_s)
        except asyncio.CancelledError:
            self.events.append("start cancelled")
            raise
        if self.error is not None:
            self.events.append("start failed")
            raise self.error
        self.events.append("started")

    async def stop(self) -> None:
        self.events.append("stopped")


async def test_a_start_that_ends_returns_and_stops_nothing() -> None:
    client = FakeClient(0.01)
    await start_client(client.start(), client.stop, settle_s=1)
    assert client.events == ["started"]


async def test_a_start_that_fails_raises_its_error() -> None:
    client = FakeClient(0.01, error=OSError("refused"))
    with pytest.raises(OSError, match="refused"):
        await start_client(client.start(), client.stop, settle_s=1)
    assert client.events == ["start failed"]


async def test_a_timeout_lets_the_start_end_then_stops_and_raises_timeout() -> None:
    client = FakeClient(0.3)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await start_client(client.start(), client.stop, settle_s=5)
    assert client.events == ["started", "stopped"]


async def test_a_start_that_fails_after_the_cancellation_is_retrieved_and_stopped() -> None:
    client = FakeClient(0.2, error=OSError("late"))
    task = asyncio.create_task(start_client(client.start(), client.stop, settle_s=5))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.events == ["start failed", "stopped"]  # and no "exception was never retrieved" (an error here)


async def test_a_start_longer_than_settle_s_is_cancelled_then_stopped() -> None:
    client = FakeClient(10)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await start_client(client.start(), client.stop, settle_s=0.1)
    assert client.events == ["start cancelled", "stopped"]


async def test_a_second_cancellation_cancels_the_start_and_still_stops() -> None:
    client = FakeClient(10)
    task = asyncio.create_task(start_client(client.start(), client.stop, settle_s=30))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.sleep(0.05)
    assert client.events == []  # the start runs on through the first cancellation
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.events == ["start cancelled", "stopped"]


HELD_S = 0.5
"""How long the bootstrap's metadata answer is held back; the caller's timeout fires well within it."""


@pytest.fixture
async def bootstrap_connections(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[AIOKafkaConnection]]:
    """The connections whose first metadata request was made, each answered ``HELD_S`` late (a broker that has
    just come back). Holding them here, the test sees whether they were closed without waiting for the garbage
    collector; any left open are closed after the test."""
    send = AIOKafkaConnection.send
    seen: list[AIOKafkaConnection] = []

    def late_send(self: AIOKafkaConnection, request: Any, *args: Any, **kwargs: Any) -> Any:
        if type(request).__name__.startswith("MetadataRequest") and all(conn is not self for conn in seen):
            seen.append(self)

            async def later() -> Any:
                await asyncio.sleep(HELD_S)
                return await send(self, request, *args, **kwargs)

            return later()
        return send(self, request, *args, **kwargs)

    monkeypatch.setattr(AIOKafkaConnection, "send", late_send)
    yield seen
    for conn in seen:
        conn.close()
    await asyncio.sleep(0.05)  # the transports' close callbacks run


async def timed_out(start: Awaitable[None]) -> bool:
    """Whether ``start`` timed out within 0.1 s."""
    try:
        async with asyncio.timeout(0.1):
            await start
    except TimeoutError:
        return True
    return False


@pytest.mark.integration
async def test_aiokafka_leaves_the_bootstrap_connection_of_a_start_cut_short_open(
    live_settings: Settings, bootstrap_connections: list[AIOKafkaConnection]
) -> None:
    """The upstream behaviour ``start_client`` guards against (aiokafka <0.15): if this fails, aiokafka fixed it."""
    consumer = AIOKafkaConsumer(**connection_config(live_settings), group_id=None)
    assert await timed_out(consumer.start())
    await consumer.stop()
    assert [conn.connected() for conn in bootstrap_connections] == [True]


@pytest.mark.integration
async def test_start_client_cut_short_leaves_no_connection_open(
    live_settings: Settings, bootstrap_connections: list[AIOKafkaConnection]
) -> None:
    consumer = AIOKafkaConsumer(**connection_config(live_settings), group_id=None)
    assert await timed_out(start_client(consumer.start(), consumer.stop, settle_s=10))
    await consumer.stop()
    assert bootstrap_connections
    assert [conn.connected() for conn in bootstrap_connections] == [False] * len(bootstrap_connections)
