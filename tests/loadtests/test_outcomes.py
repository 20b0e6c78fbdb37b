"""Outcome rows from several generator processes, and the API's own answer times from its metrics."""

from __future__ import annotations

import math
from pathlib import Path

from prometheus_client import generate_latest

from intake.metrics import build_metrics
from loadtests import outcomes


def _row(start: float, status: int) -> outcomes.Outcome:
    return outcomes.Outcome(start, 10.0, "register", status, outcomes.classify(status, None), "500k", 1000)


def test_parts_of_several_generators_are_read_together_in_start_order(tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    outcomes.write(outcomes.part_path(events, 2), [_row(3.0, 202)])
    outcomes.write(outcomes.part_path(events, 1), [_row(1.0, 503), _row(4.0, 202)])
    assert outcomes.part_path(events, 7).name == "events.part-7.csv"
    assert [r.start for r in outcomes.read_all(events)] == [1.0, 3.0, 4.0]
    outcomes.write(events, [_row(2.0, 202)])
    assert [r.start for r in outcomes.read_all(events)] == [1.0, 2.0, 3.0, 4.0]


def test_server_durations_by_outcome_are_bucket_bounds() -> None:
    metrics = build_metrics()
    route = "/v1/registrations"
    for _ in range(98):
        metrics.http_duration.labels(route, "shed").observe(0.0004)
    metrics.http_duration.labels(route, "shed").observe(0.004)
    metrics.http_duration.labels(route, "shed").observe(0.3)
    for _ in range(10):
        metrics.http_duration.labels(route, "ok").observe(0.04)
    metrics.http_duration.labels("/healthz", "ok").observe(2.0)
    text = generate_latest(metrics.registry).decode()
    durations = outcomes.server_durations(text, route)
    assert durations["shed"] == {"count": 100.0, "p50_le_ms": 1.0, "p99_le_ms": 5.0}
    assert durations["ok"] == {"count": 10.0, "p50_le_ms": 50.0, "p99_le_ms": 50.0}
    assert outcomes.server_durations("", route) == {}
    assert math.isnan(outcomes.server_durations(text, route).get("error", {"p99_le_ms": math.nan})["p99_le_ms"])
