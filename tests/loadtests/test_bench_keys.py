"""The key-create benchmark's paced mode: one create per tick, in order, and an idle tick that creates nothing."""

from __future__ import annotations

import time

from loadtests.bench_keys import _paced_ms


class _Keys:
    def __init__(self) -> None:
        self.created: list[tuple[str, float]] = []

    async def get_or_create(self, applicant: str) -> bytes:
        self.created.append((applicant, time.monotonic()))
        return b"k" * 32


async def test_paced_creates_one_key_per_tick_in_order_at_the_rate() -> None:
    keys = _Keys()
    names = [f"{i:064x}" for i in range(6)]
    ms = await _paced_ms(keys, names, rate=50.0)  # type: ignore[arg-type]
    assert [name for name, _ in keys.created] == names
    times = [at for _, at in keys.created]
    assert times[-1] - times[0] >= 5 / 50.0 - 0.005  # paced: six ticks 20 ms apart, not back to back
    assert ms >= 0.0


async def test_an_idle_tick_creates_nothing() -> None:
    started = time.monotonic()
    assert await _paced_ms(None, ["a", "b", "c"], rate=100.0) >= 0.0
    assert time.monotonic() - started >= 2 / 100.0 - 0.005
