"""One row per answered (or failed) request, written by both load generators and read by the report.

Columns: ``start`` (epoch seconds the request was started, or scheduled to start in the open loop),
``latency_ms``, ``kind`` (``register`` or ``status``), ``status`` (HTTP status, 0 for a transport error),
``outcome`` (``accepted``, a shed code such as ``overloaded``, an error code from the JSON body, or a transport
error's name), ``size_class``, ``bytes`` (request body size) and ``attempt`` (1 for a first try).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

SHED_CODES = frozenset({"overloaded", "queue_unavailable", "rate_limited", "too_many_requests"})
"""Outcomes that are the service refusing work to protect itself (503/429 with Retry-After)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    start: float
    latency_ms: float
    kind: str
    status: int
    outcome: str
    size_class: str = ""
    bytes: int = 0
    attempt: int = 1

    @property
    def end(self) -> float:
        return self.start + self.latency_ms / 1000.0

    @property
    def shed(self) -> bool:
        return self.status in (429, 503) or self.outcome in SHED_CODES


COLUMNS = [f.name for f in fields(Outcome)]


def classify(status: int, body: bytes | None) -> str:
    """The outcome of an HTTP answer: ``accepted`` for 202, ``ok`` for 200/304, else the error code."""
    if status == 202:
        return "accepted"
    if status == 200:
        return "ok"
    if status == 304:
        return "not_modified"
    if status == 0:
        return "transport_error"
    try:
        code = json.loads(body or b"")["error"]["code"]
        return str(code)
    except (ValueError, KeyError, TypeError):
        return f"http_{status}"


def write(path: Path, rows: Iterable[Outcome]) -> int:
    """Write ``rows`` as CSV to ``path``; returns the number written."""
    n = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for row in rows:
            w.writerow(astuple(row))
            n += 1
    return n


def read(path: Path) -> list[Outcome]:
    """Read a file written by :func:`write` (an absent file reads as no rows)."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [
            Outcome(
                start=float(r["start"]),
                latency_ms=float(r["latency_ms"]),
                kind=r["kind"],
                status=int(r["status"]),
                outcome=r["outcome"],
                size_class=r.get("size_class", ""),
                bytes=int(r.get("bytes") or 0),
                attempt=int(r.get("attempt") or 1),
            )
            for r in csv.DictReader(f)
        ]


def part_path(path: Path, part: int | str) -> Path:
    """Where generator process ``part`` of several writes its rows for ``path`` (``events.part-3.csv``)."""
    return path.with_name(f"{path.stem}.part-{part}{path.suffix}")


def read_all(path: Path) -> list[Outcome]:
    """The rows of ``path`` and of every part written next to it by :func:`part_path` (several generator
    processes), in start order."""
    paths = [path, *sorted(path.parent.glob(f"{path.stem}.part-*{path.suffix}"))]
    return sorted((row for p in paths for row in read(p)), key=lambda r: r.start)


def server_durations(exposition: str, route: str = "/v1/registrations") -> dict[str, dict[str, float]]:
    """The API's own time per answer for ``route``, by outcome (``ok``, ``shed``, ``error``), from its Prometheus
    exposition (``intake_http_request_duration_seconds``, from the head parsed to the answer): the count and the
    bucket bounds (ms) that hold the 50th and 99th percentile (the true value is at most that bound)."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels = sample.labels
            if (
                family.name == "intake_http_request_duration_seconds"
                and sample.name.endswith("_bucket")
                and labels.get("route") == route
                and "outcome" in labels
            ):
                buckets.setdefault(labels["outcome"], []).append((float(labels["le"]), sample.value))
    out: dict[str, dict[str, float]] = {}
    for outcome, rows in buckets.items():
        rows.sort()
        total = rows[-1][1] if rows else 0.0

        def bound(q: float, rows: list[tuple[float, float]] = rows, total: float = total) -> float:
            return next((le * 1000.0 for le, n in rows if n >= q * total), math.inf) if total else math.nan

        out[outcome] = {"count": total, "p50_le_ms": bound(0.5), "p99_le_ms": bound(0.99)}
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Summary:
    """Counts and latencies of one window of registration requests."""

    window_s: float
    requests: int
    accepted: int
    shed: int
    errors: int
    accepted_per_s: float
    accepted_mb_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    shed_p50_ms: float
    shed_p99_ms: float
    by_outcome: dict[str, int]


def summarise(rows: Sequence[Outcome], t0: float | None = None, t1: float | None = None) -> Summary:
    """Summarise the ``register`` rows that started in ``[t0, t1)`` (all by default); rates per second of window."""
    reg = [r for r in rows if r.kind == "register"]
    if t0 is None:
        t0 = min((r.start for r in reg), default=0.0)
    if t1 is None:  # up to and including the last request
        t1 = max((r.start for r in reg), default=t0)
        win = [r for r in reg if t0 <= r.start <= t1]
    else:
        win = [r for r in reg if t0 <= r.start < t1]
    window = max(t1 - t0, 1e-9)
    acc = [r for r in win if r.outcome == "accepted"]
    shed = [r for r in win if r.shed]
    by: dict[str, int] = {}
    for r in win:
        by[r.outcome] = by.get(r.outcome, 0) + 1
    lat = [r.latency_ms for r in acc]
    shed_lat = [r.latency_ms for r in shed]
    return Summary(
        window_s=window,
        requests=len(win),
        accepted=len(acc),
        shed=len(shed),
        errors=len(win) - len(acc) - len(shed),
        accepted_per_s=len(acc) / window,
        accepted_mb_per_s=sum(r.bytes for r in acc) / window / 1e6,
        p50_ms=percentile(lat, 50),
        p90_ms=percentile(lat, 90),
        p99_ms=percentile(lat, 99),
        shed_p50_ms=percentile(shed_lat, 50),
        shed_p99_ms=percentile(shed_lat, 99),
        by_outcome=dict(sorted(by.items(), key=lambda kv: -kv[1])),
    )
