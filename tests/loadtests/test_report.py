"""The report generator writes report.md with the ratios and the PNG charts from small synthetic inputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from loadtests import outcomes, report
from loadtests.bench import backlog_stats
from loadtests.procs import parse_producer_perf
from loadtests.samplers import BacklogRow

T0 = 1_700_000_000.0
PNG = b"\x89PNG\r\n\x1a\n"


def _summary(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "window_s": 10.0,
        "requests": 0,
        "accepted": 0,
        "shed": 0,
        "errors": 0,
        "accepted_per_s": 0.0,
        "accepted_mb_per_s": 0.0,
        "p50_ms": 10.0,
        "p90_ms": 20.0,
        "p99_ms": 40.0,
        "shed_p50_ms": float("nan"),
        "shed_p99_ms": float("nan"),
        "by_outcome": {},
    }
    return {**base, **kw}


def _write_run(folder: Path) -> None:
    run = folder / "run"
    rows = []
    for sec in range(20):
        for i in range(10):
            accepted = sec < 5 or i % 2 == 0
            rows.append(
                outcomes.Outcome(
                    start=T0 + sec + i / 10,
                    latency_ms=20.0 + sec if accepted else 3.0,
                    kind="register",
                    status=202 if accepted else 503,
                    outcome="accepted" if accepted else "overloaded",
                    size_class="500k",
                    bytes=500_000,
                    attempt=1 if accepted else 1 + i % 3,
                )
            )
        rows.append(outcomes.Outcome(T0 + sec, 5.0, "status", 200, "ok"))
    rows.append(outcomes.Outcome(T0 + 3, 1.0, "register", 422, "validation_failed", "1m", 1_000_000))
    outcomes.write(run / "events.csv", rows)
    with (run / "backlog.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t", "end_offsets", "committed", "backlog"])
        for sec in range(40):
            end = min(sec, 20) * 7
            done = min(end, sec * 4)
            w.writerow([T0 + sec, end, done, end - done])
    with (run / "locust_stats_history.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Timestamp", "User Count", "Type", "Name", "Requests/s"])
        for sec in range(20):
            w.writerow([int(T0 + sec), min(sec * 50, 500), "", "Aggregated", 10])
    with (run / "locust_failures.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Method", "Name", "Error", "Occurrences"])
        w.writerow(["POST", "POST /v1/registrations", "503 overloaded", 75])
    with (folder / "cpu.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t", "ours_cores", "others_cores", "busy_pct"])
        for sec in range(40):
            w.writerow([T0 + sec, 1.2, 0.4, 80.0])


def _at_80_percent(server: str, *, cores: float, ms: float, p99_ms: float) -> dict[str, object]:
    """An open-loop run at 560/s (80 % of the API's 700/s) against ``server``, with its CPU per request."""
    return {
        "label": "80 %",
        "rate": 560.0,
        "launched": 5600,
        "summary": _summary(accepted_per_s=560.0, p99_ms=p99_ms),
        "client_late_p99_ms": 2.0,
        "cpu": {
            "cores": {server: cores, "generator": 0.3},
            "ms_per_request": {server: ms, "generator": 0.5},
            "others_cores": 0.1,
            "generator_saturated": False,
        },
    }


def _results() -> dict[str, object]:
    return {
        "meta": {
            "date": "2026-01-01T00:00:00",
            "t0": T0,
            "command": "bench --quick",
            "git": "abc",
            "cpus": 2,
            "api_procs": 1,
            "consumers": 1,
            "notes": ["synthetic"],
        },
        "pipeline": {"per_core_images_per_s": {"500k": 8.0}, "mix_per_core": 6.0, "workers": 2},
        "phases": [{"name": "500k ingest", "t0": T0, "t1": T0 + 10, "ours": 1.5, "others": 0.6}],
        "ceilings": [
            {
                "size_class": "500k",
                "body_bytes": 520_000,
                "users": 32,
                "window_s": 10,
                "bare": _summary(accepted=10_000, accepted_per_s=1000.0, accepted_mb_per_s=520.0),
                "ingest": _summary(accepted=7000, accepted_per_s=700.0, accepted_mb_per_s=364.0),
                "producer": {"records_per_s": 900.0, "mb_per_s": 468.0},
                "cpu_others_cores": 0.1,
                "bare_cpu": {
                    "cores": {"bare": 0.5, "generator": 0.9, "kafka": 0.0, "minio": 0.0},
                    "ms_per_request": {"bare": 0.5, "generator": 0.9, "kafka": 0.0, "minio": 0.0},
                    "others_cores": 0.2,
                    "generator_saturated": True,
                },
                "ingest_cpu": {
                    "cores": {"api": 0.9, "generator": 0.5, "kafka": 0.4, "minio": 0.0},
                    "ms_per_request": {"api": 1.25, "generator": 0.7, "kafka": 0.6, "minio": 0.0},
                    "others_cores": 0.3,
                    "generator_saturated": False,
                },
                "bare_paced": _at_80_percent("bare", cores=0.4, ms=0.66, p99_ms=8.0),
                "open_loop": [
                    {"kind": "below", **_at_80_percent("api", cores=0.7, ms=1.2, p99_ms=120.0)},
                    {
                        "label": "150 %",
                        "kind": "above",
                        "rate": 1050.0,
                        "launched": 8400,
                        "summary": _summary(accepted_per_s=700.0, shed=3000, shed_p50_ms=4.0, shed_p99_ms=80.0),
                        "client_late_p99_ms": 9.0,
                    },
                ],
            }
        ],
        "run": {
            "shape": "spike",
            "photos": "mix",
            "duration_s": 20,
            "peak_users": 500,
            "t0": T0,
            "t1": T0 + 20,
            "summary": _summary(requests=200, accepted=125, shed=75, by_outcome={"accepted": 125, "overloaded": 75}),
            "status_summary": {"ok": 20, "failed": 0},
            "cpu": {
                "cores": {"api": 0.8, "generator": 0.95},
                "ms_per_request": {"api": 2.5},
                "others_cores": 0.1,
                "generator_saturated": True,
            },
            "backlog": {
                "appended": 140,
                "peak": 60,
                "at_load_end": 60,
                "final": 0,
                "processed_per_s": 4.0,
                "drain_per_s": 4.0,
                "eta_s": 0.0,
            },
        },
    }


def test_report_md_and_charts_from_synthetic_csv(tmp_path: Path) -> None:
    _write_run(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps(_results()))
    path = report.generate(tmp_path)
    text = path.read_text()
    assert path == tmp_path / "report.md"
    assert "| 500k | 0.52 MB | 1,000.0 (520.0) | 700.0 (364.0) | 0.70 | 900.0 (468.0) | 0.78 |" in text
    assert "| accepted/s ≥ 0.6× bare aiohttp, 500 KB bodies | 0.70× | met |" in text
    assert "p99 120.0 ms at 560.0/s (shed 0) | met |" in text
    assert "shed p50 4.0 / p99 80.0 ms at 1,050.0/s | **missed** |" in text
    assert "processed 4.0 records/s while busy (0.33×), drain after the load 4.0/s (0.33×) vs 6.0/s/core × 2" in text
    assert "**Noise:**" in text and "500k ingest (0.60 cores)" in text
    assert "| 500k bare aiohttp, closed loop | 0.50 | 0.90 (0.90) | 0.00 (0.00) | 0.00 (0.00) | 0.20 **(gen" in text
    assert "| 500k ingest API, closed loop | 1.25 | 0.70 (0.50) | 0.60 (0.40) | 0.00 (0.00) | 0.30 |" in text
    assert "| 500k bare aiohttp, open loop 80 % (the API's rate) | 0.66 | 0.50 (0.30) |" in text
    assert "| 500k ingest API, open loop 80 % | 1.20 | 0.50 (0.30) |" in text
    assert (
        "| API CPU per accepted upload ≤ 2× the bare reader's, 500k, both at 560.0/s "
        "| 1.20 vs 0.66 ms (ratio 0.55) | met |" in text
    )
    assert (
        "| (context) the same in the closed loops, each at its own rate, 500k | 1.25 vs 0.50 ms (ratio 0.40) "
        "| reported |" in text
    )
    assert "500k: 0.55 at 560.0/s; 500k: 0.40 in the closed loops (each at its own rate)." in text
    assert "| accepted/s ≥ 0.9× sustainable at 150 %, 500k | 1.00× (accepted p99 40.0 ms) | met |" in text
    for name in ("accepted_shed", "latency", "backlog", "failures", "ceilings", "cpu"):
        png = tmp_path / f"{name}.png"
        assert png.read_bytes()[:8] == PNG, name
        assert f"![{name}.png]({name}.png)" in text


def test_cpu_target_is_not_judged_from_a_saturated_generator(tmp_path: Path) -> None:
    """A paced pair whose generator launched late offered another load: no verdict from it, the closed loops'
    ratio stays as context."""
    results = _results()
    ceiling = results["ceilings"][0]  # type: ignore[index]
    ceiling["bare_paced"]["cpu"]["generator_saturated"] = True
    (tmp_path / "results.json").write_text(json.dumps(results))
    text = report.generate(tmp_path).read_text()
    assert "both at 560.0/s" not in text
    assert "| (context) the same in the closed loops, each at its own rate, 500k |" in text


def test_report_names_the_checkout_the_service_ran_from(tmp_path: Path) -> None:
    results = _results()
    assert "API and consumers from" not in report.render_markdown(results, [])
    results["meta"] = {**results["meta"], "service_tree": "/tmp/before", "service_git": "1b30694"}  # type: ignore[dict-item]
    assert (
        "Commit: `abc` (the benchmark); **API and consumers from `/tmp/before` at `1b30694`**"
        in report.render_markdown(results, [])
    )


def test_report_without_run_data_still_renders(tmp_path: Path) -> None:
    results = _results()
    results["run"] = None
    (tmp_path / "results.json").write_text(json.dumps(results))
    text = report.generate(tmp_path).read_text()
    assert "## Ceilings" in text
    assert (tmp_path / "ceilings.png").exists()
    assert not (tmp_path / "backlog.png").exists()


def test_backlog_stats() -> None:
    rows = [BacklogRow(T0 + s, min(s, 10) * 10, s * 5 if s < 20 else 100) for s in range(25)]
    stats = backlog_stats(rows, load_end=T0 + 10)
    assert stats["appended"] == 100
    assert stats["peak"] == 50
    assert stats["at_load_end"] == 50
    assert stats["final"] == 0
    assert stats["drain_per_s"] == 50 / 14
    assert stats["processed_per_s"] == 5.0


def test_producer_performance_summary_is_parsed() -> None:
    out = (
        "SLF4J: noise\n120 records sent, 24.0 records/sec (12.00 MB/sec), 10.0 ms avg latency, 20.0 ms max latency.\n"
        "287 records sent, 67.0 records/sec (33.36 MB/sec), 567.54 ms avg latency, 1057.00 ms max latency, "
        "634 ms 50th, 896 ms 95th, 1037 ms 99th, 1057 ms 99.9th.\n"
    )
    perf = parse_producer_perf(out, record_bytes=522_198)
    assert perf is not None
    assert perf.records == 287 and perf.records_per_s == 67.0
    assert perf.mb_per_s == 67.0 * 522_198 / 1e6
    assert perf.p99_latency_ms == 1037.0
    assert parse_producer_perf("java.lang.Error", 1) is None
