"""Benchmark the KTP photo pipeline against a plain full Pillow decode of the same file (not a test).

Run from the repository root: ``.venv/bin/python -m loadtests.bench_photo [--repeat N]``. For a 12 MP and a 2 MP
synthetic JPEG it prints the median time of ``normalise_photo`` and of ``Image.open(...).load()``, their ratio
(target: <= 1.0 for 12 MP) and images/second on one core.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

from PIL import Image

from processors.photo import PhotoPolicy, normalise_photo
from tests.corpus import ktp


def _median_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Time both sizes and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    policy = PhotoPolicy()
    for label, (w, h) in (("12MP", (4000, 3000)), ("2MP", (1632, 1224))):
        data = ktp.encode(ktp.scene(ktp.SceneSpec(width=w, height=h, angle_deg=6.0, seed=1)), quality=92)

        def full_decode(data: bytes = data) -> None:
            Image.open(io.BytesIO(data)).load()

        def pipeline(data: bytes = data) -> None:
            normalise_photo(data, policy)

        t_decode = _median_seconds(full_decode, args.repeat)
        t_pipe = _median_seconds(pipeline, args.repeat)
        print(
            f"{label} {w}x{h} {len(data) / 1e6:.2f} MB: pipeline {t_pipe * 1e3:.1f} ms, full decode "
            f"{t_decode * 1e3:.1f} ms, ratio {t_pipe / t_decode:.2f}, {1 / t_pipe:.1f} images/s/core"
        )


if __name__ == "__main__":
    main()
