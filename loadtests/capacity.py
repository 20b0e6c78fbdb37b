"""Sizing a wave: measure per-core rates on this machine, then size and simulate a fleet (``capacity_model``).

    .venv/bin/python -m loadtests.capacity measure --out reports/capacity       # ~5 min: rates.json + the check
    .venv/bin/python -m loadtests.capacity plan --rates reports/capacity/rates.json --applicants 600000 \\
        [--first-hour 0.333 --peak-minute 0.02 --duration-h 72] [--status-within-min 60] \\
        [--api 6 --consumer-cores 8] --png reports/capacity/wave-600k.png

``measure`` runs on the benchmark's private stack (``loadtests.procs.Stack``, one Kafka node, ``INTAKE_BENCH_*``
ports) and measures, in one run:

* **drain per consumer core, by photo size class**: one ``intake consume`` with ``INTAKE_POOL_WORKERS=1`` drains
  ``--count`` pre-loaded submissions of each class (``loadtests.bench_drain``); the figure is photos per CPU-second
  of the consumer and its image process between the first and the last outcome (psutil), so it does not depend on
  what else the machine runs; the wall rate, the cores it got, the start-up (launch to first outcome) and the
  object storage written per applicant are printed beside it;
* **ingest and status reads per API core**: one ``intake serve`` process takes ``--uploads`` signed uploads of
  the wave's photo mix (8 at a time), then ``--reads`` status reads of them (16 at a time); the figure is requests
  per CPU-second of that process (psutil), so it does not depend on what else the machine runs;
* **broker MB/s per core**: bytes the uploads appended per CPU-second of the Kafka JVM over the upload phase;
* **the check**: a consumer with one image process drains ``--check-count`` submissions of the mix, and the
  model's prediction is printed beside the measurement twice: on a core (the CPU-seconds the per-class rates
  predict for those photos against the CPU-seconds the consumer and its pool used, first to last outcome: free of
  the neighbours' noise) and in wall-clock time on this shared machine (start-up plus each photo's wall time from
  the class phases of the same run, against launch to last outcome). Target: within 25 %.

``plan`` reads those rates and a wave (applicants, photo mix, arrival curve), prints the fleet the model sizes
(``capacity_model.size_fleet``) or, with ``--api``/``--consumer-cores``, simulates that fleet, and plots backlog
and time to status over the wave (PNG). Every figure it prints is a model's, from this machine's rates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import matplotlib
import psutil
from minio import Minio

from intake.auth import signing_key
from loadtests import bench, bench_drain
from loadtests.capacity_model import Fleet, Rates, Timeline, Wave, simulate, size_fleet
from loadtests.openloop import registration_factory
from loadtests.payloads import SIZE_CLASSES, synthetic_address
from loadtests.procs import REPO

matplotlib.use("Agg")
import matplotlib.pyplot as plt

WAVE_MIX = {label: c.weight for label, c in SIZE_CLASSES.items()}


# ----------------------------------------------------------------------------------------------------- measure
def _stored_bytes(b: bench.Bench, prefix: str) -> float:
    """Bytes of every image and status object written under ``prefix``'s buckets (claims excluded)."""
    env = b.service_env
    client = Minio(
        env["INTAKE_S3_ENDPOINT"],
        access_key=env["INTAKE_S3_ACCESS_KEY"],
        secret_key=env["INTAKE_S3_SECRET_KEY"],
        secure=False,
    )
    total = 0
    for bucket in (f"{prefix}-ktp", f"{prefix}-status"):
        for obj in client.list_objects(bucket, recursive=True):
            if obj.object_name and not obj.object_name.startswith("claims/"):
                total += obj.size or 0
    return float(total)


async def _api_phase(
    url: str, *, api_pid: int, kafka_pid: int, key_spec: str, uploads: int, reads: int
) -> dict[str, Any]:
    """Uploads then status reads against one API process; CPU-seconds of the API and of Kafka per phase."""
    key = signing_key(key_spec, "submit")
    make = registration_factory("mix", seed=7, key=key)
    api, kafka = psutil.Process(api_pid), psutil.Process(kafka_pid)

    def cpu(p: psutil.Process) -> float:
        t = p.cpu_times()
        return float(t.user + t.system)

    tokens: list[tuple[str, str]] = []
    appended = 0
    rng = random.Random(3)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        gate = asyncio.Semaphore(8)

        async def upload(i: int) -> None:
            nonlocal appended
            async with gate:
                body, headers, _ = make(i)
                async with session.post(f"{url}/v1/registrations", data=body, headers=headers) as resp:
                    answer = await resp.json()
                    if resp.status == 202:
                        tokens.append((answer["status_url"], answer["status_token"]))
                        appended += len(body)

        api0, kafka0, t0 = cpu(api), cpu(kafka), time.monotonic()
        await asyncio.gather(*(upload(i) for i in range(uploads)))
        api1, kafka1, t1 = cpu(api), cpu(kafka), time.monotonic()
        if not tokens:
            raise RuntimeError("no upload was accepted: see the API's log")
        read_gate = asyncio.Semaphore(16)
        answered = 0

        async def read(i: int) -> None:
            nonlocal answered
            path, token = tokens[i % len(tokens)]
            headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": synthetic_address(rng)}
            async with read_gate, session.get(f"{url}{path}", headers=headers) as resp:
                await resp.read()
                answered += resp.status == 200

        await asyncio.gather(*(read(i) for i in range(reads)))
        api2, t2 = cpu(api), time.monotonic()
    return {
        "accepted": len(tokens),
        "uploads": uploads,
        "api_cpu_s_uploads": api1 - api0,
        "kafka_cpu_s_uploads": kafka1 - kafka0,
        "uploads_wall_s": t1 - t0,
        "appended_bytes": appended,
        "reads_ok": answered,
        "reads": reads,
        "api_cpu_s_reads": api2 - api1,
        "reads_wall_s": t2 - t1,
    }


def measure(args: argparse.Namespace) -> None:
    """Measure the rates, write ``rates.json`` and run the check (see the module's docstring)."""
    args.out.mkdir(parents=True, exist_ok=True)
    drain_args = bench_drain.parse_args(
        ["--workers", "1", "--count", str(args.count), "--out", str(args.out), "--timeout", str(args.timeout)]
    )
    db = bench_drain.DrainBench(drain_args)
    b = db.b
    report: dict[str, Any] = {"command": " ".join(sys.argv), "classes": {}, "at": datetime.now().isoformat()}
    b.cpu.start()
    try:
        bench._log("starting the private stack")
        b.stack.start()
        b.service_env = b.stack.service_env()
        b.purge_stale_topics()
        b.purge_buckets(only_this_run=False)
        # 1. drain per consumer core, by photo size class
        for n, label in enumerate(args.classes, start=1):
            drain_args.photos = label
            t0 = time.time()
            d = db.drain(1, n)
            others = b.cpu.mean_between(t0, time.time())[1]
            stored = _stored_bytes(b, f"{b.run_id}-d{n}w1") / max(1, d.photos)
            steady = d.cpu_s / (d.photos - 1)
            report["classes"][label] = {
                "photos": d.photos,
                "per_s": d.per_s,
                "start_up_s": d.start_up_s,
                "cpu_s_per_photo": steady,
                "cores_used": d.cpu_s / (d.last - d.first),
                "record_bytes": db.appended[-1] / args.count,
                "stored_bytes": stored,
                "others_cores": others,
            }
            print(
                f"drain {label}: {1 / steady:.2f} photos per CPU-second of the consumer and its one image process "
                f"({steady:.3f} CPU-s/photo); wall {d.per_s:.2f} photos/s using {d.cpu_s / (d.last - d.first):.2f} "
                f"cores; start-up {d.start_up_s:.1f} s; {stored / 1e3:.0f} KB stored per applicant; "
                f"other processes {others:.2f} cores",
                flush=True,
            )
        # 2. ingest, status reads, broker
        prefix = f"{b.run_id}-api"
        b.ensure_topics(prefix)
        url, children = b.start_api("capacity", prefix, bench.PROBE_OVERRIDES)  # per-core capacity: no lag gate
        kafka_pid = b.stack.pids()[0]
        t0 = time.time()
        api = asyncio.run(
            _api_phase(
                url,
                api_pid=children[0].popen.pid,
                kafka_pid=kafka_pid,
                key_spec=b.client_keys,
                uploads=args.uploads,
                reads=args.reads,
            )
        )
        api["others_cores"] = b.cpu.mean_between(t0, time.time())[1]
        b.stop(children)
        report["api"] = api
        print(
            f"ingest: {api['accepted']}/{api['uploads']} uploads accepted, {api['api_cpu_s_uploads']:.1f} API CPU-s "
            f"-> {api['accepted'] / api['api_cpu_s_uploads']:.1f} uploads/s per API core; status: "
            f"{api['reads_ok']}/{api['reads']} reads, {api['api_cpu_s_reads']:.1f} CPU-s -> "
            f"{api['reads_ok'] / api['api_cpu_s_reads']:.0f} reads/s per API core; broker: "
            f"{api['appended_bytes'] / 1e6:.0f} MB in {api['kafka_cpu_s_uploads']:.1f} Kafka CPU-s -> "
            f"{api['appended_bytes'] / 1e6 / api['kafka_cpu_s_uploads']:.1f} MB/s per broker core",
            flush=True,
        )
        rates = rates_from(report)
        (args.out / "rates.json").write_text(json.dumps(asdict(rates), indent=2))
        # 3. the check: predicted vs measured drain of the mix by one consumer core
        drain_args.photos, drain_args.count, drain_args.seed = "mix", args.check_count, 11
        classes = [label for _, label, _ in bench_drain.uploads("mix", args.check_count, 11, 1)]
        measured_classes = report["classes"]
        # On a dedicated core (the model): CPU-seconds per photo by class, summed over the check's photos.
        predicted_cpu = sum(1 / rates.drain_per_core[c] for c in classes[1:])
        # On this shared machine: start-up plus each photo's wall time by class, from the class phases just run.
        predicted_wall = rates.consumer_start_s + sum(1 / measured_classes[_nearest(c, measured_classes)]["per_s"]
                                                      for c in classes)  # fmt: skip
        t0 = time.time()
        d = db.drain(1, len(args.classes) + 1)
        measured_wall = d.last - d.launched
        others = b.cpu.mean_between(t0, time.time())[1]
        report["check"] = {
            "photos": d.photos,
            "count": args.check_count,
            "predicted_cpu_s": predicted_cpu,
            "measured_cpu_s": d.cpu_s,
            "predicted_wall_s": predicted_wall,
            "measured_wall_s": measured_wall,
            "cores_used": d.cpu_s / (d.last - d.first),
            "others_cores": others,
        }
        print(
            f"check: {d.photos}/{args.check_count} photos of the mix, one consumer with one image process. "
            f"On a core (CPU-seconds of the consumer and its pool, first to last outcome): predicted "
            f"{predicted_cpu:.1f} s, measured {d.cpu_s:.1f} s, measured/predicted {d.cpu_s / predicted_cpu:.2f}. "
            f"Wall clock on this shared machine (start-up + per-class wall rates of this run): predicted "
            f"{predicted_wall:.1f} s, measured {measured_wall:.1f} s, measured/predicted "
            f"{measured_wall / predicted_wall:.2f} (the consumer got {d.cpu_s / (d.last - d.first):.2f} cores; "
            f"other processes {others:.2f} cores)",
            flush=True,
        )
    finally:
        b.clean_up(keep_stack=args.keep_stack)
        (args.out / "measure.json").write_text(json.dumps(report, indent=2))
    for note in b.notes:
        print(f"note: {note}")


def _nearest(label: str, measured: dict[str, Any]) -> str:
    """``label`` if it was measured, else the measured class nearest in photo bytes."""
    if label in measured:
        return label
    size = SIZE_CLASSES[label].target_bytes
    return min(measured, key=lambda m: abs(SIZE_CLASSES[m].target_bytes - size))


def rates_from(report: dict[str, Any]) -> Rates:
    """The model's inputs from a ``measure`` report; classes not measured take the nearest measured one's figures
    scaled by photo bytes (drain) or copied (storage)."""
    measured: dict[str, dict[str, Any]] = report["classes"]
    api = report["api"]

    drain, record, stored = {}, {}, {}
    for label in SIZE_CLASSES:
        m = _nearest(label, measured)
        drain[label] = 1 / measured[m]["cpu_s_per_photo"]
        record[label] = measured[m]["record_bytes"] * SIZE_CLASSES[label].target_bytes / SIZE_CLASSES[m].target_bytes
        stored[label] = measured[m]["stored_bytes"]
    return Rates(
        ingest_per_core=api["accepted"] / api["api_cpu_s_uploads"],
        status_per_core=api["reads_ok"] / api["api_cpu_s_reads"],
        drain_per_core=drain,
        broker_mb_per_core=api["appended_bytes"] / 1e6 / api["kafka_cpu_s_uploads"],
        record_bytes=record,
        stored_bytes=stored,
        consumer_start_s=statistics.median(c["start_up_s"] for c in measured.values()),
    )


# -------------------------------------------------------------------------------------------------------- plan
def _h(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def fleet_table(wave: Wave, fleet: Fleet) -> str:
    """The fleet as a Markdown table (one column), labelled as a model."""
    t = fleet.timeline
    rows = [
        ("applicants", f"{wave.applicants:,}"),
        ("API processes (1 core each)", f"{fleet.api_processes}"),
        (
            "consumer processes x image processes",
            f"{fleet.consumer_processes} x {fleet.cores_per_consumer} = {fleet.consumer_cores} cores",
        ),
        ("submissions partitions", f"{fleet.partitions}"),
        ("Kafka brokers (cores at peak)", f"{fleet.brokers} ({fleet.broker_cores:.1f} cores)"),
        (f"Kafka disk (RF {wave.replication}, all brokers)", f"{fleet.kafka_disk_bytes / 1e12:.2f} TB"),
        ("object storage (images + status)", f"{fleet.object_bytes / 1e12:.2f} TB"),
        ("peak backlog", f"{t.peak_backlog:,.0f} submissions"),
        ("longest time to status", _h(t.max_time_to_status_s)),
        (
            "every applicant has a status",
            f"{_h(t.all_status_s)} after the opening, {_h(t.all_status_s - wave.duration_h * 3600)} after the close",
        ),
    ]
    lines = ["| model | |", "| --- | ---: |", *(f"| {k} | {v} |" for k, v in rows)]
    return "\n".join(lines)


def plot(timeline: Timeline, title: str, path: Path) -> None:
    """Backlog and time to status over the wave (PNG)."""
    n = len(timeline.time_to_status_s)
    hours = [i * timeline.step_s / 3600 for i in range(n)]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    top.plot(hours, timeline.backlog[:n], label="backlog (accepted, not processed)")
    top.plot(hours, timeline.shed_queue[:n], label="shed, awaiting retry")
    top.set_ylabel("submissions")
    top.legend()
    top.set_title(title)
    bottom.plot(hours, [s / 60 for s in timeline.time_to_status_s], color="tab:red")
    bottom.set_ylabel("time to status (min)")
    bottom.set_xlabel("hours since the wave opened")
    bottom.set_xscale("symlog", linthresh=1)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plan(args: argparse.Namespace) -> None:
    """Size (or simulate) a fleet for a wave from measured rates; print it and plot it."""
    raw = json.loads(args.rates.read_text())
    rates = Rates(**raw)
    wave = Wave(
        args.applicants,
        WAVE_MIX,
        first_hour_share=args.first_hour,
        peak_minute_share=args.peak_minute,
        duration_h=args.duration_h,
        retention_days=args.retention_days,
    )
    fleet = size_fleet(
        rates, wave, status_within_s=args.status_within_min * 60, cores_per_consumer=args.cores_per_consumer
    )
    if args.api or args.consumer_cores:
        api = args.api or fleet.api_processes
        cores = args.consumer_cores or fleet.consumer_cores
        timeline = simulate(rates, wave, api, cores)
        print(
            f"given fleet: {api} API processes, {cores} consumer cores: peak backlog {timeline.peak_backlog:,.0f}, "
            f"peak shed queue {max(timeline.shed_queue):,.0f}, longest time to status "
            f"{_h(timeline.max_time_to_status_s)}, every applicant has a status {_h(timeline.all_status_s)} "
            "after the opening (model)"
        )
        title = f"{wave.applicants:,} applicants, {api} API, {cores} consumer cores (model)"
    else:
        print(fleet_table(wave, fleet))
        for note in fleet.notes:
            print(f"  {note}")
        timeline = fleet.timeline
        title = (
            f"{wave.applicants:,} applicants, {fleet.api_processes} API, {fleet.consumer_cores} consumer cores (model)"
        )
    if args.png:
        plot(timeline, title, args.png)
        print(f"plot: {args.png}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="measure per-core rates on the private stack, then the check")
    m.add_argument("--classes", default=",".join(SIZE_CLASSES), help="size classes drained (others: the nearest)")
    m.add_argument("--count", type=int, default=80, help="submissions drained per class (80)")
    m.add_argument("--uploads", type=int, default=300, help="uploads for the ingest figure (300)")
    m.add_argument("--reads", type=int, default=3000, help="status reads for the status figure (3000)")
    m.add_argument("--check-count", type=int, default=200, help="submissions of the mix in the check (200)")
    m.add_argument("--timeout", type=float, default=300.0, help="longest drain of one phase, in s")
    m.add_argument("--out", type=Path, default=None, help="folder for rates.json, measure.json and logs")
    m.add_argument("--keep-stack", action="store_true", help="leave the private stack running")
    m.set_defaults(func=measure)
    pl = sub.add_parser("plan", help="size or simulate a fleet for a wave from measured rates")
    pl.add_argument("--rates", type=Path, required=True, help="rates.json written by measure")
    pl.add_argument("--applicants", type=int, required=True)
    pl.add_argument("--first-hour", type=float, default=1 / 3, help="share of the wave in its first hour (1/3)")
    pl.add_argument("--peak-minute", type=float, default=0.02, help="share of the wave in its first minute (0.02)")
    pl.add_argument("--duration-h", type=float, default=72.0, help="hours the wave stays open (72)")
    pl.add_argument("--retention-days", type=float, default=7.0, help="submissions topic retention (7 days)")
    pl.add_argument("--status-within-min", type=float, default=60.0, help="target time to status, in min (60)")
    pl.add_argument("--cores-per-consumer", type=int, default=4, help="image processes per consumer (4)")
    pl.add_argument("--api", type=int, default=0, help="simulate this many API processes instead of sizing")
    pl.add_argument("--consumer-cores", type=int, default=0, help="simulate this many consumer cores")
    pl.add_argument("--png", type=Path, default=None, help="write the backlog / time-to-status plot here")
    pl.set_defaults(func=plan)
    args = p.parse_args(argv)
    if args.command == "measure":
        args.classes = [c for c in args.classes.split(",") if c]
        unknown = [c for c in args.classes if c not in SIZE_CLASSES]
        if unknown or not args.classes:
            p.error(f"unknown size classes {unknown}: choose among {', '.join(SIZE_CLASSES)}")
        if args.out is None:
            args.out = REPO / "reports" / f"capacity-{datetime.now():%Y%m%d-%H%M%S}"
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    bench.interrupt_on_sigterm()
    args.func(args)


if __name__ == "__main__":
    main()
