"""Benchmark the KTP photo pipeline against a plain full Pillow decode of the same file (not a test).

Run from the repository root: ``OMP_NUM_THREADS=1 .venv/bin/python -m loadtests.bench_photo [--repeat N]``. For a
12 MP and a 2 MP synthetic JPEG it prints the median time of ``normalise_photo`` and of
``Image.open(...).load()``, their ratio (target: <= 1.0 for 12 MP) and images/second on one core; ``--stages``
adds the CPU time of each stage of the pipeline.

Fairness: both are timed on the same bytes, in one process, and compared as medians. They alternate in blocks
(``--block`` calls, each block after an untimed warm-up call), so drift on a shared machine hits both alike while
each is timed in its own steady state: alternating call by call makes each pay for the other's heap (the
pipeline went from ~0 to ~6,000 minor page faults per call, the full decode from ~8,000 to ~1,600). OpenCV is
pinned to one thread (its pthreads pool ignores ``OMP_NUM_THREADS``), so the pipeline, like the baseline, uses
one core. The ratio of the median CPU times (``time.process_time``) is printed too: other processes disturb it
less.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

import cv2
from PIL import Image

from processors.photo import PhotoPolicy, normalise_photo, quality
from processors.photo.decode import decode, read_header
from processors.photo.detect import find_card
from processors.photo.edges import refine_outline, search_radius
from processors.photo.encode import encode_jpeg
from processors.photo.scale import first_scale
from processors.photo.warp import card_region, warp_card
from tests.corpus import ktp


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _alternating(
    first: Callable[[], object], second: Callable[[], object], repeat: int, block: int
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Median (wall, cpu) seconds of ``repeat`` timed calls of each function, alternating in blocks of ``block``
    timed calls, each block preceded by one untimed warm-up call."""
    runs: tuple[list[tuple[float, float]], list[tuple[float, float]]] = ([], [])
    while len(runs[1]) < repeat:
        for slot, fn in ((0, first), (1, second)):
            fn()
            runs[slot].extend(_timed(fn) for _ in range(min(block, repeat - len(runs[slot]))))

    def medians(times: list[tuple[float, float]]) -> tuple[float, float]:
        return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)

    return medians(runs[0]), medians(runs[1])


def stages(data: bytes, policy: PhotoPolicy, repeat: int) -> dict[str, float]:
    """Median CPU milliseconds of each stage of the pipeline on ``data`` (a JPEG whose card is found), in order."""
    header = read_header(data, "JPEG", policy)
    working = decode(data, header, first_scale(header.long_side, policy))
    detection = find_card(working, policy)
    assert detection is not None, "the benchmark photo must contain a card"
    radius = search_radius(detection.pixel)
    outline = refine_outline(working, detection.quad, radius)
    region, quad = card_region(working, outline)
    card, _ = warp_card(region, quad, policy.card_output)
    steps: dict[str, Callable[[], object]] = {
        "decode (reduced)": lambda: decode(data, header, first_scale(header.long_side, policy)),
        "detect": lambda: find_card(working, policy),
        "refine outline": lambda: refine_outline(working, detection.quad, radius),
        "card region": lambda: card_region(working, outline),
        "warp": lambda: warp_card(region, quad, policy.card_output),
        "measure": lambda: quality.measure(card, policy),
        "encode card": lambda: encode_jpeg(card, policy.jpeg_quality),
        "encode frame": lambda: encode_jpeg(working, policy.jpeg_quality),
    }
    out: dict[str, float] = {}
    for name, step in steps.items():
        step()
        out[name] = statistics.median(_timed(step)[1] for _ in range(repeat)) * 1e3
    return out


def main() -> None:
    """Time both sizes and print one line each (and, with ``--stages``, where the time goes)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=30, help="timed calls of each function")
    parser.add_argument("--block", type=int, default=6, help="timed calls in a row before switching")
    parser.add_argument("--stages", action="store_true", help="also print the CPU time of each stage")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    policy = PhotoPolicy()
    for label, (w, h) in (("12MP", (4000, 3000)), ("2MP", (1632, 1224))):
        data = ktp.encode(ktp.scene(ktp.SceneSpec(width=w, height=h, angle_deg=6.0, seed=1)), quality=92)

        def full_decode(data: bytes = data) -> None:
            Image.open(io.BytesIO(data)).load()

        def pipeline(data: bytes = data) -> None:
            normalise_photo(data, policy)

        (t_decode, c_decode), (t_pipe, c_pipe) = _alternating(
            full_decode, pipeline, max(1, args.repeat), max(1, args.block)
        )
        print(
            f"{label} {w}x{h} {len(data) / 1e6:.2f} MB: pipeline {t_pipe * 1e3:.1f} ms, full decode "
            f"{t_decode * 1e3:.1f} ms, ratio {t_pipe / t_decode:.2f} (cpu {c_pipe / c_decode:.2f}), "
            f"{1 / t_pipe:.1f} images/s/core"
        )
        if args.stages:
            parts = stages(data, policy, max(1, args.repeat))
            print("  stages (cpu ms): " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items()))


if __name__ == "__main__":
    main()
