"""Set-up of a process of the image pool: one thread for OpenCV, and a heap that keeps its large buffers.

A photo's work allocates a few buffers of several MB (the decoded working image is 9 MB for a 12 MP photo at
half scale). With glibc's defaults such a buffer is ``mmap``-ed afresh for every photo and handed back on
``free``, so the kernel zeroes ~2,300 new pages per photo (measured: 4-5 ms of a ~50 ms photo). Raising the
``mmap`` threshold to glibc's maximum and the trim threshold above it makes those buffers come from the heap and
stay there, to be reused by the next photo. The cost: each pool process keeps the heap of its largest photo
(bounded by ``PhotoPolicy.max_pixels``; ~100 MB measured on the hostile corpus).

A pool process ignores SIGINT: Ctrl-C reaches the whole process group, and the pool's processes are stopped by
their parent (``pool.shutdown``), not by a ``KeyboardInterrupt`` traceback each.

Contract: :func:`prepare_image_process` never raises; on a C library without ``mallopt`` (not glibc) the heap
is left as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import signal

from processors.photo import one_thread_per_process

log = logging.getLogger("intake.consumers")

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
"""Allocations at least this large are ``mmap``-ed (glibc's largest accepted value on 64-bit systems)."""
TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024
"""Free memory at the top of the heap beyond this is handed back to the kernel."""


def tune_heap() -> bool:
    """Apply the two ``mallopt`` settings above to this process; False when the C library has no ``mallopt``."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


def prepare_image_process() -> None:
    """Initializer of the image pool's processes (``ProcessPoolExecutor(initializer=...)``): SIGINT ignored (the
    parent stops the pool), one thread for OpenCV, the heap tuned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    one_thread_per_process()
    if not tune_heap():
        log.info("heap left untuned: no mallopt in this C library")
