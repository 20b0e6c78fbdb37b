"""Set-up of a process of the image pool: one thread for OpenCV, and a heap that keeps its large buffers.

A photo's work allocates a few buffers of several MB (the decoded working image is 9 MB for a 12 MP photo at
half scale); :func:`intake.heap.tune_heap` keeps them in the heap instead of ``mmap``-ing fresh pages per photo
(measured: 4-5 ms of a ~50 ms photo). The cost: each pool process keeps the heap of its largest photo (bounded
by ``PhotoPolicy.max_pixels``; ~100 MB measured on the hostile corpus).

A pool process ignores SIGINT: Ctrl-C reaches the whole process group, and the pool's processes are stopped by
their parent (``pool.shutdown``), not by a ``KeyboardInterrupt`` traceback each.

Contract: :func:`prepare_image_process` never raises; on a C library without ``mallopt`` (not glibc) the heap
is left as it is.
"""

from __future__ import annotations

import logging
import signal

from intake.heap import tune_heap
from processors.photo.pipeline import one_thread_per_process

__all__ = ["prepare_image_process", "tune_heap"]

log = logging.getLogger("intake.consumers")


def prepare_image_process() -> None:
    """Initializer of the image pool's processes (``ProcessPoolExecutor(initializer=...)``): SIGINT ignored (the
    parent stops the pool), one thread for OpenCV, the heap tuned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    one_thread_per_process()
    if not tune_heap():
        log.info("heap left untuned: no mallopt in this C library")
