"""Metrics on the real parts: the API and a consumer against the real Kafka and MinIO, and a real Prometheus.

Each test has its own topics and consumer group (fixture ``isolated``), so only its own records move its
counters. Consumers run with one pool process to spare the CPU.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from consumers.lag import sample_lag
from intake.metrics import Metrics, build_metrics
from intake.metrics_http import serve_metrics
from intake.settings import Settings
from intake.topics import topic_names
from tests.corpus.ktp import SceneSpec, encode, scene
from tests.observability.conftest import PrometheusServer, running_api, running_consumer, wait_for
from tests.support import make_registration, multipart

pytestmark = pytest.mark.integration

GOOD = encode(scene(SceneSpec(seed=11)))
BLURRY = encode(scene(SceneSpec(seed=12, blur_sigma=9.0)))
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "observability" / "grafana-dashboard.json"
_POLLING_ROUTES = {"/readyz", "/healthz", "/metrics", "/v1/submissions/{submission_id}"}

Sample = tuple[str, tuple[tuple[str, str], ...]]


def snapshot(metrics: Metrics) -> dict[Sample, float]:
    """Every sample of ``metrics`` (name and labels to value), without the polling routes' requests."""
    out: dict[Sample, float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            if s.name.endswith("_created") or s.labels.get("route") in _POLLING_ROUTES:
                continue
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def moved(before: dict[Sample, float], after: dict[Sample, float]) -> dict[Sample, float]:
    """The samples whose value changed, with the change."""
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


def families(changes: dict[Sample, float]) -> set[str]:
    return {re.sub(r"_(bucket|count|sum)$", "", name) for name, _ in changes}


def key(name: str, **labels: str) -> Sample:
    return (name, tuple(sorted(labels.items())))


async def submit(api: TestClient[Any, Any], photo: bytes) -> dict[str, Any]:
    resp = await api.post("/v1/registrations", data=multipart(make_registration(), photo))
    assert resp.status == 202, await resp.text()
    return dict(await resp.json())


async def final_state(api: TestClient[Any, Any], accepted: dict[str, Any]) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {accepted['status_token']}"}
    seen: dict[str, Any] = {}

    async def done() -> bool:
        resp = await api.get(accepted["status_url"], headers=auth)
        seen.update(await resp.json())
        return resp.status == 200 and seen.get("state") != "received"

    await wait_for(done, 60, "the submission's outcome")
    return seen


async def worker_moved_after(metrics: Metrics, before: dict[Sample, float]) -> dict[Sample, float]:
    """The worker's changes once it has counted the record: the status is written before the outcome is counted,
    so a final status can be seen a moment before its counter moves."""

    async def counted() -> bool:
        return any(name == "intake_consumer_messages_total" for name, _ in moved(before, snapshot(metrics)))

    await wait_for(counted, 10, "the worker to count the record")
    return moved(before, snapshot(metrics))


async def test_accepted_and_rejected_uploads_move_exactly_their_counters(isolated: Settings) -> None:
    api_metrics, worker_metrics = build_metrics(), build_metrics()
    topic = topic_names(isolated).submissions
    async with running_api(isolated, api_metrics) as api, running_consumer(isolated, worker_metrics):
        api_before, worker_before = snapshot(api_metrics), snapshot(worker_metrics)
        good = await final_state(api, await submit(api, GOOD))
        api_moved = moved(api_before, snapshot(api_metrics))
        worker_moved = await worker_moved_after(worker_metrics, worker_before)

        route = "/v1/registrations"
        assert api_moved[key("intake_http_requests_total", route=route, status="202", code="ok")] == 1
        assert api_moved[key("intake_http_request_duration_seconds_count", route=route, outcome="ok")] == 1
        assert api_moved[key("intake_kafka_produce_duration_seconds_count")] == 1
        assert api_moved[key("intake_data_key_duration_seconds_count")] == 1  # the new applicant's key: one wait
        body_counts = [v for (name, _), v in api_moved.items() if name == "intake_http_request_body_bytes_count"]
        assert body_counts == [1]
        # The status polls count where their answers came from; the status view may have grown by the new status,
        # and the event loop's lag is a gauge sampled all the time (it moves with the machine's load).
        assert families(api_moved) - {"intake_status_view_entries", "intake_http_loop_lag_seconds"} == {
            "intake_http_requests_total",
            "intake_http_request_duration_seconds",
            "intake_http_request_body_bytes",
            "intake_kafka_produce_duration_seconds",
            "intake_status_reads_total",
            "intake_data_keys_total",  # the applicant's data key, created for the upload's sealed record
            "intake_data_key_duration_seconds",  # and the upload's wait for that create
        }, api_moved

        assert good["reason"] is None, good
        outcomes = {k: v for k, v in worker_moved.items() if k[0] == "intake_consumer_messages_total"}
        assert outcomes == {key("intake_consumer_messages_total", topic=topic, outcome=good["state"], reason="none"): 1}
        assert worker_moved[key("intake_consumer_step_duration_seconds_count", step="photo")] == 1
        assert worker_moved[key("intake_storage_put_duration_seconds_count")] >= 2  # the image(s) and the status
        assert worker_moved[key("intake_registration_records_total", outcome="eligible")] == 1
        assert families(worker_moved) <= {
            "intake_consumer_messages_total",
            "intake_consumer_step_duration_seconds",
            "intake_storage_put_duration_seconds",
            "intake_registration_records_total",
        }, worker_moved

        worker_before = snapshot(worker_metrics)
        rejected = await final_state(api, await submit(api, BLURRY))
        worker_moved = await worker_moved_after(worker_metrics, worker_before)
        assert rejected["state"] == "rejected" and rejected["reason"]["code"] == "blurry", rejected
        outcomes = {k: v for k, v in worker_moved.items() if k[0] == "intake_consumer_messages_total"}
        assert outcomes == {key("intake_consumer_messages_total", topic=topic, outcome="rejected", reason="blurry"): 1}
        assert not families(worker_moved) & {
            "intake_dead_letters_total",
            "intake_consumer_retries_total",
            "intake_storage_errors_total",
        }


def _backlog(metrics: Metrics, topic: str) -> float:
    return sum(
        s.value
        for f in text_string_to_metric_families(metrics.render().decode())
        for s in f.samples
        if s.name == "intake_consumer_backlog_records" and s.labels["topic"] == topic
    )


def _gauge(metrics: Metrics, name: str, topic: str) -> float:
    for f in text_string_to_metric_families(metrics.render().decode()):
        for s in f.samples:
            if s.name == name and s.labels.get("topic") == topic:
                return float(s.value)
    return math.nan


async def test_backlog_rises_while_the_consumer_is_stopped_and_falls_when_it_runs(isolated: Settings) -> None:
    api_metrics, worker_metrics = build_metrics(), build_metrics()
    topic = topic_names(isolated).submissions
    async with running_api(isolated, api_metrics) as api, sample_lag(isolated, worker_metrics, interval_s=0.5):
        for _ in range(3):
            await submit(api, GOOD)

        async def risen() -> bool:
            ttd = _gauge(worker_metrics, "intake_consumer_time_to_drain_seconds", topic)
            return _backlog(worker_metrics, topic) == 3 and math.isinf(ttd)

        await wait_for(risen, 30, "a backlog of 3 with no progress (+Inf time to drain)")
        rates: list[float] = []
        async with running_consumer(isolated, worker_metrics):

            async def drained() -> bool:
                rates.append(_gauge(worker_metrics, "intake_consumer_drain_rate_records_per_second", topic))
                return _backlog(worker_metrics, topic) == 0

            await wait_for(drained, 60, "the backlog to drain")
        assert max(r for r in rates if not math.isnan(r)) > 0
        assert _gauge(worker_metrics, "intake_consumer_time_to_drain_seconds", topic) == 0


async def test_prometheus_scrapes_the_services_and_sees_backlog_and_failures(
    isolated: Settings, prometheus: PrometheusServer
) -> None:
    api_metrics, worker_metrics = build_metrics(), build_metrics()
    topic = topic_names(isolated).submissions
    worker_metrics.prime(topic)
    host = "127.0.0.1"
    async with (
        running_api(isolated, api_metrics) as api,
        serve_metrics(worker_metrics, host, 0) as endpoint,
        sample_lag(isolated, worker_metrics, interval_s=0.5, window_s=10),
        aiohttp.ClientSession() as http,
    ):
        assert api.server.port is not None
        await asyncio.to_thread(
            prometheus.start, f"intake-api={host}:{api.server.port}", f"intake-consumer={host}:{endpoint.port}"
        )

        async def scraping() -> bool:
            up = await prometheus.query(http, "up == 1")
            return {r["metric"]["job"] for r in up} == {"intake-api", "intake-consumer"}

        await wait_for(scraping, 30, "Prometheus to scrape the API and the consumer")

        backlog = f'sum(topic_partition:intake_consumer_backlog_records:max{{topic="{topic}"}})'
        blurry_rate = (
            f'sum(rate(intake_consumer_messages_total{{topic="{topic}", outcome="rejected", reason="blurry"}}[30s]))'
        )

        async def primed() -> bool:  # the primed series exists at 0 before the first rejection
            return await prometheus.value(http, blurry_rate) == 0

        await wait_for(primed, 15, "a zero blurry rate")
        for photo in (BLURRY, BLURRY, GOOD):
            await submit(api, photo)

        async def backlog_is(n: float) -> bool:
            return await prometheus.value(http, backlog) == n

        await wait_for(lambda: backlog_is(3), 30, "Prometheus to see a backlog of 3")
        accepted = 'sum(intake_http_requests_total{route="/v1/registrations", status="202"})'
        assert await prometheus.value(http, accepted) == 3

        async with running_consumer(isolated, worker_metrics):

            async def failures_seen() -> bool:
                rate = await prometheus.value(http, blurry_rate)
                return await backlog_is(0) and rate is not None and rate > 0

            await wait_for(failures_seen, 60, "Prometheus to see the backlog drain and the blurry rate rise")
            outcome = 'intake:registration_outcomes:rate5m{stage="consumer", outcome="rejected", reason="blurry"}'

            async def recorded() -> bool:
                value = await prometheus.value(http, outcome)
                return value is not None and value > 0

            await wait_for(recorded, 20, "the registration outcomes recording rule")

        # Every query of the dashboard is valid PromQL on this Prometheus.
        for panel in json.loads(DASHBOARD.read_text())["panels"]:
            for target in panel.get("targets", []):
                await prometheus.query(http, target["expr"].replace("$__rate_interval", "1m"))
