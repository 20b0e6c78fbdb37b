"""``runs_to_the_end``: a producer's teardown finishes even when its caller is cancelled meanwhile."""

from __future__ import annotations

import asyncio

import pytest

from intake.kafka.kept import runs_to_the_end


class Teardown:
    """A teardown of a few steps, each awaiting ``gate`` (released by the test), that records how far it got."""

    def __init__(self, fail: bool = False) -> None:
        self.gate = asyncio.Event()
        self.steps: list[str] = []
        self.fail = fail

    @runs_to_the_end
    async def run(self, label: str) -> str:
        self.steps.append("flush")
        await self.gate.wait()
        self.steps.append("close")
        if self.fail:
            raise RuntimeError("close failed")
        return label


async def test_returns_what_the_teardown_returns() -> None:
    teardown = Teardown()
    teardown.gate.set()
    assert await teardown.run("done") == "done"
    assert teardown.steps == ["flush", "close"]


async def test_raises_the_teardowns_error_when_nobody_cancelled() -> None:
    teardown = Teardown(fail=True)
    teardown.gate.set()
    with pytest.raises(RuntimeError, match="close failed"):
        await teardown.run("x")


@pytest.mark.parametrize("cancels", [1, 2])
async def test_a_cancelled_caller_waits_for_the_end_then_is_cancelled(cancels: int) -> None:
    teardown = Teardown()
    caller = asyncio.create_task(teardown.run("x"))
    await asyncio.sleep(0.01)
    assert teardown.steps == ["flush"]
    for _ in range(cancels):
        caller.cancel()
        await asyncio.sleep(0.01)
        assert not caller.done() and teardown.steps == ["flush"]  # still waiting for the teardown
    teardown.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert teardown.steps == ["flush", "close"]


async def test_a_cancelled_caller_is_cancelled_even_when_the_teardown_failed() -> None:
    teardown = Teardown(fail=True)
    caller = asyncio.create_task(teardown.run("x"))
    await asyncio.sleep(0.01)
    caller.cancel()
    await asyncio.sleep(0.01)
    teardown.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert teardown.steps == ["flush", "close"]


async def test_a_timeout_around_the_caller_still_reads_as_a_timeout() -> None:
    teardown = Teardown()
    asyncio.get_running_loop().call_later(0.05, teardown.gate.set)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await teardown.run("x")
    assert teardown.steps == ["flush", "close"]
