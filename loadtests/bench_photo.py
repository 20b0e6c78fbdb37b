"""Benchmark the KTP photo pipeline against a plain full Pillow decode of the same file (not a test).

Run from the repository root: ``OMP_NUM_THREADS=1 .venv/bin/python -m loadtests.bench_photo [--rounds N]``. For a
12 MP and a 2 MP synthetic JPEG it prints the median time of ``normalise_photo`` and of
``Image.open(...).load()``, their ratio (target: <= 1.0 for 12 MP) and images/second on one core; ``--stages``
adds the CPU time of each stage of the pipeline.

Two baselines. The *full decode* is Pillow as it comes: every decode of a 12 MP photo takes ~48 MB of fresh
memory (Pillow keeps no freed blocks by default, and glibc hands that much back to the kernel at once), so a
large part of its time is the kernel zeroing ~11,700 new pages. The *warm decode* is the same call with Pillow's
block cache on (``Image.core.set_blocks_max``): the decoding alone. Both ratios are printed, with the minor page
faults per call; the pipeline's buffers stay under glibc's trim threshold, so in steady state it faults about
never.

Fairness: all three are timed on the same bytes and compared as medians, each in processes of its own
(``--block`` timed calls after ``_WARMUP`` untimed ones, then the process exits), the processes of the three
taking turns over ``--rounds`` rounds. So drift on a shared machine hits all alike, and each is timed in its own
steady state: in one process the heap left by one function decides whether the next one's memory is fresh
(measured: the same full decode at ~11,700 page faults a call after itself and at 0 after the pipeline). OpenCV
is pinned to one thread (its pthreads pool ignores ``OMP_NUM_THREADS``), so the pipeline, like the baseline, uses
one core. The ratio of the median CPU times (``time.process_time``) is printed too: other processes disturb it
less.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
from PIL import Image
from PIL import _imaging as pillow_core

from consumers.image_process import prepare_image_process
from processors.photo import PhotoPolicy, quality
from processors.photo.decode import decode, read_header
from processors.photo.detect import find_card
from processors.photo.edges import refine_outline, search_radius
from processors.photo.encode import encode_jpeg
from processors.photo.pipeline import normalise_photo
from processors.photo.scale import first_scale
from processors.photo.warp import card_region, warp_card
from tests.corpus import ktp


@dataclass(frozen=True)
class Timing:
    """Medians over the timed calls of one function: wall and CPU seconds, minor page faults."""

    wall: float
    cpu: float
    faults: float


def _timed(fn: Callable[[], object]) -> tuple[float, float, int]:
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


_WARMUP = 2
"""Untimed calls at the start of each measuring process."""
_WARM_BLOCKS = 8
"""Pillow blocks kept for reuse by the warm decode (16 MB each by default: a 12 MP RGBX image takes 3)."""
KINDS = ("full", "warm", "pipeline")


def _function(kind: str, data: bytes) -> Callable[[], object]:
    """What is timed: Pillow's full decode as it comes, the same with its block cache on, or the pipeline."""
    if kind == "pipeline":  # set up as the consumer's pool sets up its processes
        prepare_image_process()
        return functools.partial(normalise_photo, data, PhotoPolicy())
    pillow_core.set_blocks_max(_WARM_BLOCKS if kind == "warm" else 0)
    return lambda: Image.open(io.BytesIO(data)).load()


def measure_in_process(kind: str, data: bytes, calls: int) -> list[tuple[float, float, int]]:
    """(wall s, cpu s, minor page faults) of ``calls`` timed calls of ``kind`` in this process, after
    ``_WARMUP`` untimed ones. Meant for a process of its own (see the module docstring)."""
    cv2.setNumThreads(1)
    fn = _function(kind, data)
    for _ in range(_WARMUP):
        fn()
    return [_timed(fn) for _ in range(calls)]


def _in_child(kind: str, path: Path, calls: int) -> list[tuple[float, float, int]]:
    cmd = [sys.executable, "-m", "loadtests.bench_photo", "--child", kind, "--file", str(path), "--block", str(calls)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return [(float(a), float(b), int(c)) for a, b, c in json.loads(out.stdout)]


def compare(data: bytes, rounds: int, block: int) -> dict[str, Timing]:
    """Medians per kind over ``rounds`` rounds, each running one process per kind (in a rotating order)."""
    runs: dict[str, list[tuple[float, float, int]]] = {kind: [] for kind in KINDS}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "photo.jpg"
        path.write_bytes(data)
        for r in range(rounds):
            for kind in KINDS[r % len(KINDS) :] + KINDS[: r % len(KINDS)]:
                runs[kind].extend(_in_child(kind, path, block))
    return {kind: Timing(*(statistics.median(t[i] for t in times) for i in range(3))) for kind, times in runs.items()}


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
    """Time both sizes and print two lines each (and, with ``--stages``, where the time goes)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of one measuring process per function")
    parser.add_argument("--block", type=int, default=6, help="timed calls in each measuring process")
    parser.add_argument("--stages", action="store_true", help="also print the CPU time of each stage")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_in_process(args.child, args.file.read_bytes(), max(1, args.block))))
        return
    cv2.setNumThreads(1)
    for label, (w, h) in (("12MP", (4000, 3000)), ("2MP", (1632, 1224))):
        data = ktp.encode(ktp.scene(ktp.SceneSpec(width=w, height=h, angle_deg=6.0, seed=1)), quality=92)
        t = compare(data, max(1, args.rounds), max(1, args.block))
        full, warm, pipe = t["full"], t["warm"], t["pipeline"]
        print(
            f"{label} {w}x{h} {len(data) / 1e6:.2f} MB: pipeline {pipe.wall * 1e3:.1f} ms, full decode "
            f"{full.wall * 1e3:.1f} ms, ratio {pipe.wall / full.wall:.2f} (cpu {pipe.cpu / full.cpu:.2f}), "
            f"{1 / pipe.wall:.1f} images/s/core\n"
            f"  warm decode {warm.wall * 1e3:.1f} ms, ratio {pipe.wall / warm.wall:.2f} "
            f"(cpu {pipe.cpu / warm.cpu:.2f}); page faults per call: full decode {full.faults:.0f}, "
            f"warm decode {warm.faults:.0f}, pipeline {pipe.faults:.0f}",
            flush=True,
        )
        if args.stages:
            parts = stages(data, PhotoPolicy(), max(1, args.rounds * args.block))
            print("  stages (cpu ms): " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items()), flush=True)


if __name__ == "__main__":
    main()
