"""The consumer's process pool (spawned workers, one per core, each doing its image work on one thread), and its
start-up probe of the object store."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from dataclasses import replace

import cv2
import pytest

from consumers import runner
from consumers.runner import build_pool, pool_size, run_consumer
from intake.storage import MemoryStore, StoreUnfit
from tests.store_doubles import IgnoresIfNoneMatch, IgnoresSse
from tests.support import unit_settings


def test_pool_workers_run_opencv_on_one_thread() -> None:
    settings = unit_settings()
    settings = replace(settings, consumer=replace(settings.consumer, pool_workers=2))
    pool = build_pool(settings)
    try:
        assert pool_size(settings) == 2
        assert [pool.submit(cv2.getNumThreads).result(timeout=60) for _ in range(4)] == [1, 1, 1, 1]
    finally:
        pool.shutdown(wait=True)


_CTRL_C = textwrap.dedent(
    """
    import os, signal
    from dataclasses import replace
    from consumers.runner import build_pool
    from tests.support import unit_settings

    settings = unit_settings()
    pool = build_pool(replace(settings, consumer=replace(settings.consumer, pool_workers=2)))
    assert [pool.submit(os.getpid).result(timeout=60) for _ in range(4)]
    for pid in list(pool._processes):
        os.kill(pid, signal.SIGINT)
    print(sorted(pool.submit(abs, -n).result(timeout=60) for n in range(4)))
    pool.shutdown(wait=True)
    """
)


def test_pool_processes_ignore_ctrl_c_and_are_stopped_by_their_parent() -> None:
    """Ctrl-C reaches every process of the group: the pool's processes survive it without a traceback (the
    parent, which handles it, shuts the pool down)."""
    proc = subprocess.run([sys.executable, "-c", _CTRL_C], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[0, 1, 2, 3]"
    assert "KeyboardInterrupt" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("store", "names"),
    [
        (IgnoresIfNoneMatch(), "If-None-Match"),
        (IgnoresSse("intake-ktp"), "'intake-ktp'"),
        (IgnoresSse("intake-status"), "'intake-status'"),
    ],
    ids=["ignores-if-none-match", "photos-unencrypted", "status-unencrypted"],
)
async def test_consumer_refuses_to_start_on_an_unfit_store(
    store: MemoryStore, names: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe runs before the consumer connects to Kafka (none is needed here) and nothing is consumed."""
    monkeypatch.setattr(runner, "build_store", lambda settings: store)
    settings = unit_settings()
    settings = replace(settings, consumer=replace(settings.consumer, pool_workers=1, metrics_port=0))
    with pytest.raises(StoreUnfit, match=names):
        await run_consumer(settings, asyncio.Event())
