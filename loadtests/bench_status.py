"""Status reads for everyone (issue #15): personal status and the queue watermark against /healthz, same process.

    .venv/bin/python -m loadtests.bench_status                        # 600,000 statuses, 5 s per load, 2 rounds
    .venv/bin/python -m loadtests.bench_status --records 50000 --seconds 3 --rounds 1 --profile reports/profile

Everything runs on the benchmark's private stack (``loadtests.procs.Stack``; started if down, stopped at the end
if started here), never the default one. Steps:

1. a fresh topic prefix ``lt-<run>-s``; ``--records`` synthetic ``eligible`` statuses are appended to its status
   topic (what the workers publish), and the one read below is also stored in MinIO (the durable record);
2. the **view**: ``--records`` statuses are applied to a :class:`~ingest.status_view.StatusView` in this process
   under ``tracemalloc``: bytes per status and apply CPU time per status (the view's own cost, without Kafka);
3. API **A** (``intake serve``, the status view on) starts; *rebuild* = from launch to ``/readyz`` 200 (which waits
   for the view to replay the status topic), and the API's own log line gives the replay time alone; RSS after;
4. API **B** (``INTAKE_STATUS_VIEW_MAX_ENTRIES=0``: every status read is an S3 GET, the code path before this
   issue) starts beside it, for the *before* figure;
5. loads, ``--rounds`` times, each for ``--seconds`` with ``--connections`` keep-alive connections from a separate
   load-generator process (this module with ``--load``: a minimal HTTP/1.1 client on asyncio streams): on A,
   ``/healthz`` (the baseline), ``GET /v1/queue`` (200 and 304), the personal status of a final submission
   (200 and 304) and of a queued one (``received`` with its place, 200 and 304); on B, ``/healthz`` and the final
   status (200). For each: requests per second, and the API process's CPU seconds per request
   (``/proc/<pid>/stat`` utime + stime over the load).

Ratios are against ``/healthz`` on the same process in the same round (medians over rounds): the req/s ratio, and
the CPU ratio (healthz CPU/request over the route's CPU/request), which does not depend on the load generator
keeping up. The machine is shared: the CPU used by other processes during each load is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
import tracemalloc
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.status_view import StatusView
from ingest.tokens import status_token
from intake.kafka import build_producer, ensure_topics
from intake.settings import load_settings
from intake.status import StatusRecord, status_key
from intake.storage import build_store
from intake.topics import topic_names
from loadtests.procs import REPO, Procs, Stack, free_port, wait_http

_CLK = os.sysconf("SC_CLK_TCK")


def _sid(i: int) -> str:
    return f"{i:026d}".translate(str.maketrans("0123456789", "abcdefghij"))


def _record(i: int) -> StatusRecord:
    sid = _sid(i)
    return StatusRecord(
        sid,
        "eligible",
        "2026-11-30T23:10:25.123456+00:00",
        objects={"card": f"ktp/{sid}/card.jpg", "frame": f"ktp/{sid}/frame.jpg"},
        facts={
            "width": 1600,
            "height": 1200,
            "sha256": f"{i:064x}",
            "card_found": True,
            "source_format": "JPEG",
            "quality": {"blur": 300.0 + i % 97, "glare_fraction": 0.001 * (i % 7), "mean_luma": 140.0 + i % 13},
            "wave": 1,
            "received_at": "2026-11-30T23:06:25.123456+00:00",
        },
    )


# ------------------------------------------------------------------------------------------ load generator


async def _connection(
    host: str, port: int, request: bytes, *, deadline: float, counts: dict[int, int], errors: list[str]
) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        errors.append(type(exc).__name__)
        return
    try:
        while time.monotonic() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            if m:
                await reader.readexactly(int(m[1]))
            counts[status] = counts.get(status, 0) + 1
    except (OSError, asyncio.IncompleteReadError) as exc:
        errors.append(type(exc).__name__)
    finally:
        writer.close()


async def _load(url: str, seconds: float, connections: int, headers: list[str]) -> dict[str, Any]:
    m = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    if not m:
        raise SystemExit(f"bad url {url}")
    host, port, path = m[1], int(m[2]), m[3]
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", *headers, "", ""]
    request = "\r\n".join(lines).encode()
    counts: dict[int, int] = {}
    errors: list[str] = []
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(
        *(_connection(host, port, request, deadline=deadline, counts=counts, errors=errors) for _ in range(connections))
    )
    elapsed = time.monotonic() - started
    return {"requests": sum(counts.values()), "seconds": elapsed, "statuses": counts, "errors": len(errors)}


# ------------------------------------------------------------------------------------------ accounting


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK


def _machine_busy_s() -> float:
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return (int(cpu[0]) + int(cpu[1]) + int(cpu[2]) + int(cpu[5]) + int(cpu[6])) / _CLK


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Measured:
    api: str
    route: str
    round: int
    requests: int
    seconds: float
    cpu_s: float
    others_cpu_s: float
    statuses: dict[str, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_per_request_us(self) -> float:
        return 1e6 * self.cpu_s / max(1, self.requests)


def _measure(
    api: str, pid: int, url: str, route: str, *, rnd: int, args: argparse.Namespace, headers: list[str]
) -> Measured:
    argv = [sys.executable, "-m", "loadtests.bench_status", "--load", url, "--seconds", str(args.seconds)]
    argv += ["--connections", str(args.connections)]
    for h in headers:
        argv += ["--header", h]
    cpu0, busy0 = _cpu_s(pid), _machine_busy_s()
    out = subprocess.run(argv, cwd=REPO, check=True, capture_output=True, text=True, timeout=args.seconds + 60)
    cpu1, busy1 = _cpu_s(pid), _machine_busy_s()
    got = json.loads(out.stdout.strip().splitlines()[-1])
    m = Measured(
        api, route, rnd, got["requests"], got["seconds"], cpu1 - cpu0, busy1 - busy0 - (cpu1 - cpu0), got["statuses"]
    )
    print(
        f"  {api} {route:<28} {m.rps:>8.0f} req/s  {m.cpu_per_request_us:>6.0f} us CPU/req  "
        f"statuses {m.statuses}  others {m.others_cpu_s:.1f} CPU-s",
        flush=True,
    )
    return m


# ------------------------------------------------------------------------------------------ setup


async def _publish(env: dict[str, str], count: int) -> None:
    settings = load_settings(env)
    await ensure_topics(settings)
    producer = build_producer(settings)
    await producer.start()
    try:
        topic = topic_names(settings).status
        pending = []
        for i in range(count):
            record = _record(i)
            pending.append(await producer.send(topic, record.to_json(), key=record.submission_id.encode()))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    store = build_store(settings)
    try:
        await store.ensure_buckets([settings.s3.bucket_photos, settings.s3.bucket_status])
        final = _record(0)
        await store.put(settings.s3.bucket_status, status_key(final.submission_id), final.to_json(), "application/json")
    finally:
        store.close()


def _view_cost(count: int) -> dict[str, float]:
    """Bytes per status held by the view, and apply CPU per status (this process, no Kafka)."""
    raws = [(r.submission_id.encode(), r.to_json()) for r in map(_record, range(count))]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    view = StatusView(count)
    cpu0 = time.process_time()
    for key, raw in raws:
        view.apply(key, raw)
    cpu = time.process_time() - cpu0
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert view.get(_sid(count // 2)) == _record(count // 2)
    return {
        "statuses": float(count),
        "bytes_per_status": held / count,
        "json_bytes_per_status": sum(len(r) for _, r in raws) / count,
        "apply_us_per_status": 1e6 * cpu / count,
    }


def _start_api(procs: Procs, name: str, env: dict[str, str]) -> tuple[int, str, float]:
    port = free_port()
    started = time.monotonic()
    child = procs.start(name, [sys.executable, "-m", "cli", "serve"], {**env, "INTAKE_HTTP_PORT": str(port)})
    url = f"http://127.0.0.1:{port}"
    if not wait_http(f"{url}/readyz", 600):
        raise SystemExit(f"{name} did not become ready; see {procs.log_dir / (name + '.log')}")
    return child.popen.pid, url, time.monotonic() - started


def _replay_seconds(log: Path) -> tuple[float | None, int | None]:
    found: tuple[float | None, int | None] = (None, None)
    for line in log.read_text(errors="replace").splitlines():  # the log is appended to: the last run's line
        if "status view caught up" in line:
            rec = json.loads(line)
            found = float(rec["seconds"]), int(rec["entries"])
    return found


def _profile(pid: int, url: str, args: argparse.Namespace, headers: list[str], raw: Path) -> None:
    """py-spy samples the API while ``url`` is loaded; the top of the profile is printed."""
    raw.parent.mkdir(parents=True, exist_ok=True)
    spy_cmd = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid)]
    spy_cmd += ["--duration", str(int(args.seconds)), "--format", "raw", "--output", str(raw)]
    spy = subprocess.Popen(
        spy_cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    subprocess.run(
        [sys.executable, "-m", "loadtests.bench_status", "--load", url, "--seconds", str(args.seconds)]
        + ["--connections", str(args.connections)]
        + [x for h in headers for x in ("--header", h)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=args.seconds + 60,
    )
    spy.wait(timeout=60)
    print(f"  py-spy profile: {raw}")
    for line in _top_frames(raw, 14):
        print("   ", line)


def _top_frames(raw: Path, n: int) -> list[str]:
    """Inclusive sample share of each function in a py-spy raw (collapsed stacks) file."""
    if not raw.exists():
        return ["(no profile: is py-spy installed and allowed to ptrace?)"]
    totals: dict[str, int] = {}
    all_samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        all_samples += int(count)
        for frame in set(stack.split(";")):
            totals[frame] = totals.get(frame, 0) + int(count)
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])
    ours = [kv for kv in ranked if "(ingest/" in kv[0] or "(intake/" in kv[0] or "(processors/" in kv[0]]
    skip = {"cli.py", "runners.py", "base_events.py", "runpy", "events.py"}
    top = [kv for kv in ranked if not any(s in kv[0] for s in skip)][:n]
    lines = [f"{100 * c / max(1, all_samples):5.1f}%  {f}" for f, c in top]
    lines += ["-- the project's own frames:"]
    lines += [f"{100 * c / max(1, all_samples):5.1f}%  {f}" for f, c in ours[:n] if "cli.py" not in f]
    return lines


# ------------------------------------------------------------------------------------------ main


def run(args: argparse.Namespace) -> None:
    stack = Stack()
    procs = Procs(REPO / "reports" / "bench_status")
    stack.start()
    try:
        run_id = uuid.uuid4().hex[:8]
        prefix = f"lt-{run_id}-s"
        env = {
            **os.environ,
            **stack.service_env(),
            "INTAKE_TOPIC_PREFIX": prefix,
            "INTAKE_CONSUMER_GROUP": f"{prefix}-workers",
            "INTAKE_BUCKET_PHOTOS": f"{prefix}-ktp",
            "INTAKE_BUCKET_STATUS": f"{prefix}-status",
            "INTAKE_RATE_PER_ADDRESS": "1e9",
            "INTAKE_BURST_PER_ADDRESS": "1000000000",
            "INTAKE_RATE_PER_CLIENT": "1e9",
            "INTAKE_LOG_LEVEL": "INFO",
            "INTAKE_HTTP_PROCESSES": "1",
        }
        settings = load_settings(env)
        print(f"status bench: {args.records} statuses, prefix {prefix}, {args.connections} connections", flush=True)
        started = time.monotonic()
        asyncio.run(_publish(env, args.records))
        print(f"  published {args.records} statuses in {time.monotonic() - started:.1f} s", flush=True)
        view = _view_cost(args.records)
        print(
            f"  view: {view['bytes_per_status']:.0f} bytes/status held (JSON {view['json_bytes_per_status']:.0f}),"
            f" {view['apply_us_per_status']:.1f} us CPU/status to apply",
            flush=True,
        )
        pid_a, url_a, ready_a = _start_api(procs, "api-view", env)
        replay_s, entries = _replay_seconds(procs.log_dir / "api-view.log")
        rss_a = _rss_mib(pid_a)
        print(f"  API A ready in {ready_a:.1f} s; replay {replay_s} s for {entries} statuses; RSS {rss_a:.0f} MiB")
        pid_b, url_b, ready_b = _start_api(procs, "api-s3", {**env, "INTAKE_STATUS_VIEW_MAX_ENTRIES": "0"})
        print(f"  API B (no view) ready in {ready_b:.1f} s; RSS {_rss_mib(pid_b):.0f} MiB", flush=True)

        key = settings.security.status_token_key.encode()
        final, queued = _sid(0), "q" * 26
        auth_final = [f"Authorization: Bearer {status_token(key, final)}"]
        auth_queued = [f"Authorization: Bearer {status_token(key, queued)}"]
        queued_path = f"/v1/submissions/{queued}?partition=0&offset=1000"

        def etag(url: str, headers: list[str]) -> str:
            req = urllib.request.Request(url, headers=dict(h.split(": ", 1) for h in headers))
            with urllib.request.urlopen(req, timeout=10) as resp:
                return str(resp.headers["ETag"])

        plan_a = [
            ("healthz", "/healthz", []),
            ("queue 200", "/v1/queue", []),
            ("queue 304", "/v1/queue", None),
            ("status final 200", f"/v1/submissions/{final}", auth_final),
            ("status final 304", f"/v1/submissions/{final}", None),
            ("status received 200", queued_path, auth_queued),
            ("status received 304", queued_path, None),
        ]
        results: list[Measured] = []
        for rnd in range(args.rounds):
            print(f" round {rnd + 1}", flush=True)
            last_headers: list[str] = []
            for route, path, headers in plan_a:
                if headers is None:  # the 304 of the route above: the same request with If-None-Match
                    sent = [*last_headers, f"If-None-Match: {etag(url_a + path, last_headers)}"]
                else:
                    sent = last_headers = headers
                results.append(_measure("A", pid_a, url_a + path, route, rnd=rnd, args=args, headers=sent))
            results.append(_measure("B", pid_b, url_b + "/healthz", "healthz", rnd=rnd, args=args, headers=[]))
            results.append(
                _measure(
                    "B",
                    pid_b,
                    url_b + f"/v1/submissions/{final}",
                    "status final 200 (S3)",
                    rnd=rnd,
                    args=args,
                    headers=auth_final,
                )
            )
        if args.profile:
            out = Path(args.profile)
            _profile(pid_b, url_b + f"/v1/submissions/{final}", args, auth_final, out / "before_s3.txt")
            _profile(pid_a, url_a + f"/v1/submissions/{final}", args, auth_final, out / "after_view.txt")
            _profile(pid_a, url_a + queued_path, args, auth_queued, out / "after_received.txt")
        _summary(results, view, {"ready_s": ready_a, "replay_s": replay_s, "entries": entries, "rss_mib": rss_a})
    finally:
        procs.stop_all()
        stack.stop()


def _summary(results: list[Measured], view: dict[str, float], rebuild: dict[str, Any]) -> None:
    print("\nratios against /healthz on the same process, same round (median over rounds):")
    print(f"{'API':<4}{'route':<28}{'req/s':>9}{'CPU us/req':>12}{'req/s ratio':>13}{'CPU ratio':>11}")
    routes = list(dict.fromkeys((m.api, m.route) for m in results))
    for api, route in routes:
        rows = [m for m in results if (m.api, m.route) == (api, route)]
        ratios, cpu_ratios = [], []
        for m in rows:
            base = next(b for b in results if b.api == api and b.route == "healthz" and b.round == m.round)
            ratios.append(m.rps / base.rps)
            cpu_ratios.append(base.cpu_per_request_us / max(1e-9, m.cpu_per_request_us))
        rps = statistics.median(m.rps for m in rows)
        cpu = statistics.median(m.cpu_per_request_us for m in rows)
        print(
            f"{api:<4}{route:<28}{rps:>9.0f}{cpu:>12.0f}{statistics.median(ratios):>13.2f}"
            f"{statistics.median(cpu_ratios):>11.2f}"
        )
    print(
        f"\nview: {view['bytes_per_status']:.0f} bytes per status in memory"
        f" ({view['bytes_per_status'] * 600_000 / 2**20:.0f} MiB for 600,000;"
        f" {view['bytes_per_status'] * 5_500_000 / 2**20:.0f} MiB for 5.5 million);"
        f" apply {view['apply_us_per_status']:.1f} us CPU per status"
    )
    print(
        f"rebuild: API ready {rebuild['ready_s']:.1f} s after launch; replay {rebuild['replay_s']} s for"
        f" {rebuild['entries']} statuses; RSS {rebuild['rss_mib']:.0f} MiB"
    )
    print("A = status view on; B = view off (every status read is an S3 GET: the path before issue #15).")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=600_000, help="statuses on the status topic (view rebuild)")
    p.add_argument("--seconds", type=float, default=5.0, help="duration of each load")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--profile", default="", help="folder for a py-spy profile of the final status read")
    p.add_argument("--load", default="", help=argparse.SUPPRESS)
    p.add_argument("--header", action="append", default=[], help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.load:  # the load generator, run as its own process
        print(json.dumps(asyncio.run(_load(args.load, args.seconds, args.connections, args.header))))
        return
    run(args)


if __name__ == "__main__":
    main()
