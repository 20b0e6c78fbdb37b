"""CPU of an idle API process: this tree against an earlier checkout, alternating.

An API process between waves, or one that only answers status polls, still wakes: the event-loop lag probe (every
second once no request came for a second; until the twelfth pass every 20 ms under the default lag admission,
``INTAKE_MAX_LOOP_LAG_MS`` > 0), the status view's fetches, the queue watermark's sampling, librdkafka's threads.
Each wake-up costs CPU that no request pays for. This script starts ``intake serve`` (``python -P -m cli serve``
with ``PYTHONPATH`` set to the tree, as ``bench_cpu --before``) on the environment's stack, waits until it is ready
and has settled, and measures, over ``--seconds`` with no request at all, its CPU in ms per second and its threads'
sleeps per second (blocking waits: ``main`` is the event loop, ``python`` its other Python threads, ``rdk:*``
librdkafka's), in alternating rounds. It prints the medians and now ÷ before within each round.

Needs the stack of the environment (``deploy/local/stack.sh start``, then ``eval "$(deploy/local/stack.sh env)"``).

    .venv/bin/python -m loadtests.bench_idle [--before DIR] [--seconds 30] [--rounds 3] [--api-env INTAKE_X=V ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from loadtests.bench_cpu import thread_sleeps
from loadtests.procs import REPO, Procs, cli_argv, free_port, tree_cpu_s, wait_http

SETTLE_S = 3.0
"""Seconds after readiness before measuring: the start-up's last fetches and metadata requests are over."""


def serve_env(tree: Path, port: int, api_env: list[str]) -> dict[str, str]:
    """The environment of ``intake serve`` from ``tree`` on ``port``, with the run's settings (``INTAKE_X=V``)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "INTAKE_HTTP_PORT": str(port)}
    env.update(kv.partition("=")[::2] for kv in api_env)
    return env


def idle_figures(procs: Procs, name: str, tree: Path, seconds: float, api_env: list[str]) -> dict[str, float]:
    """{"cpu_ms_per_s": …, "sleeps_per_s:<kind>": …} of one idle API process from ``tree``. Raises RuntimeError
    when it does not become ready within a minute."""
    port = free_port()
    child = procs.start(name, cli_argv("serve", tree), serve_env(tree, port, api_env))
    try:
        if not wait_http(f"http://127.0.0.1:{port}/readyz", 60):
            raise RuntimeError(f"{name}: the API did not become ready (see its log in {procs.log_dir})")
        time.sleep(SETTLE_S)
        pid = child.popen.pid
        cpu0, sleeps0, t0 = tree_cpu_s(pid), thread_sleeps([pid]), time.monotonic()
        time.sleep(seconds)
        cpu1, sleeps1, t1 = tree_cpu_s(pid), thread_sleeps([pid]), time.monotonic()
    finally:
        procs.stop(child)
    out = {"cpu_ms_per_s": (cpu1 - cpu0) / (t1 - t0) * 1e3}
    out.update({f"sleeps_per_s:{k}": (sleeps1[k] - sleeps0.get(k, 0)) / (t1 - t0) for k in sleeps1})
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", type=Path, help="checkout of an earlier commit (default: this tree only)")
    p.add_argument("--seconds", type=float, default=30.0, help="seconds of idleness measured per process")
    p.add_argument("--rounds", type=int, default=3, help="rounds, alternating the order of the trees")
    p.add_argument("--api-env", action="append", default=[], metavar="INTAKE_X=V", help="a setting for every API")
    args = p.parse_args(argv)
    if any("=" not in kv or not kv.startswith("INTAKE_") for kv in args.api_env):
        p.error("--api-env takes INTAKE_X=V")
    trees = {"now": REPO, **({"before": args.before.resolve()} if args.before else {})}
    figures: dict[str, list[dict[str, float]]] = {t: [] for t in trees}
    procs = Procs(Path(tempfile.mkdtemp(prefix="bench-idle-")))
    try:
        for round_ in range(args.rounds):
            for tree in list(trees) if round_ % 2 == 0 else list(reversed(trees)):
                figures[tree].append(idle_figures(procs, f"r{round_}-{tree}", trees[tree], args.seconds, args.api_env))
            print(
                f"round {round_}: " + ", ".join(f"{t} {f[-1]['cpu_ms_per_s']:.2f} ms/s" for t, f in figures.items()),
                flush=True,
            )
    finally:
        procs.stop_all()
    kinds = sorted({k for rows in figures.values() for r in rows for k in r if k.startswith("sleeps_per_s:")})
    settings = ", ".join(args.api_env) or "the service's defaults"
    print(f"\nIdle API process, {args.seconds:g} s per round, medians of {args.rounds} rounds ({settings}):\n")
    print("| tree | CPU ms/s | " + " | ".join(f"sleeps/s {k.split(':', 1)[1]}" for k in kinds) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in kinds) + " |")
    for tree, rows in figures.items():
        cells = [statistics.median(r.get(k, 0.0) for r in rows) for k in ("cpu_ms_per_s", *kinds)]
        print(f"| {tree} | " + " | ".join(f"{c:.2f}" if i == 0 else f"{c:.1f}" for i, c in enumerate(cells)) + " |")
    if args.before:
        paired = [n["cpu_ms_per_s"] / b["cpu_ms_per_s"] for n, b in zip(figures["now"], figures["before"], strict=True)]
        print(f"\nnow ÷ before, CPU, within each round: median {statistics.median(paired):.3f} "
              f"({min(paired):.3f}-{max(paired):.3f})\nbefore: {trees['before']}")  # fmt: skip


if __name__ == "__main__":
    main()
