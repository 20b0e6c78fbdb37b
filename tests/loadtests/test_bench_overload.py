"""bench_overload's command line and report (the runs themselves need the stack: see loadtests/README.md)."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import pytest

from loadtests import bench_overload, outcomes
from loadtests.bench_overload import OverloadBench, parse_args, parse_variant, per_second, render, summarise
from loadtests.procs import Procs
from loadtests.samplers import BacklogRow
from tests.support import unit_settings


def test_a_variant_is_a_name_and_intake_settings() -> None:
    assert parse_variant("default:") == ("default", {})
    assert parse_variant("lag:INTAKE_MAX_LOOP_LAG_MS=10,INTAKE_MAX_IN_FLIGHT=32") == (
        "lag",
        {"INTAKE_MAX_LOOP_LAG_MS": "10", "INTAKE_MAX_IN_FLIGHT": "32"},
    )
    for bad in ("default", ":INTAKE_X=1", "x:PATH=/bin", "x:INTAKE_X"):
        with pytest.raises(ValueError, match="--variant"):
            parse_variant(bad)


def test_the_command_line_defaults_to_the_defaults_and_refuses_twins(tmp_path: object) -> None:
    args = parse_args(["--rates", "100,250", "--out", str(tmp_path)])
    assert args.rates == [100.0, 250.0] and args.variants == [("default", {})]
    assert args.generator == "go"
    with pytest.raises(SystemExit):
        parse_args(["--rates", "1", "--variant", "a:", "--variant", "a:INTAKE_X=1"])
    with pytest.raises(SystemExit):
        parse_args(["--rates", "1", "--variant", "a:PATH=x"])


def test_before_runs_every_variant_from_an_earlier_checkout_too(tmp_path: Path) -> None:
    args = parse_args(["--rates", "1", "--variant", "a:INTAKE_X=1", "--variant", "b:", "--before", str(tmp_path)])
    assert args.variants == [("a-before", {"INTAKE_X": "1"}), ("a", {"INTAKE_X": "1"}), ("b-before", {}), ("b", {})]
    bench = object.__new__(OverloadBench)  # the argv alone: no stack
    bench.tree = None
    bench.args, plain = args, OverloadBench.api_argv(bench)
    bench.tree = tmp_path
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "__main__.py").write_text("")
    assert bench.api_argv() == [plain[0], "-P", *plain[1:]]  # the checkout's PYTHONPATH first, not the cwd


def _row(variant: str, rate: float, accepted: float, shed_p99: float, round_no: int = 0) -> dict[str, object]:
    return {
        "variant": variant, "round": round_no, "rate": rate, "accepted_per_s": accepted, "shed": 10, "errors": 0,
        "p50_ms": 5.0, "p99_ms": 9.0, "shed_p50_ms": 1.0, "shed_p99_ms": shed_p99, "api_cores": 0.5,
        "api_ms_per_answer": 0.4, "generator_cores": 0.2, "consumer_cores": 0.0, "late_p99_ms": 1.0, "not_sent": 0,
    }  # fmt: skip


def test_the_report_has_the_median_of_the_rounds_per_rate_and_variant(tmp_path: object) -> None:
    rows = [
        _row("a", 100, 90, 10, 0), _row("a", 100, 80, 30, 1), _row("a", 100, 85, 20, 2),
        _row("b", 100, 99, math.nan), _row("a", 400, 70, 40),
    ]  # fmt: skip
    summary = summarise(rows)
    assert list(summary) == [("a", 100, False), ("b", 100, False), ("a", 400, False)]
    assert summary[("a", 100, False)]["accepted_per_s"] == 85 and summary[("a", 100, False)]["shed_p99_ms"] == 20
    args = parse_args(["--rates", "100,400", "--variant", "a:", "--variant", "b:INTAKE_MAX_IN_FLIGHT=8"])
    text = render(rows, args)
    assert "`b` INTAKE_MAX_IN_FLIGHT=8" in text and "`a` (defaults)" in text
    assert "| 100 | a | 85.0 |" in text and "| 400 | a | 70.0 |" in text
    assert "command: .venv/bin/python -m loadtests.bench_overload --rates 100,400" in text
    assert args.consumers == 0 and "consumer(s)" not in text


def test_consumers_run_beside_each_variant_when_asked(tmp_path: Path) -> None:
    args = parse_args(["--rates", "100", "--consumers", "2", "--out", str(tmp_path)])
    assert args.consumers == 2  # not the shape run's default, which fixed_load fills in for the others
    assert "1 API process(es) beside 2 consumer(s)," in render([_row("default", 100, 90, 10)], args)


def test_a_spike_is_reported_by_the_second() -> None:
    rows = [
        outcomes.Outcome(start=100.2, latency_ms=5, kind="register", status=202, outcome="accepted"),
        outcomes.Outcome(start=100.9, latency_ms=30, kind="register", status=503, outcome="overloaded"),
        outcomes.Outcome(start=101.5, latency_ms=2500, kind="register", status=202, outcome="accepted"),
    ]
    seconds = per_second(rows)
    assert [(x["second"], x["offered"], x["accepted"], x["shed"]) for x in seconds] == [(0, 2, 1, 1), (1, 1, 1, 0)]
    assert seconds[1]["p99_ms"] == 2500
    args = parse_args(["--spike", "900", "--spike-duration", "5", "--variant", "a:"])
    row = {**_row("a", 900, 80, 30), "spike": True, "per_second": seconds}
    text = render([row], args)
    assert "| spike to 900 | a | 80.0 |" in text
    assert (
        "`a`, spike to 900/s over 5 s (round 0), by the second due:" in text and "| 1 | 1 | 1 | 0 | 0 | 2500 |" in text
    )
    with pytest.raises(SystemExit):
        parse_args(["--variant", "a:"])  # neither rates nor a spike


class _Sampler:
    """Stands in for the backlog sampler: ``committed`` records committed, no broker."""

    committed = 0
    stopped = False

    def __init__(self, *args: object) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        _Sampler.stopped = True

    def latest(self) -> BacklogRow:
        return BacklogRow(0.0, 10, _Sampler.committed)


def test_the_run_waits_for_the_consumers_first_commit_and_fails_when_one_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = OverloadBench(parse_args(["--rates", "1", "--consumers", "1", "--out", str(tmp_path)]))
    monkeypatch.setattr(bench_overload, "BacklogSampler", _Sampler)
    monkeypatch.setattr(bench, "settings", lambda prefix: unit_settings())
    procs = Procs(tmp_path / "logs")
    running = procs.start("consumer", [sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ))
    _Sampler.committed = 3
    try:
        bench.wait_for_commits("lt-x", [running])  # returns: the group has committed
    finally:
        procs.stop(running)
    assert _Sampler.stopped
    _Sampler.committed, _Sampler.stopped = 0, False
    gone = procs.start("gone", [sys.executable, "-c", "pass"], dict(os.environ))
    procs.wait(gone, 30)
    try:
        with pytest.raises(RuntimeError, match="committed nothing"):
            bench.wait_for_commits("lt-x", [gone])  # the consumer exited: no waiting out the deadline
    finally:
        procs.stop(gone)
    assert _Sampler.stopped
