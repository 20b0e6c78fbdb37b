"""The CPU benchmark's summary: the cost of sealing is each sealed API against its plaintext twin, and the working
tree against an earlier checkout, same run."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from loadtests.bench_cpu import (
    CpuBench,
    parse_args,
    render,
    sleep_cost_ms,
    summarise,
    thread_sleeps,
    variants_of,
)


def _row(variant: str, cpu_ms: float, round_no: int = 0) -> dict[str, float | str | int]:
    figures = dict.fromkeys(
        ("p99_ms", "shed_p99_ms", "generator_cpu_ms_per_req", "stack_cpu_ms_per_req", "generator_cores"), 1.0
    )
    return {
        "variant": variant,
        "round": round_no,
        "server_cpu_ms_per_req": cpu_ms,
        "server_net_ms_per_req": cpu_ms - 0.1,
        "server_idle_cores": 0.01,
        "server_faults_per_req": 3.0,
        "server_sleeps_per_req": 4.0,
        "sleep_cost_ms": 0.05,
        "others_cores": 1.0,
        **figures,
    }


def test_sealed_over_plain_is_the_median_ratio_of_the_twins(tmp_path: Path) -> None:
    rows = [_row("bare", 1.0), _row("api-confluent", 3.3), _row("api-confluent-plain", 3.0)]
    rows += [_row("api-confluent", 3.1, 1), _row("api-confluent-plain", 3.0, 1)]
    summary = summarise(rows)
    assert abs(summary["api-confluent"]["sealed_over_plain"] - 3.2 / 3.0) < 1e-9
    assert "sealed_over_plain" not in summary["api-confluent-plain"]
    args: argparse.Namespace = parse_args(["--plain", "--out", str(tmp_path)])
    assert args.plain
    text = render(summary, rows, tmp_path, args)
    assert "| api-confluent | 1.067 |" in text and "<= 1.10" in text
    assert "| 3 | 4.0 | 0.20 |" in text  # faults, sleeps and sleeps × their cost per request
    assert "costs 0.050 ms CPU on this machine" in text


def test_sleeps_are_counted_over_every_thread_of_the_tree() -> None:
    """A child whose second thread blocked 30 times and still lives: the count includes it (the process's own
    ``status`` counts only the main thread)."""
    code = (
        "import sys, threading, time\n"
        "slept = threading.Event()\n"
        "def work():\n"
        "    for _ in range(30): time.sleep(0.002)\n"
        "    slept.set(); sys.stdin.read()\n"
        "threading.Thread(target=work).start(); slept.wait(); print('slept', flush=True)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "slept\n"
        by_kind = thread_sleeps([child.pid])
        assert sum(by_kind.values()) >= 30
        assert by_kind["python"] >= 30  # the sleeping thread is not the main one, which waits on the event
        assert set(by_kind) == {"main", "python"}
    finally:
        child.communicate("")
    assert sleep_cost_ms(cycles=5, sleep_s=0.001) > 0


def test_before_variants_mirror_the_api_variants(tmp_path: Path) -> None:
    args = parse_args(["--producers", "confluent", "--only-plain", "--before", str(tmp_path), "--out", str(tmp_path)])
    assert variants_of(args) == ["bare", "api-confluent-plain-before", "api-confluent-plain"]
    args = parse_args(["--producers", "confluent", "--plain", "--shed", "--bare-tuned", "--out", str(tmp_path)])
    assert variants_of(args) == [
        "bare",
        "bare-tuned",
        "api-confluent",
        "api-confluent-plain",
        "bare-refuse",
        "shed",
        "shed-linger",
    ]


def test_now_over_before_is_the_working_tree_against_the_checkout(tmp_path: Path) -> None:
    rows = [_row("bare", 1.0), _row("api-confluent-plain-before", 3.0), _row("api-confluent-plain", 2.4)]
    summary = summarise(rows)
    assert abs(summary["api-confluent-plain"]["now_over_before"] - 0.8) < 1e-9
    text = render(summary, rows, tmp_path, parse_args(["--only-plain", "--out", str(tmp_path)]))
    assert "| api-confluent-plain | 3.00 | 2.40 | 0.800 |" in text


def test_rounds_show_their_spread_and_their_own_ratio(tmp_path: Path) -> None:
    rows = [_row("bare", 1.0, 0), _row("api-confluent", 4.0, 0), _row("bare", 1.5, 1), _row("api-confluent", 3.0, 1)]
    rows.append(_row("api-confluent", 5.0, 2))  # a round whose bare reader is missing has no ratio of its own
    f = summarise(rows)["api-confluent"]
    assert (f["server_cpu_min"], f["server_cpu_max"]) == (3.0, 5.0)
    assert (f["round_ratio_min"], f["round_ratio_max"]) == (0.25, 0.5)
    text = render(summarise(rows), rows, tmp_path, parse_args(["--out", str(tmp_path)]))
    assert "| api-confluent | 4.00 | 3.00-5.00 | 0.31 | 0.25-0.50 |" in text


def test_the_namespace_has_what_the_load_benchmark_reads(tmp_path: Path) -> None:
    args = parse_args(["--api-env", "INTAKE_HTTP_FIRST_READ_BYTES=262144", "--out", str(tmp_path)])
    assert args.generators == 1 and args.pin == []
    assert args.api_env == ["INTAKE_HTTP_FIRST_READ_BYTES=262144"]


def test_an_earlier_checkout_runs_its_own_modules_first(tmp_path: Path) -> None:
    b = CpuBench(parse_args(["--before", str(tmp_path), "--out", str(tmp_path)]))
    assert b.api_argv()[1:] == ["-m", "cli", "serve"]
    b.tree = tmp_path  # as variant() sets it for a -before variant
    assert b.api_argv()[1:] == ["-P", "-m", "intake.cli", "serve"]  # older than the cli package (1b30694)
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "__main__.py").write_text("")
    assert b.api_argv()[1:] == ["-P", "-m", "cli", "serve"]


def test_lag_admission_is_off_unless_the_run_sets_it(tmp_path: Path) -> None:
    off = CpuBench(parse_args(["--out", str(tmp_path)]))
    assert off.api_env("cpu", 8081)["INTAKE_MAX_LOOP_LAG_MS"] == "0"
    on = CpuBench(parse_args(["--api-env", "INTAKE_MAX_LOOP_LAG_MS=10", "--out", str(tmp_path)]))
    assert on.api_env("cpu", 8081)["INTAKE_MAX_LOOP_LAG_MS"] == "10"  # the service's default: production's timers
