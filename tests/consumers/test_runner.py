"""The consumer's process pool: spawned workers, one per core, each doing its image work on one thread."""

from __future__ import annotations

from dataclasses import replace

import cv2

from consumers.runner import build_pool, pool_size
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
