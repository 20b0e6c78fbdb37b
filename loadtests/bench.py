"""The load benchmark: ceilings, open-loop latency and a wave-opening spike (or a soak), in one bounded run.

    .venv/bin/python -m loadtests.bench --shape spike --duration 60 --out reports/bench-$(date +%Y%m%d-%H%M)
    .venv/bin/python -m loadtests.bench --quick --out reports/bench-quick     # ~2 minutes

What it does, all on 127.0.0.1 and on its own stack (``deploy/local/stack.sh`` on ports 29092/29000, folder
``/tmp/lt-stack``; never the default one), with its own topic prefix and API ports:

1. generates (once, cached) the photo set, and times the image pipeline on one core per size class;
2. per photo size (0.2, 0.5, 1, 3 MB; only 0.5 MB with ``--quick``), back to back:
   a. the bare aiohttp ceiling (``loadtests/baseline_app.py``) driven by locust (closed loop, no think time);
   b. the real ingest API (``intake serve``) driven by the same locust users at the same body size: its
      capacity, the sustainable rate (without event-loop-lag admission, :data:`PROBE_OVERRIDES`: these users
      send again the moment they are answered, so refusals would make the probe measure them instead);
   c. Kafka's ``ProducerPerformance`` (acks=all) at the same record size on the same broker;
   d. the open-loop generator (``--generator``: Python or Go) at 80 %, 250 % and 10× of the sustainable rate,
      against the API as configured (tail latency below the ceiling; above it, how much it still accepts and
      how fast it refuses the rest);
3. the load shape (``--shape spike`` or ``soak``) with realistic applicants against the API and consumers
   (``intake consume``), sampling the consumer backlog from Kafka offsets, then watching it drain;
4. stops every process it started, deletes its topics, stops the stack if it started it, and writes
   ``results.json``, ``report.md`` and the charts into ``--out``.

CPU use by other processes on the machine is sampled throughout and reported next to each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import math
import os
import random
import re
import resource
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from minio import Minio
from minio.deleteobjects import DeleteObject

from consumers.photo_task import check_photo
from consumers.runner import pool_size
from intake.kafka import ensure_topics
from intake.metrics import MULTIPROC_ENV
from intake.settings import Settings, load_settings
from intake.topics import TopicSpec, topic_names, topic_specs
from loadtests import outcomes, report
from loadtests.payloads import SIZE_CLASSES, BodyFactory, cache_dir, photo_set
from loadtests.procs import REPO, Procs, Stack, cli_argv, free_port, pin, producer_perf, python, wait_http
from loadtests.samplers import BacklogRow, BacklogSampler, CpuSampler
from loadtests.shapes import SoakSchedule, SpikeSchedule
from processors.photo import PhotoPolicy

V = TypeVar("V")
LOCUSTFILE = REPO / "loadtests" / "locustfile.py"
GENERATOR_SATURATED_CORES = 0.85
"""A load generator (one process) using this much CPU is saturated: the load it offered is not what was asked."""
PROBE_OVERRIDES = {"INTAKE_MAX_LOOP_LAG_MS": "0"}
"""Settings of the API under the closed-loop probe: its capacity, every CPU cycle spent on accepting."""
GENERATOR_LATE_MS = 100.0
"""An open-loop generator launching requests later than this (p99), or not at all, is saturated too (it may be
starved by other processes rather than busy itself)."""


@dataclass(frozen=True)
class Plan:
    """Sizes and durations of one benchmark run."""

    sizes: list[str]
    phase_s: float
    warmup_s: float
    below_s: float
    above_s: float
    probe_users: int
    duration_s: float
    peak_users: int
    drain_s: float
    perf_bytes: int
    pipeline_reps: int

    @classmethod
    def make(cls, args: argparse.Namespace) -> Plan:
        quick = bool(args.quick)
        sizes = args.sizes.split(",") if args.sizes else (["500k"] if quick else ["200k", "500k", "1m", "3m"])
        for s in sizes:
            if s not in SIZE_CLASSES:
                raise SystemExit(f"unknown size class {s!r}: one of {', '.join(SIZE_CLASSES)}")
        duration = float(args.duration if args.duration is not None else (25 if quick else 60))
        default_peak = 600 if quick else 1500
        return cls(
            sizes=sizes,
            phase_s=float(args.phase_seconds or (6 if quick else 10)),
            warmup_s=1.0 if quick else 1.5,
            below_s=6.0 if quick else 10.0,
            above_s=5.0 if quick else 8.0,
            probe_users=args.probe_users,
            duration_s=duration,
            peak_users=int(args.peak_users or (default_peak if args.shape == "spike" else default_peak // 4)),
            drain_s=float(args.drain_seconds if args.drain_seconds is not None else (15 if quick else 60)),
            perf_bytes=400_000_000 if quick else 800_000_000,
            pipeline_reps=1 if quick else 3,
        )


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _summary(s: outcomes.Summary) -> dict[str, Any]:
    return dataclasses.asdict(s)


PIN_GROUPS = ("api", "bare", "generator", "consumer", "stack", "bench")
"""Process groups ``--pin`` can place: the servers under test, the load generator, the consumers, Kafka and MinIO
(every thread), and this script."""


def parse_pins(specs: list[str]) -> dict[str, str]:
    """``["api,bare=0", "generator,consumer,stack,bench=1"]`` -> ``{"api": "0", ...}``; ValueError naming the
    problem for an unknown group or a CPU list that is not a ``taskset -c`` list of this machine's CPUs."""
    pins: dict[str, str] = {}
    ncpu = os.cpu_count() or 1
    for spec in specs:
        groups, sep, cpus = spec.partition("=")
        if not sep or not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", cpus):
            raise ValueError(f"--pin {spec!r}: expected GROUP[,GROUP…]=CPUS, e.g. api,bare=0")
        if any(int(n) >= ncpu for n in re.findall(r"\d+", cpus)):
            raise ValueError(f"--pin {spec!r}: this machine has CPUs 0-{ncpu - 1}")
        for group in groups.split(","):
            if group not in PIN_GROUPS:
                raise ValueError(f"--pin {spec!r}: unknown group {group!r} (one of {', '.join(PIN_GROUPS)})")
            pins[group] = cpus
    return pins


def _cpu_set(cpus: str) -> set[int]:
    out: set[int] = set()
    for part in cpus.split(","):
        first, _, last = part.partition("-")
        out.update(range(int(first), int(last or first) + 1))
    return out


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.plan = Plan.make(args)
        self.out: Path = args.out
        self.out.mkdir(parents=True, exist_ok=True)
        self.procs = Procs(self.out / "logs")
        self.stack = Stack()
        self.run_id = "lt-" + datetime.now().strftime("%m%d%H%M%S")
        self.topics: list[str] = []
        self.roles: dict[int, str] = {}
        """pid of a child -> its process group in the CPU accounting (api, bare, generator, consumer)."""
        self.pins = parse_pins(args.pin)
        """process group (api, bare, generator, consumer, stack, bench) -> CPUs (``--pin``)."""
        self.cpu = CpuSampler(self.stack.pids, groups=self.process_groups)
        self.phases: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.service_env: dict[str, str] = {}
        self.client_keys = f"load:run:{secrets.token_hex(24)}:submit"
        self.t0 = time.time()
        self.tree: Path | None = args.tree
        """The checkout the API and the consumers run from (``--tree``), or None: this working tree."""

    # ---------------------------------------------------------------------------------------- environment
    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INTAKE_", "LOCUST_"))}
        env["PYTHONPATH"] = str(REPO)
        env["INTAKE_LOAD_PHOTO_CACHE"] = str(cache_dir().parent)
        env["INTAKE_CLIENT_KEYS"] = self.client_keys  # the load generators sign with it
        return env

    def api_env(self, prefix: str, port: int) -> dict[str, str]:
        return {
            **self.base_env(),
            **self.service_env,
            "INTAKE_CLIENT_KEYS": self.client_keys,  # this run's own API key, over the stack's
            "INTAKE_TOPIC_PREFIX": prefix,
            "INTAKE_CONSUMER_GROUP": f"{prefix}-workers",
            "INTAKE_BUCKET_PHOTOS": f"{self.run_id}-ktp",  # this run's own buckets, emptied at the end
            "INTAKE_BUCKET_STATUS": f"{self.run_id}-status",
            "INTAKE_BUCKET_REGISTRATIONS": f"{self.run_id}-registrations",
            "INTAKE_BUCKET_KEYS": f"{self.run_id}-keys",
            "INTAKE_HTTP_HOST": "127.0.0.1",
            "INTAKE_HTTP_PORT": str(port),
            "INTAKE_CONSUMER_METRICS_PORT": "0",
            "INTAKE_HTTP_PROCESSES": "1",  # --api-procs processes are started here, one each
            # All load comes from 127.0.0.1; the generators send one synthetic address per applicant instead.
            "INTAKE_TRUST_FORWARDED": "true",
            "INTAKE_LOG_LEVEL": self.args.log_level,
            **({"INTAKE_POOL_WORKERS": str(self.args.pool_workers)} if self.args.pool_workers else {}),
            **dict(kv.split("=", 1) for kv in self.args.api_env),
            **({"PYTHONPATH": str(self.tree)} if self.tree is not None else {}),
        }

    def settings(self, prefix: str) -> Settings:
        return load_settings(self.api_env(prefix, 8081))

    def process_groups(self) -> dict[str, list[int]]:
        """Root pids by group for :class:`CpuSampler`: the API, the bare reader, the load generators, the
        consumers (children of this benchmark, by role) and the stack's Kafka and MinIO."""
        groups: dict[str, list[int]] = {"api": [], "bare": [], "generator": [], "consumer": []}
        for child in list(self.procs.children):
            role = self.roles.get(child.popen.pid)
            if role is not None and child.popen.poll() is None:
                groups[role].append(child.popen.pid)
        groups.update({name: [pid] for name, pid in self.stack.named_pids().items()})
        return groups

    def started(self, child: Any, role: str) -> Any:
        self.roles[child.popen.pid] = role
        return child

    def spawn(self, name: str, argv: list[str], env: dict[str, str], role: str) -> Any:
        """Start a child of process group ``role``, on the CPUs ``--pin`` gives that group."""
        return self.started(self.procs.start(name, argv, env, cpus=self.pins.get(role)), role)

    def cpu_per_request(self, t0: float, t1: float, requests: int) -> dict[str, Any]:
        """Each process group's mean cores over ``[t0, t1]`` and CPU-ms per request (``requests`` answered in
        that window); the generator is flagged saturated near one core (it is one process)."""
        cores = self.cpu.groups_between(t0, t1)
        per_req = {g: c * (t1 - t0) / requests * 1000 if requests else math.nan for g, c in cores.items()}
        peaks = self.cpu.peaks_between(t0, t1)
        return {
            "cores": cores,
            "ms_per_request": per_req,
            "others_cores": self.cpu.mean_between(t0, t1)[1],
            "peak_cores": peaks,
            "run_queue_wait": self.cpu.waits_between(t0, t1),
            # one second near a core per generator process is enough: a mean over the phase hides a spike's burst
            "generator_saturated": peaks.get("generator", 0.0) >= GENERATOR_SATURATED_CORES * self.args.generators,
        }

    def phase(self, name: str, t0: float, t1: float) -> None:
        ours, others = self.cpu.mean_between(t0, t1)
        self.phases.append({"name": name, "t0": t0, "t1": t1, "ours": ours, "others": others})
        _log(f"{name}: {t1 - t0:.1f}s, our processes {ours:.2f} cores, others {others:.2f} cores")

    # -------------------------------------------------------------------------------------------- kafka
    def ensure_topics(self, prefix: str) -> None:
        settings = self.settings(prefix)
        asyncio.run(ensure_topics(settings))
        self.topics += [s.name for s in topic_specs(settings)]

    def create_perf_topic(self, name: str, max_bytes: int) -> None:
        spec = TopicSpec(name, 6, 1, {"max.message.bytes": str(max_bytes), "retention.ms": "3600000"})
        asyncio.run(ensure_topics(self.settings(self.run_id), [spec]))
        self.topics.append(name)

    def delete_topics(self, names: list[str]) -> None:
        if not names:
            return

        async def run() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.stack.bootstrap, request_timeout_ms=30_000)
            async with asyncio.timeout(60):
                await admin.start()
                try:
                    existing = set(await admin.list_topics())
                    doomed = [n for n in names if n in existing]
                    if doomed:
                        await admin.delete_topics(doomed)
                finally:
                    await admin.close()

        try:
            asyncio.run(run())
        except Exception as exc:  # cleanup is best effort; say so
            self.notes.append(f"could not delete topics {names}: {type(exc).__name__}: {exc}")
        self.topics = [t for t in self.topics if t not in names]

    def purge_stale_topics(self) -> None:
        """Topics left by an earlier, interrupted benchmark on this private stack (they hold gigabytes)."""

        async def names() -> list[str]:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.stack.bootstrap)
            await admin.start()
            try:
                return [t for t in await admin.list_topics() if t.startswith("lt-")]
            finally:
                await admin.close()

        stale = asyncio.run(names())
        if stale:
            _log(f"deleting {len(stale)} stale benchmark topics")
            self.delete_topics(stale)

    def in_alternating_rounds(
        self, variants: Sequence[V], rounds: int, measure: Callable[[V, int], list[dict[str, Any]]], keep_stack: bool
    ) -> list[dict[str, Any]]:
        """Start the CPU sampler and the private stack, ``measure(variant, round)`` each variant in each round, the
        order reversed every other round (so neither drift nor warm-up favours one), and clean up even on error.
        Returns every row measured."""
        self.cpu.start()
        rows: list[dict[str, Any]] = []
        try:
            self.stack.start()
            self.service_env = self.stack.service_env()
            self.purge_stale_topics()
            self.purge_buckets(only_this_run=False)
            for r in range(rounds):
                for variant in variants if r % 2 == 0 else list(reversed(variants)):
                    rows.extend(measure(variant, r))
        finally:
            self.clean_up(keep_stack=keep_stack)
        return rows

    def clean_up(self, keep_stack: bool) -> None:
        """After a run: stop its processes, delete its topics and buckets, stop the private stack unless
        ``keep_stack`` (only if this run started it; then Kafka's pending deletions are removed), stop sampling."""
        self.procs.stop_all()
        with contextlib.suppress(Exception):
            self.delete_topics(list(self.topics))
        if self.service_env:
            self.purge_buckets(only_this_run=True)
        if not keep_stack:
            self.stack.stop()
        self.cpu.stop()

    def purge_buckets(self, only_this_run: bool) -> None:
        """Empty and remove the benchmark's MinIO buckets (this run's, or every ``lt-`` one at the start)."""
        try:
            client = Minio(
                self.service_env["INTAKE_S3_ENDPOINT"],
                access_key=self.service_env["INTAKE_S3_ACCESS_KEY"],
                secret_key=self.service_env["INTAKE_S3_SECRET_KEY"],
                secure=False,
            )
            for bucket in client.list_buckets():
                name = bucket.name
                if not name.startswith(self.run_id if only_this_run else "lt-"):
                    continue
                doomed = (
                    DeleteObject(o.object_name) for o in client.list_objects(name, recursive=True) if o.object_name
                )
                for error in client.remove_objects(name, doomed):
                    raise RuntimeError(str(error))
                client.remove_bucket(name)
        except Exception as exc:  # cleanup is best effort; say so
            self.notes.append(f"could not remove the benchmark's buckets: {type(exc).__name__}: {exc}")

    # ---------------------------------------------------------------------------------------- processes
    def shared_metrics(self, name: str, env: dict[str, str]) -> dict[str, str]:
        """``env`` for the processes of one server start; with ``--api-procs`` > 1 they share a fresh metrics
        directory (``PROMETHEUS_MULTIPROC_DIR``, as ``intake serve`` gives its processes), so a scrape of any one
        answers for all of them."""
        if self.args.api_procs <= 1:
            return env
        folder = self.out / "metrics" / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return {**env, MULTIPROC_ENV: str(folder)}

    def api_argv(self) -> list[str]:
        """How an API process is started (from :attr:`tree` when set)."""
        return cli_argv("serve", self.tree)

    def start_api(self, name: str, prefix: str, overrides: dict[str, str] | None = None) -> tuple[str, list[Any]]:
        """``--api-procs`` API processes on this run's settings (``overrides`` last) and their URL once ready."""
        port = free_port()
        env = self.shared_metrics(name, {**self.api_env(prefix, port), **(overrides or {})})
        return self.start_servers(name, "api", port, self.api_argv(), env=env, ready_path="/readyz")

    def start_consumers(self, name: str, prefix: str, n: int) -> list[Any]:
        """``n`` ``intake consume`` processes (from :attr:`tree` when set) on this run's settings for ``prefix``."""
        argv = cli_argv("consume", self.tree)
        return [self.spawn(f"{name}-consumer{i}", argv, self.api_env(prefix, 1), "consumer") for i in range(n)]

    def start_baseline(self, name: str, extra_args: tuple[str, ...] = ()) -> tuple[str, list[Any]]:
        port = free_port()
        argv = [python(), "-m", "loadtests.baseline_app", "--port", str(port), *extra_args]
        return self.start_servers(name, "bare", port, argv, env=self.base_env(), ready_path="/healthz")

    def start_servers(
        self, name: str, role: str, port: int, argv: list[str], *, env: dict[str, str], ready_path: str
    ) -> tuple[str, list[Any]]:
        """``--api-procs`` processes of one server listening on ``port`` (process group ``role``), and its URL
        once ``ready_path`` answers. Raises RuntimeError when it does not within 45 s."""
        children = [self.spawn(f"{name}-{role}{i}", argv, env, role) for i in range(self.args.api_procs)]
        url = f"http://127.0.0.1:{port}"
        if not wait_http(url + ready_path, 45):
            raise RuntimeError(f"{name}: the {role} server did not become ready (see {self.procs.log_dir})")
        return url, children

    def stop(self, children: list[Any]) -> None:
        for c in children:
            self.procs.stop(c)

    def locust(self, name: str, *, url: str, folder: Path, env_extra: dict[str, str], argv_extra: list[str],
               run_time_s: float) -> Path:  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        events = folder / "events.csv"
        env = {**self.base_env(), **env_extra, "INTAKE_LOAD_EVENTS": str(events)}
        argv = [
            python(), "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-H", url,
            "--run-time", f"{run_time_s:.0f}s", "--stop-timeout", "3", "--csv", str(folder / "locust"),
            "--csv-full-history", "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0",
            *(["--processes", str(self.args.generators)] if self.args.generators > 1 else []),
            *argv_extra,
        ]  # fmt: skip
        (folder / "command.txt").write_text(
            " ".join(f"{k}={shlex.quote(v)}" for k, v in env_extra.items()) + " " + shlex.join(argv) + "\n"
        )
        child = self.spawn(name, argv, env, "generator")
        code = self.procs.wait(child, run_time_s + 60)
        self.procs.stop(child)
        if code != 0:
            self.notes.append(f"locust {name} exited with {code} (see logs/{name}.log)")
        return events

    def open_loop(
        self, name: str, *, url: str, rate: float, duration_s: float, size: str, out: Path, spike: bool = False
    ) -> dict[str, Any]:
        """``--generators`` open-loop processes, each launching ``rate / generators`` requests per second (one
        Python process cannot offer hundreds of 0.5 MB uploads per second); their rows are merged. With
        ``--generator go``, one process of :mod:`loadtests.gogen` offers the whole rate. With ``spike``, ``rate``
        is the peak of a wave's opening over ``duration_s`` (the generators' ``--spike-peak``)."""
        n = 1 if self.args.generator == "go" else max(1, self.args.generators)
        module = "loadtests.gogen" if self.args.generator == "go" else "loadtests.openloop"
        children = []
        for k in range(n):
            argv = [
                python(), "-m", module, "--url", url, "--spike-peak" if spike else "--rate", f"{rate / n:.3f}",
                "--duration",
                str(duration_s), "--photos", size, "--out", str(out if n == 1 else outcomes.part_path(out, k)),
                "--timeout", "30", "--max-outstanding", str(max(1, 2000 // n)),
                "--max-requests", str(math.ceil(rate / n * duration_s) + 1),  # all it plans, a spike's too
                *(["--expect"] if self.args.expect else []),
            ]  # fmt: skip
            children.append(self.spawn(f"{name}-{k}" if n > 1 else name, argv, self.base_env(), "generator"))
        for child in children:
            self.procs.wait(child, duration_s + 60)
            self.procs.stop(child)
        rows = outcomes.read_all(out)
        late = [r for r in rows if r.outcome == "client_saturated"]
        s = outcomes.summarise(rows)
        if s.requests and not late:
            s = outcomes.summarise(rows, min(r.start for r in rows), min(r.start for r in rows) + duration_s)
        late_p99 = float("nan")
        for k in range(n):
            log_text = (self.procs.log_dir / f"{f'{name}-{k}' if n > 1 else name}.log").read_text(errors="replace")
            if "client lateness p99" in log_text:
                with contextlib.suppress(ValueError):
                    late_k = float(log_text.rsplit("client lateness p99", 1)[1].split("ms")[0])
                    late_p99 = late_k if math.isnan(late_p99) else max(late_p99, late_k)
        first = min((r.start for r in rows), default=math.nan)
        return {
            "rate": rate,
            "planned": len(rows),
            "launched": len(rows) - len(late),
            "summary": _summary(s),
            "client_late_p99_ms": late_p99,
            # the seconds in which its requests were due: CPU per request is measured over these, not over the
            # generator's planning before them, in which a server only idles
            "window": [first, first + duration_s],
        }

    def open_loop_cpu(self, ol: dict[str, Any], t0: float, t1: float) -> dict[str, Any]:
        """:meth:`cpu_per_request` of an :meth:`open_loop` run (called within ``[t0, t1]``) over the window in
        which its requests were due (the whole call when it sent none), flagging the generator saturated when it
        launched late or not at all (the Go one runs on every core it gets, so only lateness says so)."""
        w0, w1 = ol["window"] if not math.isnan(ol["window"][0]) else (t0, t1)
        cpu = self.cpu_per_request(w0, min(w1, t1), int(ol["summary"]["accepted"]))
        late = ol["client_late_p99_ms"] > GENERATOR_LATE_MS or ol["launched"] < ol["planned"]
        busy = cpu["generator_saturated"] and self.args.generator != "go"
        cpu["generator_saturated"] = busy or late
        return cpu

    # -------------------------------------------------------------------------------------------- phases
    def pipeline_rate(self) -> dict[str, Any]:
        policy = PhotoPolicy()
        photos = photo_set()
        check_photo(photos["200k"][0], policy)  # imports and warm-up
        per_core: dict[str, float] = {}
        verdicts: dict[str, str] = {}
        for label, imgs in photos.items():
            times = []
            for i in range(self.plan.pipeline_reps):
                t = time.perf_counter()
                v = check_photo(imgs[i % len(imgs)], policy)
                times.append(time.perf_counter() - t)
                verdicts[label] = v.reason or "accepted"
            per_core[label] = 1.0 / statistics.median(times)
        mix_time = sum(SIZE_CLASSES[k].weight / per_core[k] for k in per_core) / sum(
            SIZE_CLASSES[k].weight for k in per_core
        )
        workers = self.args.consumers * pool_size(self.settings(self.run_id))
        return {
            "per_core_images_per_s": per_core,
            "mix_per_core": 1.0 / mix_time,
            "workers": workers,
            "verdicts": verdicts,
        }

    def ceiling(self, size: str) -> dict[str, Any]:
        plan = self.plan
        photos = photo_set([size])[size]
        body_bytes = int(statistics.mean(len(p) for p in photos)) + BodyFactory().overhead()
        folder = self.out / "ceilings" / size
        probe_env = {
            "INTAKE_LOAD_SHAPE": "none",
            "INTAKE_LOAD_MODE": "probe",
            "INTAKE_LOAD_PHOTOS": size,
        }
        users = ["-u", str(plan.probe_users), "-r", str(plan.probe_users)]
        result: dict[str, Any] = {
            "size_class": size, "body_bytes": body_bytes, "users": plan.probe_users, "window_s": plan.phase_s,
        }  # fmt: skip
        t_start = time.time()

        def measured(events: Path) -> tuple[outcomes.Summary, dict[str, Any]]:
            rows = outcomes.read_all(events)
            if not rows:
                return outcomes.summarise([]), {}
            first = min(r.start for r in rows)
            w0, w1 = first + plan.warmup_s, first + plan.warmup_s + plan.phase_s - 1.0
            s = outcomes.summarise(rows, w0, w1)
            return s, self.cpu_per_request(w0, w1, s.accepted)

        def probe(name: str, url: str, phase: str) -> tuple[outcomes.Summary, dict[str, Any]]:
            """The closed-loop probe against ``url``, measured in its window after warm-up."""
            t0 = time.time()
            events = self.locust(
                f"{size}-locust-{name}",
                url=url,
                folder=folder / name,
                env_extra=probe_env,
                argv_extra=users,
                run_time_s=plan.phase_s + plan.warmup_s,
            )
            self.phase(f"{size} {phase}", t0, time.time())
            return measured(events)

        # a. bare aiohttp
        url, bare = self.start_baseline(f"{size}")
        bare_summary, result["bare_cpu"] = probe("bare", url, "bare aiohttp")
        result["bare"] = _summary(bare_summary)
        self.stop(bare)
        # b. ingest
        prefix = f"{self.run_id}-c{size}"
        self.ensure_topics(prefix)
        # The closed loop measures capacity, so without event-loop-lag admission: its users send again the moment
        # they are answered, a refusal too, so with it they would measure how fast refusals come back.
        url, api = self.start_api(f"{size}", prefix, PROBE_OVERRIDES)
        try:
            ingest, result["ingest_cpu"] = probe("ingest", url, "ingest")
            result["ingest"] = _summary(ingest)
            # c. Kafka's own producer at the same record size
            settings = self.settings(prefix)
            perf_topic = f"{self.run_id}-perf{size}"
            self.create_perf_topic(perf_topic, settings.limits.max_message_bytes)
            records = max(100, min(6000, plan.perf_bytes // body_bytes))  # enough to amortise JVM warm-up
            t0 = time.time()
            perf = producer_perf(
                bootstrap=self.stack.bootstrap,
                topic=perf_topic,
                records=records,
                record_bytes=body_bytes,
                max_request_bytes=settings.limits.max_message_bytes,
                log=folder / "producer-perf.txt",
                timeout_s=120,
            )
            self.phase(f"{size} ProducerPerformance", t0, time.time())
            result["producer"] = dataclasses.asdict(perf) if perf else None
            if perf is None:
                self.notes.append(f"{size}: ProducerPerformance gave no result (see {folder}/producer-perf.txt)")
            self.delete_topics([perf_topic])
            # d. open loop below and above the sustainable rate, against the API as configured
            self.stop(api)
            url, api = self.start_api(f"{size}-open", prefix)
            sustainable = ingest.accepted_per_s
            result["open_loop"] = []
            if sustainable > 0:
                for label, kind, frac, dur in (
                    ("80 %", "below", 0.8, plan.below_s),
                    ("250 %", "above", 2.5, plan.above_s),
                    ("10×", "above", 10.0, plan.above_s),
                ):
                    t0 = time.time()
                    ol = self.open_loop(
                        f"{size}-openloop-{kind}-{frac * 100:.0f}",
                        url=url,
                        rate=frac * sustainable,
                        duration_s=dur,
                        size=size,
                        out=folder / f"openloop-{kind}-{frac * 100:.0f}.csv",
                    )
                    t1 = time.time()
                    self.phase(f"{size} open loop {label}", t0, t1)
                    cpu = self.open_loop_cpu(ol, t0, t1)
                    result["open_loop"].append({"label": label, "kind": kind, "fraction": frac, **ol, "cpu": cpu})
                    time.sleep(1.0)
        finally:
            self.stop(api)
            self.delete_topics([t for t in self.topics if t.startswith(prefix + ".")])
        # e. the bare reader at the rate of the API's 80 % run, with the same generator: CPU per request at equal
        # rates (the closed loop's two rates differ by the API's whole capacity, and a server's CPU per request
        # falls as its rate rises, since wake-ups are shared), so this pair is what the CPU target reads
        below = next((ol for ol in result["open_loop"] if ol["kind"] == "below"), None)
        if below is not None:
            url, bare = self.start_baseline(f"{size}-paced")
            try:
                t0 = time.time()
                ol = self.open_loop(
                    f"{size}-openloop-bare-80",
                    url=url,
                    rate=below["rate"],
                    duration_s=plan.below_s,
                    size=size,
                    out=folder / "openloop-bare-80.csv",
                )
                t1 = time.time()
                self.phase(f"{size} bare aiohttp, open loop {below['label']}", t0, t1)
                result["bare_paced"] = {"label": below["label"], **ol, "cpu": self.open_loop_cpu(ol, t0, t1)}
            finally:
                self.stop(bare)
        result["cpu_others_cores"] = self.cpu.mean_between(t_start, time.time())[1]
        return result

    def scrape_metrics(self, url: str, path: Path) -> str:
        """The API's Prometheus exposition (its own request durations by outcome), also saved to ``path``; ""
        when it cannot be read (noted)."""
        try:
            with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
                text = bytes(resp.read()).decode()
        except OSError as exc:
            self.notes.append(f"could not read the API's metrics: {type(exc).__name__}: {exc}")
            return ""
        path.write_text(text)
        return text

    def load_run(self) -> dict[str, Any]:
        plan, args = self.plan, self.args
        folder = self.out / "run"
        folder.mkdir(parents=True, exist_ok=True)
        prefix = f"{self.run_id}-s"
        self.ensure_topics(prefix)
        settings = self.settings(prefix)
        url, api = self.start_api("run", prefix)
        consumers = self.start_consumers("run", prefix, args.consumers)
        sampler = BacklogSampler(
            self.stack.bootstrap, topic_names(settings).submissions, settings.kafka.group_id, settings.kafka.partitions
        )
        sampler.start()
        shape_env: dict[str, str]
        if args.shape == "spike":
            spike = SpikeSchedule.for_duration(plan.duration_s, plan.peak_users)
            shape_env = spike.env()
            duration = spike.duration_s
        else:
            soak = SoakSchedule.for_duration(plan.duration_s, plan.peak_users)
            shape_env = soak.env()
            duration = soak.duration_s
        env = {
            "INTAKE_LOAD_SHAPE": args.shape,
            "INTAKE_LOAD_MODE": "applicant",
            "INTAKE_LOAD_PHOTOS": args.photos,
            "INTAKE_LOAD_MAX_POLLS": str(args.max_polls),
            "INTAKE_LOAD_WAIT": "0.5,3",
            **shape_env,
        }
        t0 = time.time()
        exposition = ""
        try:
            events = self.locust(
                "run-locust", url=url, folder=folder, env_extra=env, argv_extra=[], run_time_s=duration + 5
            )
            t1 = time.time()
            self.phase(f"{args.shape} load", t0, t1)
            exposition = self.scrape_metrics(url, folder / "api-metrics.txt")
            self.stop(api)
            # Drain: the consumers go on until the backlog is empty or the window ends.
            deadline = time.time() + plan.drain_s
            while time.time() < deadline:
                last = sampler.latest()
                if last is not None and last.t > t1 + 2 and last.backlog == 0:
                    break
                if any(c.popen.poll() is not None for c in consumers):
                    self.notes.append("a consumer exited during the drain (see logs/run-consumer*.log)")
                    break
                time.sleep(1.0)
            t2 = time.time()
            self.phase("drain", t1, t2)
        finally:
            sampler.stop()
            self.stop(api)
            self.stop(consumers)
        sampler.write(folder / "backlog.csv")
        rows = outcomes.read_all(events)
        error = f"{sampler.errors} failed samples, the last: {sampler.error}" if sampler.errors else sampler.error
        summary = self.run_summary(rows, sampler.rows, error, t0=t0, t1=t1, duration=duration)
        summary["cpu"] = self.cpu_per_request(t0, t1, int(summary["submissions_accepted"]))
        summary["server"] = outcomes.server_durations(exposition) if exposition else {}
        return summary

    def run_summary(
        self, rows: list[outcomes.Outcome], backlog: list[BacklogRow], sampler_error: str, *, t0: float, t1: float,
        duration: float,
    ) -> dict[str, Any]:  # fmt: skip
        reg = [r for r in rows if r.kind == "register"]
        status = [r for r in rows if r.kind == "status"]
        per_sec: dict[int, int] = {}
        for r in reg:
            if r.outcome == "accepted":
                per_sec[int(r.end - t0)] = per_sec.get(int(r.end - t0), 0) + 1
        abandoned = sum(
            1
            for r in reg
            if r.outcome != "accepted"
            and (r.attempt >= int(os.environ.get("INTAKE_LOAD_MAX_ATTEMPTS", "6")) or r.status not in (0, 429, 503))
        )
        s = outcomes.summarise(reg, t0, max(t1, t0 + 1e-3))
        return {
            "shape": self.args.shape,
            "photos": self.args.photos,
            "duration_s": duration,
            "peak_users": self.plan.peak_users,
            "t0": t0,
            "t1": t1,
            "summary": _summary(s),
            "peak_accepted_per_s": max(per_sec.values(), default=0),
            "submissions_accepted": s.accepted,
            "submissions_abandoned": abandoned,
            "status_summary": {
                "ok": sum(1 for r in status if r.status in (200, 304)),
                "failed": sum(1 for r in status if r.status not in (200, 304)),
            },
            "backlog": backlog_stats(backlog, t1, sampler_error),
        }

    # ---------------------------------------------------------------------------------------------- main
    def run(self) -> Path:
        plan, args = self.plan, self.args
        _log(f"plan: {plan}")
        resource.setrlimit(resource.RLIMIT_NOFILE, _nofile())  # 1500 users = 1500 sockets on each side
        if "bench" in self.pins:
            os.sched_setaffinity(0, _cpu_set(self.pins["bench"]))
        if self.pins:
            self.notes.append("pinned (taskset): " + ", ".join(f"{g} on CPU {c}" for g, c in self.pins.items()))
        self.cpu.start()
        results: dict[str, Any] = {"ceilings": []}
        try:
            t = time.time()
            photo_set()
            _log(f"photo set ready in {cache_dir()} ({time.time() - t:.1f}s)")
            self.service_env = {}
            t = time.time()
            _log("starting the private stack")
            self.stack.start()
            # every run places the stack, so one started pinned and kept (--keep-stack) does not stay pinned
            pin(self.stack.pids(), self.pins.get("stack", f"0-{(os.cpu_count() or 1) - 1}"))
            self.service_env = self.stack.service_env()
            self.phase("stack start", t, time.time())
            self.purge_stale_topics()
            self.purge_buckets(only_this_run=False)
            t = time.time()
            results["pipeline"] = self.pipeline_rate()
            self.phase("image pipeline timing", t, time.time())
            if not args.skip_ceilings:
                for size in plan.sizes:
                    _log(f"ceilings for {size}")
                    results["ceilings"].append(self.ceiling(size))
            if args.shape != "none":
                _log(f"{args.shape} run: {plan.duration_s:.0f}s, peak {plan.peak_users} users")
                results["run"] = self.load_run()
        finally:
            self.clean_up(keep_stack=args.keep_stack)
            self.cpu.write(self.out / "cpu.csv")
            self.cpu.write_groups(self.out / "cpu_groups.csv")
        results["phases"] = self.phases
        results["meta"] = {
            "date": datetime.now().isoformat(timespec="seconds"),
            "t0": self.t0,
            "command": " ".join([".venv/bin/python -m loadtests.bench", *sys.argv[1:]]),
            "git": _git_rev(REPO),
            **({"service_tree": str(self.tree), "service_git": _git_rev(self.tree)} if self.tree is not None else {}),
            "cpus": os.cpu_count(),
            "quick": args.quick,
            "api_procs": args.api_procs,
            "consumers": args.consumers,
            "generator": "loadtests.gogen (Go)" if args.generator == "go" else "loadtests.openloop (Python)",
            "expect": args.expect,
            "elapsed_s": round(time.time() - self.t0, 1),
            "notes": self.notes,
        }
        (self.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
        path = report.generate(self.out)
        _log(f"done in {time.time() - self.t0:.0f}s: {path}")
        return path


def backlog_stats(rows: list[BacklogRow], load_end: float, sampler_error: str = "") -> dict[str, Any]:
    """Appended, peak, backlog at the end of the load and at the end, processing and drain rates."""
    if not rows:
        return {"sampler_error": sampler_error}
    at_end = min(rows, key=lambda r: abs(r.t - load_end))
    last = rows[-1]
    busy = [(a, b) for a, b in itertools.pairwise(rows) if a.backlog > 0]
    busy_t = sum(b.t - a.t for a, b in busy)
    busy_done = sum(b.committed - a.committed for a, b in busy)
    drain_t = last.t - at_end.t
    drain = (at_end.backlog - last.backlog) / drain_t if drain_t > 1 else float("nan")
    return {
        "appended": last.end_offsets - rows[0].end_offsets,
        "peak": max(r.backlog for r in rows),
        "at_load_end": at_end.backlog,
        "final": last.backlog,
        "processed": last.committed - rows[0].committed,
        "processed_per_s": busy_done / busy_t if busy_t > 0 else float("nan"),
        "drain_per_s": drain,
        "eta_s": last.backlog / drain if drain and drain > 0 else (0.0 if last.backlog == 0 else float("nan")),
        "sampler_error": sampler_error,
    }


def _nofile() -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    return max(soft, want), hard


def _git_rev(tree: Path) -> str:
    """The short commit checked out in ``tree`` ("" when git cannot tell)."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=["spike", "soak", "none"], default="spike")
    p.add_argument("--duration", type=float, default=None, help="seconds of the shape (60; 25 with --quick)")
    p.add_argument("--out", type=Path, default=None, help="report folder (reports/bench-<date>)")
    p.add_argument("--quick", action="store_true", help="500 KB ceilings only and a short shape (~2 minutes)")
    p.add_argument("--sizes", default=None, help="photo size classes for the ceilings, e.g. 200k,500k,1m,3m")
    p.add_argument("--photos", default="mix", help="photos of the shape run: a size class or mix (default)")
    p.add_argument("--peak-users", type=int, default=None, help="users at the spike's peak (1500; 600 quick)")
    p.add_argument("--probe-users", type=int, default=32, help="closed-loop users for the ceilings")
    p.add_argument("--phase-seconds", type=float, default=None, help="seconds per ceiling phase (10; 6 quick)")
    p.add_argument("--drain-seconds", type=float, default=None, help="longest backlog drain watch (60; 15 quick)")
    p.add_argument("--max-polls", type=int, default=2, help="status polls per applicant in the shape run")
    p.add_argument("--api-procs", type=int, default=1, help="API processes (and bare aiohttp processes)")
    p.add_argument("--consumers", type=int, default=1, help="consumer processes in the shape run")
    p.add_argument(
        "--generators",
        type=int,
        default=1,
        help="load-generator processes: locust --processes for the probes and the shape, and as many open-loop "
        "processes sharing the rate (one process saturates near one core)",
    )
    p.add_argument(
        "--generator",
        choices=["python", "go"],
        default="python",
        help="the open-loop generator: loadtests.openloop (python) or loadtests.gogen (go: compiled, one process "
        "offers 10x the sustainable rate; built with the machine's go on first use)",
    )
    p.add_argument(
        "--expect",
        action="store_true",
        help="open-loop clients send Expect: 100-continue (a refused upload's body is never sent), as curl, Go, Java "
        "and .NET clients do; the probes and the shape stay browser-like (locust)",
    )
    p.add_argument("--pool-workers", type=int, default=0, help="image processes per consumer (0 = one per core)")
    p.add_argument(
        "--tree",
        type=Path,
        default=None,
        metavar="DIR",
        help="run the API and the consumers from this checkout (e.g. a worktree of an earlier commit, its modules "
        "first), everything else from this one: the 'before' of a before/after with the same generators and report",
    )
    p.add_argument(
        "--api-env",
        action="append",
        default=[],
        metavar="INTAKE_X=V",
        help="a setting for the API and consumers of this run (repeatable), e.g. INTAKE_MAX_IN_FLIGHT=16",
    )
    p.add_argument(
        "--pin",
        action="append",
        default=[],
        metavar="GROUPS=CPUS",
        help="run process groups on given CPUs (taskset), e.g. --pin api,bare=0 --pin "
        "generator,consumer,stack,bench=1: the front on a core of its own, as in production, the rest on the other",
    )
    p.add_argument("--skip-ceilings", action="store_true", help="only the load shape")
    p.add_argument("--keep-stack", action="store_true", help="leave the private stack running")
    p.add_argument("--log-level", default="INFO", help="INTAKE_LOG_LEVEL of the API and consumers")
    args = p.parse_args(argv)
    if any("=" not in kv or not kv.startswith("INTAKE_") for kv in args.api_env):
        p.error("--api-env takes INTAKE_NAME=value")
    try:
        parse_pins(args.pin)
    except ValueError as exc:
        p.error(str(exc))
    if args.out is None:
        args.out = REPO / "reports" / f"bench-{datetime.now():%Y%m%d-%H%M%S}"
    return args


B = TypeVar("B", bound="Bench")


def fixed_load(args: argparse.Namespace, **settings: Any) -> argparse.Namespace:
    """Complete the command line of a benchmark built on :class:`Bench` that offers its own fixed loads, no
    ceilings and no shape (``bench_cpu``, ``bench_overload``) with what :class:`Bench` reads: quick, no shape, the
    probe's 32 users, WARNING logs, one consumer, one open-loop generator process, no pins; ``settings`` last.
    Returns ``args``."""
    defaults: dict[str, Any] = {
        "quick": True, "sizes": None, "shape": "none", "duration_shape": None, "peak_users": None,
        "probe_users": 32, "phase_seconds": None, "drain_seconds": None, "log_level": "WARNING", "pool_workers": 0,
        "consumers": 1, "generators": 1, "pin": [], "tree": None,
    }  # fmt: skip
    for name, value in {**defaults, **settings}.items():
        setattr(args, name, value)
    return args


def start_fixed_load(cls: type[B], args: argparse.Namespace) -> B:
    """``cls`` for ``args`` (:func:`fixed_load`): SIGTERM interrupts it, its children may open many files."""
    interrupt_on_sigterm()
    resource.setrlimit(resource.RLIMIT_NOFILE, _nofile())
    plan_args = argparse.Namespace(**vars(args))
    plan_args.duration = None  # Plan's duration is the shape's, unused by these
    runner = cls(plan_args)
    runner.args = args
    return runner


def interrupt_on_sigterm() -> None:
    """Make SIGTERM raise ``KeyboardInterrupt``, so a benchmark stopped either way cleans up what it started."""

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    interrupt_on_sigterm()
    random.seed()
    Bench(args).run()


if __name__ == "__main__":
    main()
