"""The load benchmark's process placement (``--pin``) and its servers' shared metrics."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from intake.metrics import MULTIPROC_ENV
from loadtests.bench import Bench, parse_args, parse_pins
from loadtests.procs import REPO, Procs, cli_argv


def test_pins_name_groups_and_cpus() -> None:
    assert parse_pins(["api,bare=0", "generator,consumer,stack,bench=1"]) == {
        "api": "0",
        "bare": "0",
        "generator": "1",
        "consumer": "1",
        "stack": "1",
        "bench": "1",
    }
    assert parse_pins([]) == {}


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("api", "expected GROUP"),
        ("api=zero", "expected GROUP"),
        ("api=0;1", "expected GROUP"),
        ("browser=0", "unknown group 'browser'"),
        (f"api={os.cpu_count()}", "this machine has CPUs"),
    ],
)
def test_a_bad_pin_is_refused_by_name(spec: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_pins([spec])


def test_the_command_line_refuses_a_bad_pin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--pin", "kafka=0", "--out", str(tmp_path)])
    assert "unknown group 'kafka'" in capsys.readouterr().err


def test_a_pinned_child_and_its_threads_run_on_those_cpus(tmp_path: Path) -> None:
    procs = Procs(tmp_path)
    script = "import os, threading; t = threading.Thread(target=lambda: print(sorted(os.sched_getaffinity(0)))); "
    script += "t.start(); t.join()"
    child = procs.start("probe", [sys.executable, "-c", script], dict(os.environ), cpus="0")
    assert procs.wait(child, 30) == 0
    procs.stop(child)
    assert (tmp_path / "probe.log").read_text().strip() == "[0]"


def test_the_processes_of_one_server_share_a_fresh_metrics_directory(tmp_path: Path) -> None:
    one = Bench(parse_args(["--out", str(tmp_path)]))
    assert one.shared_metrics("r0-api", {"A": "1"}) == {"A": "1"}
    two = Bench(parse_args(["--api-procs", "2", "--out", str(tmp_path)]))
    env = two.shared_metrics("r0-api", {"A": "1"})
    folder = Path(env[MULTIPROC_ENV])
    assert env["A"] == "1" and folder.is_dir() and not any(folder.iterdir())
    (folder / "counter_1.db").write_bytes(b"x")  # what the previous start left behind is gone at the next
    assert not any(Path(two.shared_metrics("r0-api", {})[MULTIPROC_ENV]).iterdir())


def test_variants_are_measured_in_alternating_rounds_and_the_stack_is_cleaned_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = Bench(parse_args(["--out", str(tmp_path)]))
    calls: list[str] = []
    monkeypatch.setattr(b.cpu, "start", lambda: calls.append("cpu"))
    monkeypatch.setattr(b.stack, "start", lambda: calls.append("stack"))
    monkeypatch.setattr(b.stack, "service_env", lambda: {})
    monkeypatch.setattr(b, "purge_stale_topics", lambda: None)
    monkeypatch.setattr(b, "purge_buckets", lambda only_this_run: None)
    monkeypatch.setattr(b, "clean_up", lambda keep_stack: calls.append(f"clean {keep_stack}"))
    rows = b.in_alternating_rounds(["a", "b"], 3, lambda v, r: [{"v": v, "r": r}], keep_stack=False)
    assert [(x["v"], x["r"]) for x in rows] == [("a", 0), ("b", 0), ("b", 1), ("a", 1), ("a", 2), ("b", 2)]
    assert calls == ["cpu", "stack", "clean False"]

    def failing(v: str, r: int) -> list[dict[str, object]]:
        raise RuntimeError("a variant failed")

    calls.clear()
    with pytest.raises(RuntimeError):
        b.in_alternating_rounds(["a"], 1, failing, keep_stack=True)
    assert calls[-1] == "clean True"


def _open_loop(first: float, *, accepted: int, late_ms: float = 3.0, launched: int = 100) -> dict[str, object]:
    return {
        "rate": 10.0,
        "planned": 100,
        "launched": launched,
        "summary": {"accepted": accepted},
        "client_late_p99_ms": late_ms,
        "window": [first, first + 10.0],
    }


def test_open_loop_cpu_counts_the_seconds_its_requests_were_due(tmp_path: Path) -> None:
    """The generator plans for seconds before its first request, while the server idles: CPU per request is the
    window's, so a server that costs more idle than a bare one is not charged for that wait."""
    bench = Bench(parse_args(["--generator", "go", "--out", str(tmp_path)]))
    t0 = 1_000.0
    # 5 s of planning with the server idle at 0.01 cores, then 10 s of load at 0.5 cores (one sample a second,
    # each for the second ending then; the first request half a second before the first loaded sample's end)
    bench.cpu.group_rows = [(t0 + s, {"api": 0.01}) for s in range(1, 6)]
    bench.cpu.group_rows += [(t0 + s, {"api": 0.5, "generator": 0.2}) for s in range(6, 16)]
    cpu = bench.open_loop_cpu(_open_loop(t0 + 5.5, accepted=100), t0, t0 + 16.0)
    assert cpu["ms_per_request"]["api"] == pytest.approx(50.0)  # 0.5 cores x 10 s / 100
    assert cpu["generator_saturated"] is False
    assert bench.open_loop_cpu(_open_loop(t0 + 5.5, accepted=100, late_ms=500.0), t0, t0 + 16.0)["generator_saturated"]
    assert bench.open_loop_cpu(_open_loop(t0 + 5.5, accepted=100, launched=90), t0, t0 + 16.0)["generator_saturated"]
    nothing_sent = {**_open_loop(t0, accepted=0), "window": [float("nan"), float("nan")]}
    assert bench.open_loop_cpu(nothing_sent, t0, t0 + 16.0)["cores"]["api"] == pytest.approx((5 * 0.01 + 5.0) / 15)


def test_tree_runs_the_api_and_the_consumers_from_a_checkout(tmp_path: Path) -> None:
    here = Bench(parse_args(["--out", str(tmp_path)]))
    assert here.api_argv()[1:] == ["-m", "cli", "serve"]
    assert here.api_env("p", 1)["PYTHONPATH"] == str(REPO)
    old = tmp_path / "old"  # older than the cli package: its CLI is intake.cli
    old.mkdir()
    there = Bench(parse_args(["--tree", str(old), "--out", str(tmp_path)]))
    assert there.api_argv()[1:] == ["-P", "-m", "intake.cli", "serve"]  # its modules first, not this cwd's
    assert there.api_env("p", 1)["PYTHONPATH"] == str(old)
    assert cli_argv("consume", old)[1:] == ["-P", "-m", "intake.cli", "consume"]
    (old / "cli").mkdir()
    (old / "cli" / "__main__.py").write_text("")
    assert cli_argv("consume", old)[1:] == ["-P", "-m", "cli", "consume"]
