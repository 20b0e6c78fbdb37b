"""The benchmark report: ``report.md`` and PNG charts, drawn from a run folder.

Inputs in the folder (written by :mod:`loadtests.bench`; the tests write small synthetic ones):

* ``results.json``: meta, the image pipeline's per-core rate, the ceilings per photo size (bare aiohttp,
  ingest, Kafka's producer tool, the open-loop runs) and the load-shape run's summary and backlog figures.
* ``run/events.csv`` (per request, :mod:`loadtests.outcomes`), ``run/backlog.csv`` (``t,end_offsets,committed,
  backlog``), ``cpu.csv`` (``t,ours_cores,others_cores,busy_pct``), ``run/locust_failures.csv`` and
  ``run/locust_stats_history.csv`` (locust's own CSVs). Any of them may be missing; its chart is then skipped.

Run again on a folder with ``.venv/bin/python -m loadtests.report <folder>``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from loadtests import outcomes

TARGET_RATIO = 0.6
TARGET_P99_MS = 300.0
TARGET_SHED_MS = 50.0
CPU_TARGET_RATIO = 0.5
"""Issue #14: the bare reader's CPU per request ÷ the API's per accepted upload, both offered the same rate."""


def _f(x: Any, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def _ratio(a: Any, b: Any) -> float:
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return math.nan
    return a / b if b > 0 and not math.isnan(a) else math.nan


def _verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**missed**")


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------------------------------ charts
def _per_second(rows: list[outcomes.Outcome], t0: float) -> dict[str, dict[int, int]]:
    series: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        if r.kind != "register":
            continue
        sec = int(r.end - t0)
        key = "accepted" if r.outcome == "accepted" else ("shed" if r.shed else "other errors")
        series[key][sec] += 1
    return series


def _save(fig: Any, ax: Any, title: str, out: Path) -> bool:
    """Title ``ax``, write ``fig`` to ``out`` (PNG) and free it. Returns True (the chart was drawn)."""
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def chart_accepted_shed(rows: list[outcomes.Outcome], history: list[dict[str, str]], t0: float, out: Path) -> bool:
    series = _per_second(rows, t0)
    if not series:
        return False
    last = max(max(s) for s in series.values() if s)
    xs = list(range(last + 1))
    fig, ax = plt.subplots(figsize=(9, 4.2))
    styles = {"accepted": "tab:green", "shed": "tab:orange", "other errors": "tab:red"}
    for key, color in styles.items():
        if key in series:
            ax.plot(xs, [series[key].get(x, 0) for x in xs], label=f"{key} /s", color=color, lw=1.4)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("registrations answered per second")
    ax.grid(alpha=0.3)
    users = [
        (float(h["Timestamp"]) - t0, int(float(h["User Count"])))
        for h in history
        if h.get("Name") == "Aggregated" and h.get("Timestamp") and h.get("User Count")
    ]
    if users:
        ax2 = ax.twinx()
        ax2.plot([u[0] for u in users], [u[1] for u in users], color="tab:gray", ls="--", lw=1, label="users")
        ax2.set_ylabel("locust users")
        ax2.legend(loc="upper right")
    ax.legend(loc="upper left")
    return _save(fig, ax, "Accepted and shed per second", out)


def chart_latency(rows: list[outcomes.Outcome], t0: float, out: Path) -> bool:
    buckets: dict[int, list[float]] = defaultdict(list)
    shed: dict[int, list[float]] = defaultdict(list)
    for r in rows:
        if r.kind != "register":
            continue
        if r.outcome == "accepted":
            buckets[int(r.end - t0)].append(r.latency_ms)
        elif r.shed:
            shed[int(r.end - t0)].append(r.latency_ms)
    if not buckets:
        return False
    xs = sorted(buckets)
    fig, ax = plt.subplots(figsize=(9, 4.2))
    for q, color in ((50, "tab:blue"), (90, "tab:purple"), (99, "tab:red")):
        ax.plot(xs, [outcomes.percentile(buckets[x], q) for x in xs], label=f"accepted p{q}", color=color, lw=1.3)
    if shed:
        sx = sorted(shed)
        ax.plot(sx, [outcomes.percentile(shed[x], 99) for x in sx], label="shed p99", color="tab:orange", ls=":")
    ax.axhline(TARGET_P99_MS, color="k", lw=0.8, ls="--", label=f"{TARGET_P99_MS:.0f} ms")
    ax.set_yscale("log")
    ax.set_xlabel("seconds since start (by answer time)")
    ax.set_ylabel("latency, ms (log)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, ax, "Registration latency percentiles per second", out)


def chart_backlog(backlog: list[dict[str, str]], t0: float, load_end: float | None, out: Path) -> bool:
    if not backlog:
        return False
    xs = [float(b["t"]) - t0 for b in backlog]
    fig, ax = plt.subplots(figsize=(9, 4.2))
    ax.plot(xs, [int(b["backlog"]) for b in backlog], color="tab:red", label="backlog (end − committed)")
    ax.plot(xs, [int(b["end_offsets"]) for b in backlog], color="tab:blue", lw=1, label="appended (end offsets)")
    ax.plot(xs, [int(b["committed"]) for b in backlog], color="tab:green", lw=1, label="processed (committed)")
    if load_end is not None:
        ax.axvline(load_end - t0, color="k", ls="--", lw=0.8, label="load stops")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("records")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, ax, "Consumer backlog and its drain", out)


def chart_failures(rows: list[outcomes.Outcome], failures: list[dict[str, str]], out: Path) -> bool:
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        if r.outcome not in ("accepted", "ok", "not_modified"):
            counts[f"{r.kind}: {r.status} {r.outcome}"] += 1
    if not counts:
        for f in failures:
            counts[f"{f.get('Name', '')}: {f.get('Error', '')}"[:60]] += int(f.get("Occurrences") or 0)
    if not counts:
        return False
    items = sorted(counts.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(9, max(2.4, 0.8 + 0.4 * len(items))))
    ax.barh([k for k, _ in items], [v for _, v in items], color="tab:orange")
    for i, (_, v) in enumerate(items):
        ax.text(v, i, f" {v:,}", va="center", fontsize=8)
    ax.set_xlabel("answers")
    return _save(fig, ax, "Failures by reason (all attempts, retries included)", out)


def chart_ceilings(ceilings: list[dict[str, Any]], out: Path) -> bool:
    if not ceilings:
        return False
    labels = [c["size_class"] for c in ceilings]
    bare = [c.get("bare", {}).get("accepted_mb_per_s", math.nan) for c in ceilings]
    ingest = [c.get("ingest", {}).get("accepted_mb_per_s", math.nan) for c in ceilings]
    prod = [(c.get("producer") or {}).get("mb_per_s", math.nan) for c in ceilings]
    x = range(len(labels))
    fig, ax = plt.subplots(figsize=(8, 4))
    w = 0.27
    ax.bar([i - w for i in x], bare, w, label="bare aiohttp", color="tab:gray")
    ax.bar(list(x), ingest, w, label="ingest accepted", color="tab:green")
    ax.bar([i + w for i in x], prod, w, label="Kafka ProducerPerformance", color="tab:blue")
    ax.set_xticks(list(x), labels)
    ax.set_xlabel("photo size class")
    ax.set_ylabel("MB/s (10^6 bytes)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return _save(fig, ax, "Same-run ceilings", out)


def chart_cpu(cpu: list[dict[str, str]], t0: float, out: Path) -> bool:
    if not cpu:
        return False
    xs = [float(c["t"]) - t0 for c in cpu]
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.stackplot(
        xs,
        [float(c["ours_cores"]) for c in cpu],
        [float(c["others_cores"]) for c in cpu],
        labels=["this benchmark (incl. Kafka, MinIO)", "other processes"],
        colors=["tab:blue", "tab:red"],
        alpha=0.7,
    )
    ax.set_xlabel("seconds since benchmark start")
    ax.set_ylabel("cores")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, ax, "CPU use on the machine", out)


# ------------------------------------------------------------------------------------------------ markdown
def _ceiling_table(ceilings: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| Photo | Body | Bare aiohttp req/s (MB/s) | Ingest accepted/s (MB/s) | Ingest ÷ bare | "
        "Raw producer rec/s (MB/s) | Ingest MB/s ÷ producer MB/s | Ingest closed-loop p50 / p99 ms | "
        "Other procs, cores |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in ceilings:
        bare, ing, prod = c.get("bare") or {}, c.get("ingest") or {}, c.get("producer") or {}
        lines.append(
            f"| {c['size_class']} | {c.get('body_bytes', 0) / 1e6:.2f} MB "
            f"| {_f(bare.get('accepted_per_s'))} ({_f(bare.get('accepted_mb_per_s'))}) "
            f"| {_f(ing.get('accepted_per_s'))} ({_f(ing.get('accepted_mb_per_s'))}) "
            f"| {_f(_ratio(ing.get('accepted_per_s'), bare.get('accepted_per_s')), 2)} "
            f"| {_f(prod.get('records_per_s'))} ({_f(prod.get('mb_per_s'))}) "
            f"| {_f(_ratio(ing.get('accepted_mb_per_s'), prod.get('mb_per_s')), 2)} "
            f"| {_f(ing.get('p50_ms'))} / {_f(ing.get('p99_ms'))} "
            f"| {_f(c.get('cpu_others_cores'), 2)} |"
        )
    return lines


_SHARES = ("generator", "kafka", "minio")


def _cpu_row(label: str, cpu: dict[str, Any], server: str) -> str:
    per, cores = cpu.get("ms_per_request") or {}, cpu.get("cores") or {}
    flag = " **(generator saturated)**" if cpu.get("generator_saturated") else ""
    return (
        f"| {label} | {_f(per.get(server), 2)} | "
        + " | ".join(f"{_f(per.get(g), 2)} ({_f(cores.get(g), 2)})" for g in _SHARES)
        + f" | {_f(cpu.get('others_cores'), 2)}{flag} |"
    )


def _cpu_table(ceilings: list[dict[str, Any]]) -> list[str]:
    """CPU-ms per accepted request by process group (cores in brackets), the API next to the bare reader."""
    lines = [
        "| Phase | Server CPU ms/req | Generator ms/req (cores) | Kafka ms/req (cores) | MinIO ms/req (cores) | "
        "Other procs, cores |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    ratios = []
    for c in ceilings:
        bare_cpu, ing_cpu = c.get("bare_cpu") or {}, c.get("ingest_cpu") or {}
        paced = c.get("bare_paced") or {}
        if bare_cpu:
            lines.append(_cpu_row(f"{c['size_class']} bare aiohttp, closed loop", bare_cpu, "bare"))
        if ing_cpu:
            lines.append(_cpu_row(f"{c['size_class']} ingest API, closed loop", ing_cpu, "api"))
        if paced.get("cpu"):
            label = f"{c['size_class']} bare aiohttp, open loop {paced['label']} (the API's rate)"
            lines.append(_cpu_row(label, paced["cpu"], "bare"))
        for ol in c.get("open_loop", []):
            if ol.get("cpu"):
                lines.append(_cpu_row(f"{c['size_class']} ingest API, open loop {ol['label']}", ol["cpu"], "api"))
        at_rate = _paced_cpu(c)
        if at_rate is not None:
            ratios.append(f"{c['size_class']}: {_f(_ratio(*at_rate[1:]), 2)} at {_f(at_rate[0])}/s")
        ratios.append(f"{c['size_class']}: {_f(_ratio(*_closed_cpu(c)), 2)} in the closed loops (each at its own rate)")
    return [*lines, "", "Bare reader's CPU per request ÷ the API's (target ≥ 0.5): " + "; ".join(ratios) + "."]


def _closed_cpu(c: dict[str, Any]) -> tuple[Any, Any]:
    """CPU-ms per request of the bare reader and of the API in their closed loops (each at its own rate)."""
    bare = ((c.get("bare_cpu") or {}).get("ms_per_request") or {}).get("bare")
    return bare, ((c.get("ingest_cpu") or {}).get("ms_per_request") or {}).get("api")


def _paced_cpu(c: dict[str, Any]) -> tuple[float, float, float] | None:
    """The rate and CPU-ms per request of the bare reader and of the API, both offered that rate by the same
    open-loop generator in the same run (the API's 80 % run and the bare reader's run at its rate); None when the
    run has no such pair or a generator was saturated in either (the load was then not what was asked)."""
    paced = c.get("bare_paced") or {}
    below = next((ol for ol in c.get("open_loop", []) if ol.get("kind") == "below"), None)
    if not paced.get("cpu") or below is None or not below.get("cpu"):
        return None
    if paced["cpu"].get("generator_saturated") or below["cpu"].get("generator_saturated"):
        return None
    bare = (paced["cpu"].get("ms_per_request") or {}).get("bare")
    api = (below["cpu"].get("ms_per_request") or {}).get("api")
    return float(below.get("rate") or math.nan), float(bare or math.nan), float(api or math.nan)


def _open_loop_table(ceilings: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| Photo | Offered | Rate/s | Sent | Accepted/s | Shed | Errors | p50 ms | p90 ms | p99 ms | "
        "Shed p50 ms | Shed p99 ms | Client late p99 ms | Not sent (client saturated) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in ceilings:
        for ol in c.get("open_loop", []):
            s = ol.get("summary") or {}
            lines.append(
                f"| {c['size_class']} | {ol['label']} | {_f(ol.get('rate'))} | {_f(ol.get('launched'))} "
                f"| {_f(s.get('accepted_per_s'))} | {_f(s.get('shed'))} | {_f(s.get('errors'))} "
                f"| {_f(s.get('p50_ms'))} | {_f(s.get('p90_ms'))} | {_f(s.get('p99_ms'))} "
                f"| {_f(s.get('shed_p50_ms'))} | {_f(s.get('shed_p99_ms'))} | {_f(ol.get('client_late_p99_ms'))} "
                f"| {_f((s.get('by_outcome') or {}).get('client_saturated', 0))} |"
            )
    return lines


def _targets(results: dict[str, Any]) -> list[str]:
    ceilings = results.get("ceilings", [])
    lines = ["| Target | Measured | Verdict |", "| --- | --- | --- |"]
    c500 = next((c for c in ceilings if c["size_class"] == "500k"), None)
    if c500:
        r = _ratio((c500.get("ingest") or {}).get("accepted_per_s"), (c500.get("bare") or {}).get("accepted_per_s"))
        lines.append(
            f"| accepted/s ≥ {TARGET_RATIO}× bare aiohttp, 500 KB bodies | {_f(r, 2)}× "
            f"| {_verdict(None if math.isnan(r) else r >= TARGET_RATIO)} |"
        )
    for c in ceilings:  # context: the lower of the two ceilings is what ingest can approach at best
        ing, bare, prod = c.get("ingest") or {}, c.get("bare") or {}, c.get("producer") or {}
        floor = min(_ratio(bare.get("accepted_mb_per_s"), 1), _ratio(prod.get("mb_per_s"), 1))
        lines.append(
            f"| (context) ingest MB/s ÷ the lower ceiling (bare aiohttp or raw producer), {c['size_class']} "
            f"| {_f(_ratio(ing.get('accepted_mb_per_s'), floor), 2)}× | reported |"
        )
    for c in ceilings:
        at_rate = _paced_cpu(c)
        if at_rate is not None:
            rate, bare_ms, api_ms = at_rate
            r = _ratio(bare_ms, api_ms)
            lines.append(
                f"| API CPU per accepted upload ≤ 2× the bare reader's, {c['size_class']}, both at {_f(rate)}/s "
                f"| {_f(api_ms, 2)} vs {_f(bare_ms, 2)} ms (ratio {_f(r, 2)}) "
                f"| {_verdict(None if math.isnan(r) else r >= CPU_TARGET_RATIO)} |"
            )
        closed_bare, closed_api = _closed_cpu(c)
        r = _ratio(closed_bare, closed_api)
        if not math.isnan(r):
            lines.append(
                f"| (context) the same in the closed loops, each at its own rate, {c['size_class']} "
                f"| {_f(closed_api, 2)} vs {_f(closed_bare, 2)} ms (ratio {_f(r, 2)}) | reported |"
            )
        sustainable = (c.get("ingest") or {}).get("accepted_per_s")
        for ol in c.get("open_loop", []):
            s = ol.get("summary") or {}
            if ol.get("kind") == "above":
                ar = _ratio(s.get("accepted_per_s"), sustainable)
                lines.append(
                    f"| accepted/s ≥ 0.9× sustainable at {ol['label']}, {c['size_class']} | {_f(ar, 2)}× "
                    f"(accepted p99 {_f(s.get('p99_ms'))} ms) | {_verdict(None if math.isnan(ar) else ar >= 0.9)} |"
                )
        for ol in c.get("open_loop", []):
            s = ol.get("summary") or {}
            if ol.get("kind") == "below":
                p99 = s.get("p99_ms", math.nan)
                ok = None if p99 is None or math.isnan(p99) else p99 < TARGET_P99_MS and s.get("errors", 0) == 0
                lines.append(
                    f"| p99 < {TARGET_P99_MS:.0f} ms at {ol['label']} of the sustainable rate, {c['size_class']} "
                    f"| p99 {_f(p99)} ms at {_f(ol.get('rate'))}/s (shed {s.get('shed', 0)}) | {_verdict(ok)} |"
                )
            elif ol.get("kind") == "above":
                sp99 = s.get("shed_p99_ms", math.nan)
                ok = None if sp99 is None or math.isnan(sp99) else sp99 < TARGET_SHED_MS
                note = "" if s.get("shed") else " (nothing was shed)"
                lines.append(
                    f"| above it, shed answers < {TARGET_SHED_MS:.0f} ms, {c['size_class']} "
                    f"| shed p50 {_f(s.get('shed_p50_ms'))} / p99 {_f(sp99)} ms at {_f(ol.get('rate'))}/s{note} "
                    f"| {_verdict(ok)} |"
                )
    run = results.get("run") or {}
    bl = run.get("backlog") or {}
    pipe = results.get("pipeline") or {}
    if bl and pipe:
        expected = pipe.get("mix_per_core", math.nan) * pipe.get("workers", 0)
        drain = bl.get("processed_per_s", math.nan)
        r = _ratio(drain, expected)
        after = bl.get("drain_per_s", math.nan)
        lines.append(
            f"| backlog drain vs pipeline per-core rate × workers | processed {_f(drain)} records/s while busy "
            f"({_f(r, 2)}×), drain after the load {_f(after)}/s ({_f(_ratio(after, expected), 2)}×) vs "
            f"{_f(pipe.get('mix_per_core'))}/s/core × {pipe.get('workers')} = {_f(expected)}/s | reported |"
        )
    return lines


def _run_section(results: dict[str, Any]) -> list[str]:
    run = results.get("run")
    if not run:
        return []
    s = run.get("summary") or {}
    st = run.get("status_summary") or {}
    bl = run.get("backlog") or {}
    lines = [
        f"## Load shape: {run.get('shape')} ({_f(run.get('duration_s'))} s, peak {run.get('peak_users')} users, "
        f"photos {run.get('photos')})",
        "",
        "| Registrations | Value |",
        "| --- | ---: |",
        f"| POSTs answered (attempts incl. retries) | {_f(s.get('requests'))} |",
        f"| accepted (202) | {_f(s.get('accepted'))} ({_f(s.get('accepted_per_s'))}/s, "
        f"{_f(s.get('accepted_mb_per_s'))} MB/s over the run) |",
        f"| peak accepted in one second | {_f(run.get('peak_accepted_per_s'))} |",
        f"| shed (503/429) | {_f(s.get('shed'))} |",
        f"| other errors | {_f(s.get('errors'))} |",
        f"| distinct submissions accepted / abandoned after all retries | {_f(run.get('submissions_accepted'))} / "
        f"{_f(run.get('submissions_abandoned'))} |",
        f"| accepted latency p50 / p90 / p99 | {_f(s.get('p50_ms'))} / {_f(s.get('p90_ms'))} / "
        f"{_f(s.get('p99_ms'))} ms |",
        f"| shed latency p50 / p99 | {_f(s.get('shed_p50_ms'))} / {_f(s.get('shed_p99_ms'))} ms |",
        f"| status polls (200/304) / failed | {_f(st.get('ok'))} / {_f(st.get('failed'))} |",
        f"| outcomes | {', '.join(f'{k}: {v}' for k, v in (s.get('by_outcome') or {}).items())} |",
        "",
        "| Backlog | Value |",
        "| --- | ---: |",
        f"| appended during the run | {_f(bl.get('appended'))} records |",
        f"| peak backlog | {_f(bl.get('peak'))} records |",
        f"| backlog when the load stopped / at the end of the drain window | {_f(bl.get('at_load_end'))} / "
        f"{_f(bl.get('final'))} |",
        f"| processed (committed) per second, whole observation | {_f(bl.get('processed_per_s'))} |",
        f"| drain rate after the load (backlog decrease) | {_f(bl.get('drain_per_s'))} records/s |",
        f"| projected time to empty from the end of the window | {_f(bl.get('eta_s'))} s |",
        "",
    ]
    if bl.get("sampler_error"):
        lines += [f"Backlog sampler's last error: `{bl['sampler_error']}`", ""]
    cpu = run.get("cpu") or {}
    if cpu:
        cores = cpu.get("cores") or {}
        lines += [
            "CPU during the load, cores by process group: "
            + ", ".join(f"{g} {_f(c, 2)}" for g, c in cores.items())
            + f", other processes {_f(cpu.get('others_cores'), 2)}; API CPU per accepted submission "
            f"{_f((cpu.get('ms_per_request') or {}).get('api'), 2)} ms"
            + ("; **the generator was saturated**" if cpu.get("generator_saturated") else "")
            + ".",
            "",
        ]
    lines += _where_the_time_goes(run, s)
    return lines


def _where_the_time_goes(run: dict[str, Any], s: dict[str, Any]) -> list[str]:
    """Client latency next to the API's own time per answer, the busiest second of each process group, and how
    long the API's event loop and the generator waited for a CPU: whether slow answers are the server's work or
    queueing for a CPU on a shared machine."""
    server = run.get("server") or {}
    cpu = run.get("cpu") or {}
    peaks, waits = cpu.get("peak_cores") or {}, cpu.get("run_queue_wait") or {}
    if not (server or peaks or waits):
        return []
    lines = ["| Where the time goes | accepted | shed |", "| --- | ---: | ---: |"]
    lines.append(
        f"| client p50 / p99 (ms) | {_f(s.get('p50_ms'))} / {_f(s.get('p99_ms'))} "
        f"| {_f(s.get('shed_p50_ms'))} / {_f(s.get('shed_p99_ms'))} |"
    )
    ok, shed = server.get("ok") or {}, server.get("shed") or {}
    lines.append(
        "| API's own time, head parsed to answer: p50 / p99 at most (ms, histogram bucket) "
        f"| ≤ {_f(ok.get('p50_le_ms'))} / ≤ {_f(ok.get('p99_le_ms'))} (n {_f(ok.get('count'))}) "
        f"| ≤ {_f(shed.get('p50_le_ms'))} / ≤ {_f(shed.get('p99_le_ms'))} (n {_f(shed.get('count'))}) |"
    )
    lines.append("")
    if peaks:
        lines.append("Busiest second, cores by group: " + ", ".join(f"{g} {_f(c, 2)}" for g, c in peaks.items()) + ".")
    if waits:
        lines.append(
            "Main threads waiting for a CPU (run queue, s per s; mean / worst second): "
            + ", ".join(f"{g} {_f(w.get('mean'), 2)} / {_f(w.get('max'), 2)}" for g, w in waits.items())
            + ". An API event loop that waits here is starved by the other processes on the machine."
        )
    lines.append("")
    return lines


def _service_tree(meta: dict[str, Any]) -> str:
    """The checkout the API and the consumers ran from (``bench --tree``), when it is not the benchmark's own."""
    if "service_tree" not in meta:
        return ""
    return f" (the benchmark); **API and consumers from `{meta['service_tree']}` at `{meta.get('service_git', '')}`**"


def render_markdown(results: dict[str, Any], charts: list[str]) -> str:
    meta = results.get("meta", {})
    ceilings = results.get("ceilings", [])
    pipe = results.get("pipeline") or {}
    lines = [
        f"# Load benchmark {meta.get('date', '')}",
        "",
        f"Command: `{meta.get('command', '')}`  ",
        f"Commit: `{meta.get('git', '')}`{_service_tree(meta)}; machine: {meta.get('cpus')} cores; API processes "
        f"{meta.get('api_procs')}, consumers {meta.get('consumers')} × {pipe.get('workers')} pool workers; "
        f"load generator on the same machine, loopback only.",
        "",
    ]
    noisy = [p for p in results.get("phases", []) if isinstance(p.get("others"), float) and p["others"] > 0.25]
    if noisy:
        lines += [
            "**Noise:** other processes used CPU during "
            + ", ".join(f"{p['name']} ({p['others']:.2f} cores)" for p in noisy)
            + "; on a 2-core machine those figures are pessimistic.",
            "",
        ]
    if ceilings:
        lines += [
            "## Ceilings, same run, same machine, same generator",
            "",
            "Closed loop (locust `FastHttpUser`, "
            f"{ceilings[0].get('users')} users, no think time, {ceilings[0].get('window_s', 0):.0f} s each). "
            "Bare aiohttp = `loadtests/baseline_app.py` (reads the body, answers 202); raw producer = Kafka's "
            "`ProducerPerformance`, acks=all, record size = body size.",
            "",
            *_ceiling_table(ceilings),
            "",
            "## CPU per accepted request, by process group (same windows)",
            "",
            "CPU-seconds of each group ÷ requests accepted in the measured window (`/proc` via psutil, sampled every "
            "second); a generator near one core is flagged as saturated (the load it offered is then not the one "
            "asked for). A server's CPU per request falls as its rate rises (its wake-ups are shared by more "
            "requests), and in the closed loops the bare reader runs several times the API's rate, so the CPU "
            "target compares the two at one rate: the API's 80 % open-loop run and the bare reader offered that "
            "rate by the same generator, each over the seconds its requests were due.",
            "",
            *_cpu_table(ceilings),
            "",
            "## Open loop (fixed arrival rate; latency from the scheduled send time)",
            "",
            "Rates are fractions of the sustainable rate = the ingest closed-loop accepted/s above. Generator: "
            f"{meta.get('generator', 'loadtests.openloop (Python)')}"
            + (
                "; clients send `Expect: 100-continue`."
                if meta.get("expect")
                else "; browser-like clients (no `Expect`)."
            ),
            "",
            *_open_loop_table(ceilings),
            "",
        ]
    lines += ["## Targets (reported, not asserted)", "", *_targets(results), ""]
    if pipe:
        lines += [
            "Image pipeline, per core (`consumers.photo_task.check_photo`, measured before the load): "
            + ", ".join(f"{k}: {v:.1f}/s" for k, v in (pipe.get("per_core_images_per_s") or {}).items())
            + f"; wave mix: {_f(pipe.get('mix_per_core'))}/s/core.",
            "",
        ]
    lines += _run_section(results)
    if meta.get("notes"):
        lines += ["## Notes", "", *[f"* {n}" for n in meta["notes"]], ""]
    if charts:
        lines += ["## Charts", "", *[f"![{c}]({c})" for c in charts], ""]
    return "\n".join(lines)


def generate(folder: Path) -> Path:
    """Write ``report.md`` and the charts into ``folder``; returns the report's path."""
    results = json.loads((folder / "results.json").read_text())
    run_dir = folder / "run"
    rows = outcomes.read_all(run_dir / "events.csv")
    history = _read_csv(run_dir / "locust_stats_history.csv")
    backlog = _read_csv(run_dir / "backlog.csv")
    failures = _read_csv(run_dir / "locust_failures.csv")
    cpu = _read_csv(folder / "cpu.csv")
    run = results.get("run") or {}
    t0 = float(run.get("t0") or min((r.start for r in rows), default=0.0))
    charts: list[str] = []
    if chart_accepted_shed(rows, history, t0, folder / "accepted_shed.png"):
        charts.append("accepted_shed.png")
    if chart_latency(rows, t0, folder / "latency.png"):
        charts.append("latency.png")
    if chart_backlog(backlog, t0, run.get("t1"), folder / "backlog.png"):
        charts.append("backlog.png")
    if chart_failures(rows, failures, folder / "failures.png"):
        charts.append("failures.png")
    if chart_ceilings(results.get("ceilings", []), folder / "ceilings.png"):
        charts.append("ceilings.png")
    if chart_cpu(cpu, float(results.get("meta", {}).get("t0") or t0), folder / "cpu.png"):
        charts.append("cpu.png")
    path = folder / "report.md"
    path.write_text(render_markdown(results, charts))
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path)
    print(generate(p.parse_args(argv).folder))


if __name__ == "__main__":
    main()
