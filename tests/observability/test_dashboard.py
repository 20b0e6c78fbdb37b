"""The Grafana dashboard and the rules query only metrics the services expose and rules that are recorded."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from ingest.app import create_app
from intake.metrics import Metrics, build_metrics
from tests.support import FakeSink, api_client, api_store, make_registration, multipart, unit_settings

OBS = Path(__file__).resolve().parents[2] / "deploy" / "observability"
DASHBOARD = OBS / "grafana-dashboard.json"
RULES = OBS / "rules.yml"
METRIC = re.compile(r"\bintake_[a-z0-9_]*[a-z0-9]")
RECORDED = re.compile(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b")
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 2000 + b"\xff\xd9"


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def touch_every_label(metrics: Metrics) -> None:
    """One child of every labelled metric, so its sample names appear in the exposition."""
    for f in fields(metrics):
        metric: Any = getattr(metrics, f.name)
        names = getattr(metric, "_labelnames", ())
        if names:
            metric.labels(*("x" for _ in names))


def sample_names(text: str) -> set[str]:
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


async def exposed_names() -> set[str]:
    """Every sample name of the API's /metrics (create_app with fakes) and of a consumer's metrics."""
    api_metrics = build_metrics()
    touch_every_label(api_metrics)
    settings = unit_settings()
    app = create_app(settings, sink=FakeSink(), store=api_store(), metrics=api_metrics)
    client: TestClient[Any, Any] = api_client(app, settings)
    await client.start_server()
    try:
        resp = await client.post("/v1/registrations", data=multipart(make_registration(), JPEG))
        assert resp.status == 202, await resp.text()
        api_text = await (await client.get("/metrics")).text()
    finally:
        await client.close()
    consumer_metrics = build_metrics()
    consumer_metrics.prime("intake.submissions.v1")
    touch_every_label(consumer_metrics)
    return sample_names(api_text) | sample_names(consumer_metrics.render().decode())


async def test_every_metric_the_dashboard_and_rules_use_is_exposed() -> None:
    used = set(METRIC.findall("\n".join(dashboard_exprs()))) | set(METRIC.findall(RULES.read_text()))
    assert len(used) >= 12
    missing = used - await exposed_names()
    assert not missing, f"queried but not exposed by the services: {sorted(missing)}"


def test_every_recording_rule_the_dashboard_uses_is_recorded() -> None:
    recorded = set(re.findall(r"^\s*- record: (\S+)$", RULES.read_text(), re.M))
    used = set(RECORDED.findall("\n".join(dashboard_exprs()))) | set(RECORDED.findall(RULES.read_text()))
    assert recorded and used - recorded == set()


def test_dashboard_covers_what_sres_asked_for() -> None:
    exprs = "\n".join(dashboard_exprs())
    for needed in (
        'status="202"',  # accepted per second
        "intake_shed_total",
        "histogram_quantile(0.5",
        "histogram_quantile(0.99",
        "topic:intake_consumer_backlog_records:sum",
        "topic:intake_consumer_drain_rate_records_per_second:max",
        "topic:intake_consumer_time_to_drain_seconds:max",
        'outcome="rejected"',
        "intake:registration_outcomes:rate5m",
        "intake_dead_letters_total",
        "intake_storage_errors_total",
        "intake_storage_put_duration_seconds_bucket",
        "intake_data_key_duration_seconds_bucket",
        "intake_kafka_produce_duration_seconds_bucket",
        "intake_http_in_flight_requests",
        "intake_http_request_body_bytes_bucket",
        "intake_consumer_retries_total",
        "intake_consumer_step_duration_seconds_bucket",
    ):
        assert needed in exprs, needed


def test_dashboard_json_is_generated_from_build_dashboard() -> None:
    run = subprocess.run(
        [sys.executable, str(OBS / "build_dashboard.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
