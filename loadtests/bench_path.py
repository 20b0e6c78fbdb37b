"""CPU of the API's data path per upload, in process: this tree against an earlier checkout, alternating.

The path is what the upload handler does with a 500 KB-class upload between reading it and handing the record to
Kafka, without HTTP, the key store or Kafka: :func:`ingest.upload.read_upload` of a body with a Content-Length
(read whole and split in memory), :func:`processors.photo.precheck.precheck`,
:func:`processors.registration.parse_registration` and :func:`ingest.records.submission_record` sealed with a data
key. The process runs with the API's heap settings (:func:`intake.heap.tune_heap`). Two conditions:

* ``warm``: uploads back to back (what a busy process sees);
* ``cold``: before each upload, a 48 MB walk empties the CPU caches (what a process that slept between uploads
  sees: at a few dozen uploads per second, Kafka, MinIO and the generator run on the same cores in between).

Each tree runs in its own process (``python -P`` with ``PYTHONPATH`` set to the tree, as ``bench_cpu --before``),
on the same bodies (seeded), in alternating order; prints µs of CPU per upload for each tree, per round and the
median, and now ÷ before.

    .venv/bin/python -m loadtests.bench_path --before ../intake-<commit> [--uploads 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from datetime import UTC, date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONDITIONS = ("warm", "cold")
_WALK_BYTES = 48 << 20
"""Bytes written before each ``cold`` upload: several times any last-level cache of the machines we run on."""


async def cpu_us_per_upload(uploads: int, cold: bool, seed: int = 3) -> float:
    """µs of this process's CPU per upload taken through the data path (see the module docstring); the service's
    modules are whatever this process imports (the tree on its ``PYTHONPATH``)."""
    # imported from the tree under test (the child's PYTHONPATH); bench_form's request of a body held in memory, fed
    # in asyncio's read size, is the same in every checkout that has this benchmark's path
    from ingest.records import submission_record  # noqa: PLC0415
    from ingest.upload import read_upload  # noqa: PLC0415
    from loadtests.bench_form import _request  # noqa: PLC0415
    from loadtests.payloads import BodyFactory, fresh_registration, photo_set  # noqa: PLC0415
    from processors.photo.precheck import precheck  # noqa: PLC0415
    from processors.registration import parse_registration  # noqa: PLC0415
    from tests.support import unit_settings  # noqa: PLC0415

    settings, key, on = unit_settings(), bytes(range(32)), date(2026, 1, 1)
    received = datetime(2026, 1, 1, tzinfo=UTC)
    photos = photo_set(["500k"])["500k"]
    rng, factory = random.Random(seed), BodyFactory(boundary="----prakerja-bench-path")
    bodies = [factory.body(fresh_registration(rng), photos[i % len(photos)]) for i in range(uploads + 5)]
    walk = bytearray(_WALK_BYTES)
    spent = 0.0
    for n, body in enumerate(bodies):
        request = _request(body, factory.content_type, settings.limits, declared=True)
        if cold:
            walk[::64] = bytes(_WALK_BYTES // 64)
        started = time.process_time()
        upload = await read_upload(request, settings.limits, 5.0)
        precheck(upload.photo, settings.photo)
        registration = parse_registration(upload.registration, on=on)
        submission_record(
            settings, registration, upload.photo, submission_id="a" * 26, client_id="web", received_at=received, dek=key
        )
        if n >= 5:  # the first five warm the imports and the heap
            spent += time.process_time() - started
    return spent / uploads * 1e6


def _child(args: argparse.Namespace) -> None:
    from intake.heap import tune_heap  # noqa: PLC0415

    tune_heap()
    print(json.dumps(asyncio.run(cpu_us_per_upload(args.uploads, args.child == "cold"))))


def _measure(tree: Path, condition: str, uploads: int) -> float:
    """Run this script under ``tree``'s modules in a fresh process; its µs per upload."""
    from loadtests.procs import run_in_tree  # noqa: PLC0415 - the parent's; a child imports the tree's modules

    figure = run_in_tree(Path(__file__).resolve(), tree, ["--child", condition, "--uploads", str(uploads)])
    return float(figure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="checkout of an earlier commit (default: this tree, twice)")
    parser.add_argument("--uploads", type=int, default=300, help="uploads per tree, condition and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternating the order of the trees")
    parser.add_argument("--child", choices=CONDITIONS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return
    trees = {"now": REPO, "before": (args.before or REPO).resolve()}
    figures: dict[tuple[str, str], list[float]] = {(t, c): [] for t in trees for c in CONDITIONS}
    for round_ in range(args.rounds):
        order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
        for condition in CONDITIONS:
            for tree in order:
                figures[tree, condition].append(_measure(trees[tree], condition, args.uploads))
            print(
                f"round {round_} {condition}: " + ", ".join(f"{t} {figures[t, condition][-1]:.1f} µs" for t in trees),
                flush=True,
            )
    print(f"\nµs CPU per upload of the data path, median of {args.rounds} rounds of {args.uploads} (500k photos):\n")
    print("| condition | before | now | now ÷ before | within each round: median (min-max) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for condition in CONDITIONS:
        before, now = figures["before", condition], figures["now", condition]
        paired = [n / b for n, b in zip(now, before, strict=True)]  # the machine's speed drifts between rounds
        print(
            f"| {condition} | {statistics.median(before):.1f} | {statistics.median(now):.1f} | "
            f"{statistics.median(now) / statistics.median(before):.3f} | "
            f"{statistics.median(paired):.3f} ({min(paired):.3f}-{max(paired):.3f}) |"
        )
    print(f"\nbefore: {trees['before']}\nnow: {trees['now']}")


if __name__ == "__main__":
    main()
