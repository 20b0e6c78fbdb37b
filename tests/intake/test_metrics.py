"""Metric names follow the Prometheus conventions, labels are bounded, and multiprocess mode adds up."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from intake.metrics import (
    MULTIPROC_ENV,
    SHED_CODES,
    Metrics,
    build_metrics,
    http_outcome,
    mark_process_dead,
    rejection_codes,
)
from processors.reasons import REASONS

ALLOWED_LABELS = {"route", "status", "code", "topic", "outcome", "reason", "step", "operation", "partition"}


def every_metric(metrics: Metrics) -> list[Any]:
    return [getattr(metrics, f.name) for f in fields(metrics) if f.name != "registry"]


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def test_names_follow_prometheus_conventions() -> None:
    for metric in every_metric(build_metrics()):
        name = metric._name
        assert name.startswith("intake_"), name
        if isinstance(metric, Counter):
            # prometheus_client keeps the declared name without _total and exposes name_total.
            assert not name.endswith("_total") and not name.endswith("_seconds"), name
        elif isinstance(metric, Histogram):
            assert name.endswith(("_seconds", "_bytes")), name
        else:
            assert isinstance(metric, Gauge)
            assert not name.endswith("_total"), name


def test_labels_are_bounded() -> None:
    for metric in every_metric(build_metrics()):
        assert set(metric._labelnames) <= ALLOWED_LABELS, (metric._name, metric._labelnames)


def test_request_durations_split_answers_into_three_bounded_outcomes() -> None:
    assert http_outcome(202, "ok") == "ok"
    assert http_outcome(304, "ok") == "ok"
    assert [http_outcome(503, code) for code in sorted(SHED_CODES)] == ["shed", "shed"]
    assert http_outcome(429, "rate_limited") == "shed"
    assert http_outcome(503, "queue_unavailable") == "error"
    assert http_outcome(422, "validation_failed") == "error"
    assert set(REASONS) >= SHED_CODES


def test_every_gauge_declares_how_processes_combine() -> None:
    for metric in every_metric(build_metrics()):
        if isinstance(metric, Gauge):
            assert metric._multiprocess_mode in {"livesum", "livemax", "mostrecent"}, metric._name


def test_existing_fields_keep_their_names() -> None:
    m = build_metrics()
    expected = {
        "http_requests": "intake_http_requests",
        "http_duration": "intake_http_request_duration_seconds",
        "http_body_bytes": "intake_http_request_body_bytes",
        "http_in_flight": "intake_http_in_flight_requests",
        "shed": "intake_shed",
        "produce_duration": "intake_kafka_produce_duration_seconds",
        "consumer_messages": "intake_consumer_messages",
        "step_duration": "intake_consumer_step_duration_seconds",
        "storage_duration": "intake_storage_put_duration_seconds",
        "storage_errors": "intake_storage_errors",
        "retries": "intake_consumer_retries",
        "dead_letters": "intake_dead_letters",
    }
    assert {f: getattr(m, f)._name for f in expected} == expected


def test_prime_creates_zero_series_for_the_bounded_label_sets() -> None:
    m = build_metrics()
    m.prime("intake.submissions.v1")
    got = values(m.render().decode())
    topic = ("topic", "intake.submissions.v1")
    assert got[("intake_consumer_messages_total", (("outcome", "rejected"), ("reason", "blurry"), topic))] == 0
    assert got[("intake_shed_total", (("code", "overloaded"),))] == 0
    assert got[("intake_dead_letters_total", (("reason", "envelope_invalid"),))] == 0
    codes = list(rejection_codes())
    assert "blurry" in codes and all(c in REASONS for c in codes)
    m.prime("intake.submissions.v1")  # idempotent
    assert values(m.render().decode()) == got


WRITER = textwrap.dedent(
    """
    import sys
    from intake.metrics import build_metrics, mark_process_dead
    in_flight, backlog, fate = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    m = build_metrics()
    m.http_requests.labels("/v1/registrations", "202", "ok").inc()
    m.produce_duration.observe(0.02)
    m.http_in_flight.inc(in_flight)
    m.backlog.labels("t.submissions.v1", "0").set(backlog)
    if fate == "exited":
        mark_process_dead()
    """
)


def test_multiprocess_mode_adds_up_two_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = {**os.environ, MULTIPROC_ENV: str(shared)}
    repo = Path(__file__).resolve().parents[2]
    for args in (("2", "5", "exited"), ("3", "7", "alive")):  # one after the other: 7 is the most recent
        subprocess.run([sys.executable, "-c", WRITER, *args], env=env, cwd=repo, check=True, timeout=60)
    assert len(list(shared.glob("*.db"))) >= 2

    monkeypatch.setenv(MULTIPROC_ENV, str(shared))
    got = values(build_metrics().render().decode())  # what any process of the service answers on /metrics
    assert got[("intake_http_requests_total", (("code", "ok"), ("route", "/v1/registrations"), ("status", "202")))] == 2
    assert got[("intake_kafka_produce_duration_seconds_count", ())] == 2
    assert got[("intake_http_in_flight_requests", ())] == 3  # livesum: the exited process no longer counts
    assert got[("intake_consumer_backlog_records", (("partition", "0"), ("topic", "t.submissions.v1")))] == 7


def test_mark_process_dead_is_a_no_op_without_the_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Outside multiprocess mode it touches nothing: this process's gauges keep their values, and the live files
    of a directory that is not configured stay; once the directory is configured, the same call drops them."""
    shared = tmp_path / "metrics"
    shared.mkdir()
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, MULTIPROC_ENV: str(shared)}
    subprocess.run([sys.executable, "-c", WRITER, "3", "7", "alive"], env=env, cwd=repo, check=True, timeout=60)
    (live,) = shared.glob("gauge_livesum_*.db")
    writer_pid = int(live.stem.rsplit("_", 1)[1])

    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    m = build_metrics()
    m.http_in_flight.inc(2)
    mark_process_dead()
    mark_process_dead(writer_pid)
    assert values(m.render().decode())[("intake_http_in_flight_requests", ())] == 2
    assert live.exists()

    monkeypatch.setenv(MULTIPROC_ENV, str(shared))
    mark_process_dead(writer_pid)
    assert not live.exists()
