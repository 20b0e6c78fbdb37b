"""Generates grafana-dashboard.json, the Grafana dashboard of Prakerja Intake, from the panel list below.

    .venv/bin/python deploy/observability/build_dashboard.py          # rewrite the JSON
    .venv/bin/python deploy/observability/build_dashboard.py --check  # exit 1 if the JSON is out of date

Import the JSON in Grafana (Dashboards > Import) and pick the Prometheus data source. Every metric and
recording rule it queries is checked against the services' /metrics and rules.yml by
tests/observability/test_dashboard.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("grafana-dashboard.json")
DS = {"type": "prometheus", "uid": "${datasource}"}
REG = 'route="/v1/registrations"'

Target = tuple[str, str]  # (PromQL, legend)


def _targets(targets: list[Target]) -> list[dict[str, Any]]:
    return [
        {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": chr(ord("A") + i), "range": True}
        for i, (expr, legend) in enumerate(targets)
    ]


def _panel(
    kind: str, title: str, description: str, *, defaults: dict[str, Any], options: dict[str, Any], targets: list[Target]
) -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": _targets(targets),
    }


def timeseries(
    title: str, unit: str, targets: list[Target], description: str = "", stack: bool = False
) -> dict[str, Any]:
    custom = {"drawStyle": "line", "fillOpacity": 10, "stacking": {"mode": "normal" if stack else "none"}}
    legend = {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]}
    defaults = {"unit": unit, "custom": custom}
    return _panel("timeseries", title, description, defaults=defaults, options={"legend": legend}, targets=targets)


def stat(
    title: str, unit: str, expr: str, thresholds: list[tuple[float | None, str]], description: str = ""
) -> dict[str, Any]:
    steps = {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in thresholds]}
    options = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"}
    defaults = {"unit": unit, "thresholds": steps}
    return _panel("stat", title, description, defaults=defaults, options=options, targets=[(expr, title)])


def row(title: str) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def quantiles(metric: str, selector: str = "", by: str = "") -> list[Target]:
    matcher = f"{{{selector}}}" if selector else ""
    inner = f"sum by (le{', ' + by if by else ''}) (rate({metric}_bucket{matcher}[$__rate_interval]))"
    suffix = f" {{{{{by}}}}}" if by else ""
    return [(f"histogram_quantile({q}, {inner})", f"p{int(q * 100)}{suffix}") for q in (0.5, 0.99)]


GREEN, YELLOW, RED = "green", "yellow", "red"

PANELS: list[dict[str, Any]] = [
    row("Now"),
    stat(
        "Accepted / s",
        "reqps",
        f'sum(rate(intake_http_requests_total{{{REG}, status="202"}}[$__rate_interval]))',
        [(None, GREEN)],
    ),
    stat(
        "Shed / s",
        "reqps",
        "sum(rate(intake_shed_total[$__rate_interval]))",
        [(None, GREEN), (0.1, YELLOW), (10, RED)],
    ),
    stat(
        "Backlog",
        "short",
        "sum(topic:intake_consumer_backlog_records:sum)",
        [(None, GREEN), (1000, YELLOW), (50000, RED)],
    ),
    stat(
        "Time to drain",
        "s",
        "max(topic:intake_consumer_time_to_drain_seconds:max)",
        [(None, GREEN), (600, YELLOW), (1800, RED)],
        "Backlog / recent drain rate. +Inf: a backlog and no progress.",
    ),
    stat(
        "Dead letters (1h)",
        "short",
        "sum(increase(intake_dead_letters_total[1h]))",
        [(None, GREEN), (1, RED)],
    ),
    stat(
        "5xx ratio",
        "percentunit",
        'sum(rate(intake_http_requests_total{status=~"5..", code!="overloaded"}[$__rate_interval]))'
        ' / sum(rate(intake_http_requests_total{route!~"/metrics|/healthz|/readyz"}[$__rate_interval]))',
        [(None, GREEN), (0.001, YELLOW), (0.01, RED)],
    ),
    row("Ingest (API)"),
    timeseries(
        "Accepted and shed per second",
        "reqps",
        [
            (f'sum(rate(intake_http_requests_total{{{REG}, status="202"}}[$__rate_interval]))', "accepted"),
            ("sum by (code) (rate(intake_shed_total[$__rate_interval]))", "shed {{code}}"),
        ],
        "Accepted = 202 after Kafka's acknowledgement. Shed = 503 overloaded (admission) or queue_unavailable.",
    ),
    timeseries(
        "Registration answers by status and code",
        "reqps",
        [
            (
                f"sum by (status, code) (rate(intake_http_requests_total{{{REG}}}[$__rate_interval]))",
                "{{status}} {{code}}",
            )
        ],
        stack=True,
    ),
    timeseries("Upload latency p50 / p99", "s", quantiles("intake_http_request_duration_seconds", REG)),
    timeseries(
        "Latency p99 by route",
        "s",
        [
            (
                "histogram_quantile(0.99, sum by (le, route) "
                "(rate(intake_http_request_duration_seconds_bucket[$__rate_interval])))",
                "{{route}}",
            )
        ],
    ),
    timeseries("Kafka produce latency p50 / p99 (acks=all)", "s", quantiles("intake_kafka_produce_duration_seconds")),
    timeseries(
        "Requests in flight",
        "short",
        [("sum by (instance) (intake_http_in_flight_requests)", "{{instance}}")],
        "Per process; admission refuses past INTAKE_MAX_IN_FLIGHT.",
    ),
    timeseries(
        "Upload body size p50 / p99",
        "bytes",
        quantiles("intake_http_request_body_bytes"),
        "Accepted bodies (observed on POST /v1/registrations only).",
    ),
    timeseries(
        "5xx per second by code",
        "reqps",
        [
            (
                'sum by (route, code) (rate(intake_http_requests_total{status=~"5.."}[$__rate_interval]))',
                "{{route}} {{code}}",
            )
        ],
    ),
    row("Backlog (consumer group)"),
    timeseries(
        "Backlog per topic",
        "short",
        [("topic:intake_consumer_backlog_records:sum", "{{topic}}")],
        "End offset minus the group's committed offset, summed over partitions.",
    ),
    timeseries(
        "Backlog per partition",
        "short",
        [("topic_partition:intake_consumer_backlog_records:max", "{{topic}} [{{partition}}]")],
    ),
    timeseries(
        "Drain rate",
        "rps",
        [
            ("topic:intake_consumer_drain_rate_records_per_second:max", "committed {{topic}}"),
            ("sum by (topic) (rate(intake_consumer_messages_total[$__rate_interval]))", "handled {{topic}}"),
        ],
        "Committed offsets gained per second (the sampler's window) and records handled by the workers.",
    ),
    timeseries("Estimated time to drain", "s", [("topic:intake_consumer_time_to_drain_seconds:max", "{{topic}}")]),
    row("Outcomes and failures"),
    timeseries(
        "Registration outcomes by reason",
        "rps",
        [("intake:registration_outcomes:rate5m", "{{stage}} {{outcome}} {{reason}}")],
        "Ingest: accepted or refused with the API's code. Consumer: processed, rejected with the reason code, "
        "dead-lettered.",
        stack=True,
    ),
    timeseries(
        "Rejection rate by reason",
        "percentunit",
        [
            (
                'sum by (reason) (rate(intake_consumer_messages_total{outcome="rejected"}[5m])) / on() group_left() '
                'sum(rate(intake_consumer_messages_total{outcome!="retry_later"}[5m]))',
                "{{reason}}",
            )
        ],
        "Share of handled submissions rejected, per reason code (alert: 25%).",
    ),
    timeseries(
        "Dead letters",
        "short",
        [("sum by (reason) (increase(intake_dead_letters_total[$__rate_interval]))", "{{reason}}")],
    ),
    timeseries(
        "Retries by reason",
        "ops",
        [("sum by (reason) (rate(intake_consumer_retries_total[$__rate_interval]))", "{{reason}}")],
    ),
    timeseries(
        "Consumer step duration p99",
        "s",
        [
            (
                "histogram_quantile(0.99, sum by (le, step) "
                "(rate(intake_consumer_step_duration_seconds_bucket[$__rate_interval])))",
                "{{step}}",
            )
        ],
    ),
    row("Security"),
    timeseries(
        "Authentication failures by code",
        "reqps",
        [("sum by (code) (rate(intake_auth_failures_total[$__rate_interval]))", "{{code}}")],
        "Signed requests refused: unauthorized (wrong/retired key, probing), signature_expired (clock skew), "
        "request_replayed, forbidden (key without the route's scope). Alert: 1/s for 10 minutes.",
    ),
    timeseries(
        "KTP image reads by outcome",
        "ops",
        [("sum by (outcome) (rate(intake_ktp_reads_total[$__rate_interval]))", "{{outcome}}")],
        "Back-office reads, every one in the audit topic; audit_unavailable reads were refused (fail closed).",
    ),
    row("Object storage (MinIO)"),
    timeseries("Put latency p50 / p99", "s", quantiles("intake_storage_put_duration_seconds")),
    timeseries(
        "Data key wait p50 / p99 (API)",
        "s",
        quantiles("intake_data_key_duration_seconds"),
        "How long a new applicant's upload waited for the key store to read or create its data key, before Kafka. "
        "Alert: over 1 % above 250 ms for 10 minutes.",
    ),
    timeseries(
        "Storage errors per second",
        "ops",
        [("sum by (operation) (rate(intake_storage_errors_total[$__rate_interval]))", "{{operation}}")],
    ),
    timeseries(
        "Backlog sampler",
        "short",
        [
            ("time() - max(intake_consumer_lag_last_sample_timestamp_seconds)", "age of last sample (s)"),
            ("sum(increase(intake_consumer_lag_sample_errors_total[$__rate_interval]))", "failed samples"),
        ],
    ),
]


def layout(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows take the full width; stats are 4 wide and 4 high; graphs 12 wide and 8 high, two per line."""
    out: list[dict[str, Any]] = []
    x = y = line_h = 0
    for i, panel in enumerate(panels):
        p = {"id": i + 1, **panel}
        w, h = {"row": (24, 1), "stat": (4, 4)}.get(panel["type"], (12, 8))
        if panel["type"] == "row" or x + w > 24:
            x, y, line_h = 0, y + line_h, 0
        p["gridPos"] = {"x": x, "y": y, "w": w, "h": h}
        x, line_h = x + w, max(line_h, h)
        out.append(p)
    return out


def dashboard() -> dict[str, Any]:
    return {
        "uid": "prakerja-intake",
        "title": "Prakerja Intake",
        "description": "Ingest, backlog, outcomes and storage of the Kartu Prakerja intake service.",
        "tags": ["prakerja", "intake"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                }
            ]
        },
        "annotations": {"list": []},
        "panels": layout(PANELS),
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
