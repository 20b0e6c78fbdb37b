"""CPU-seconds per request: the ingest API against a bare aiohttp reader of the same bodies, in the same run.

On a shared machine wall-clock rates move with the neighbours; the CPU time a server process spends per request
does not (much). This script drives each server variant with the same open-loop generator at the same fixed
rate (below every variant's capacity, so nothing is shed), reads each server's CPU time from ``/proc`` (psutil)
before and after, and prints CPU-ms per accepted request for:

* ``bare``: :mod:`loadtests.baseline_app` (reads the body, answers 202): the floor; ``bare-tuned`` (with
  ``--bare-tuned``) the same with the API's heap settings (:mod:`intake.heap`), a stricter floor;
* ``api-<producer>``: ``intake serve`` with ``INTAKE_KAFKA_PRODUCER`` set to each producer given (``aiokafka``,
  ``confluent``), appending to Kafka with acks=all, the personal data sealed (the default: each upload is a new
  applicant, so each creates its data key in the key store, the worst case);
* ``api-<producer>-plain`` (with ``--plain``): the same with ``INTAKE_SEAL_RECORDS=false`` (plaintext records), so
  the cost of sealing is ``api-<producer>`` / ``api-<producer>-plain`` in the same run (printed as "sealed ÷ plain");
* ``api-<producer>[-plain]-before`` (with ``--before DIR``, a checkout of an earlier commit): that commit's
  ``intake serve``, the same way, for each API variant above (printed as "now ÷ before");
* ``bare-produce`` and ``api-memory`` (with ``--floors``): the tuned bare reader that also appends each body to
  Kafka (``loadtests.baseline_app --produce``: the floor of reading and forwarding), and the API with Kafka and
  the object store in memory (:mod:`loadtests.memory_api`: its own work, no clients); with the API's figure they
  split its CPU into reading, forwarding (and the data key's create), and its own work;
* ``--only-plain`` leaves the sealed variants out (the plaintext API alone: no data key is created per upload);
* ``shed`` (with ``--shed``): every upload refused by the overload gate (``INTAKE_MAX_LOOP_LAG_MS`` set below any
  lag), so the figure is the CPU a refusal costs, body unread; ``shed-linger`` the same with ``INTAKE_LINGER_S=10``
  (aiohttp reads and discards each refused body); ``shed-before`` an earlier commit's refusal (its per-client rate
  limit, 429, after the signature check; aiohttp's default lingering read); ``bare-refuse`` the floor of a
  refusal: the bare server answering every upload ``503`` with a constant body, unread, and closing
  (``loadtests.baseline_app --refuse``);

in alternating rounds, with the generator's, Kafka's and MinIO's CPU over the same windows, the server's minor
page faults and sleeps per request (its threads' blocking waits, in all and by thread: :func:`thread_sleeps`), and
the ratio bare / api (the issue's target: >= 0.5). ``--profile`` runs ``py-spy record``
on each API process during its first round and prints the top frames (self time and inclusive time).

    .venv/bin/python -m loadtests.bench_cpu [--rate 40] [--duration 12] [--rounds 2] [--photos 500k]
        [--producers aiokafka,confluent] [--plain] [--only-plain] [--floors] [--before DIR] [--api-procs 1] [--profile]
        [--out reports/bench-cpu]

Runs on the benchmark's private stack (``loadtests.procs.Stack``, ``INTAKE_BENCH_*`` ports), with its own topics.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import resource
import select
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from loadtests import bench
from loadtests.procs import REPO, Child, free_port, python

PRODUCERS = ("aiokafka", "confluent", "rdkafka")
FLOORS = ["bare-produce", "api-memory"]
"""The ``--floors`` variants (see :meth:`CpuBench.start_floor`); their Kafka producer is librdkafka's."""
SHED_ENV = {"INTAKE_MAX_LOOP_LAG_MS": "0.001", "INTAKE_LINGER_S": "0"}
"""Settings under which the API refuses every upload at its overload gate (an event-loop lag bound below any lag,
once the lag was first sampled) and closes without reading the body."""
IDLE_S = 3.0
"""Seconds the server's idle CPU is measured before each variant's load (subtracted in the "net" column)."""


def _tree(pids: list[int]) -> list[psutil.Process]:
    """``pids`` and their descendants, those still running."""
    procs: list[psutil.Process] = []
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs += [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
    return procs


def tree_cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` and their descendants, now (processes gone count 0)."""
    total = 0.0
    for p in _tree(pids):
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def tree_minor_faults(pids: list[int]) -> int:
    """Minor page faults so far of ``pids`` and their descendants, all threads (``/proc/<pid>/stat`` field 10)."""
    total = 0
    for proc in _tree(pids):
        try:
            stat = Path(f"/proc/{proc.pid}/stat").read_text()
        except OSError:
            continue
        total += int(stat.rsplit(")", 1)[1].split()[7])  # fields after the command: state is field 3
    return total


def thread_sleeps(pids: list[int]) -> dict[str, int]:
    """Voluntary context switches so far of every living thread of ``pids`` and their descendants: how often a
    thread blocked (in ``epoll_wait``, on a lock, a condition, a socket) and was woken again
    (``/proc/<pid>/task/*/status``; the process's own ``status`` counts only its main thread), by kind of thread:
    ``main`` (each process's main thread: the event loop), ``python`` (its other Python threads: librdkafka's poll
    thread, the default executor), and librdkafka's own threads by name (:func:`_thread_kind`: ``rdk:broker``,
    ``rdk:main``). A thread that ended takes its count with it: the servers' threads live as long as they do."""
    out: dict[str, int] = collections.defaultdict(int)
    for status in _thread_files(pids, "status"):
        field = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        kind = _thread_kind(field["Name"].strip())
        if field["Pid"].strip() == field["Tgid"].strip():
            kind = "main"
        elif not kind.startswith("rdk:"):
            kind = "python"
        out[kind] += int(field.get("voluntary_ctxt_switches", "0"))
    return out


def sleep_cost_ms(cycles: int = 300, sleep_s: float = 0.005) -> float:
    """CPU milliseconds this machine charges a thread for one block-and-wake cycle (an ``epoll_wait`` that times
    out, nothing to do): the price of every sleep counted by :func:`thread_sleeps`. On a virtual machine it is much
    higher than on bare metal (halting the virtual CPU and waking it)."""
    ep = select.epoll()
    try:
        started = time.thread_time()
        for _ in range(cycles):
            ep.poll(sleep_s)
        return (time.thread_time() - started) / cycles * 1000
    finally:
        ep.close()


def thread_cpu_s(pids: list[int]) -> dict[str, float]:
    """CPU seconds so far of every thread of ``pids`` and their descendants, summed by thread name (``comm``:
    librdkafka names its threads ``rdk:…``; Python's threads all share the interpreter's name)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = collections.defaultdict(float)
    for stat in _thread_files(pids, "stat"):
        name = stat.split("(", 1)[1].rsplit(")", 1)[0]
        fields = stat.rsplit(")", 1)[1].split()
        out[_thread_kind(name)] += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return out


def _thread_kind(comm: str) -> str:
    """A thread's name (``comm``) without its number: librdkafka's ``rdk:broker1`` and ``rdk:broker-1`` (its
    bootstrap connection) are both ``rdk:broker``."""
    return re.sub(r"-?\d+$", "", comm)


def _thread_files(pids: list[int], name: str) -> Iterator[str]:
    """The ``/proc/<pid>/task/<tid>/<name>`` text of every living thread of ``pids`` and their descendants."""
    for proc in _tree(pids):
        for task in Path(f"/proc/{proc.pid}/task").glob("*"):
            try:
                yield (task / name).read_text()
            except OSError:
                continue


def children_cpu_s() -> float:
    """CPU seconds of this process's waited-for children (the generator, once it exited)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def top_frames(raw: Path, n: int = 12) -> dict[str, list[tuple[str, float]]]:
    """From py-spy's ``--format raw`` (collapsed stacks with counts): the ``n`` frames with the most self time
    and with the most inclusive time, as shares of all samples."""
    self_t: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        c = int(count)
        total += c
        frames = stack.split(";")
        self_t[frames[-1]] += c
        for f in set(frames):
            incl[f] += c
    if not total:
        return {"self": [], "inclusive": []}
    return {
        "self": [(f, c / total) for f, c in self_t.most_common(n)],
        "inclusive": [(f, c / total) for f, c in incl.most_common(3 * n) if c / total < 0.999][:n],
    }


class CpuBench(bench.Bench):
    """Reuses the load benchmark's stack, processes and generators."""

    producer = "aiokafka"
    extra_env: dict[str, str] = {}  # noqa: RUF012 - replaced per variant

    def api_env(self, prefix: str, port: int) -> dict[str, str]:
        env = super().api_env(prefix, port)
        env["INTAKE_KAFKA_PRODUCER"] = self.producer
        env["INTAKE_MAX_IN_FLIGHT"] = "100000"  # never shed unless asked: the cost of an accepted upload
        if not any(kv.startswith("INTAKE_MAX_LOOP_LAG_MS=") for kv in self.args.api_env):
            env["INTAKE_MAX_LOOP_LAG_MS"] = "0"  # lag admission off unless asked (--api-env): nothing shed by chance
        env["INTAKE_RATE_PER_CLIENT"] = "100000"
        env["INTAKE_BURST_PER_CLIENT"] = "100000"
        env.update(self.extra_env)
        return env

    def _variant_env(self, name: str) -> dict[str, str]:
        """Environment overrides of a variant (an earlier checkout's is :attr:`tree`, set by :meth:`variant`)."""
        if name.startswith("shed-before"):
            return {"INTAKE_RATE_PER_CLIENT": "0.001", "INTAKE_BURST_PER_CLIENT": "1"}
        if name == "shed":
            return dict(SHED_ENV)
        if name == "shed-linger":
            return {**SHED_ENV, "INTAKE_LINGER_S": "10"}
        if name.removesuffix("-before").endswith("-plain"):
            return {"INTAKE_SEAL_RECORDS": "false"}
        return {}

    def start_floor(self, name: str, prefix: str) -> tuple[str, list[Any]]:
        """A floor variant (``--floors``) on this run's settings: ``bare-produce`` (the bare reader, tuned heap,
        appending each body to Kafka) or ``api-memory`` (:mod:`loadtests.memory_api`)."""
        port = free_port()
        env = self.shared_metrics(name, self.api_env(prefix, port))
        if name.endswith("bare-produce"):
            argv = [python(), "-m", "loadtests.baseline_app", "--port", str(port), "--tune-heap", "--produce"]
            return self.start_servers(name, "bare", port, argv, env=env, ready_path="/healthz")
        argv = [python(), "-m", "loadtests.memory_api"]
        return self.start_servers(name, "api", port, argv, env=env, ready_path="/healthz")

    def variant(self, name: str, round_no: int, profile: bool) -> dict[str, Any]:
        a = self.args
        self.tree = a.before if name.endswith("-before") else None  # its API runs from that checkout
        if name.startswith("bare") and name not in FLOORS:
            flags = {"bare-tuned": ("--tune-heap",), "bare-refuse": ("--refuse",)}.get(name, ())
            url, children = self.start_baseline(f"r{round_no}-{name}", flags)
        else:
            producer = name[4:].removesuffix("-before").removesuffix("-plain")
            self.producer = "confluent" if name.startswith("shed") or name in FLOORS else producer
            self.producer = "aiokafka" if name == "shed-before" else self.producer
            self.extra_env = self._variant_env(name)
            prefix = f"{self.run_id}-{self.producer[:2]}{round_no}"
            self.ensure_topics(prefix)
            start = self.start_floor if name in FLOORS else self.start_api
            url, children = start(f"r{round_no}-{name}", prefix)
            # warm-up: connections, metadata, the first batches (not measured)
            self.open_loop(f"r{round_no}-{name}-warm", url=url, rate=a.rate, duration_s=2, size=a.photos,
                           out=self.out / f"r{round_no}-{name}-warm.csv")  # fmt: skip
        pids = [c.popen.pid for c in children]
        stack_pids = self.stack.pids()
        i0, ti0 = tree_cpu_s(pids), time.monotonic()
        time.sleep(IDLE_S)  # the server's own background work (timers, producer threads), no requests
        idle_cores = (tree_cpu_s(pids) - i0) / (time.monotonic() - ti0)
        sleep_cost = sleep_cost_ms()  # what one of the server's sleeps costs on this machine now
        spy = self._spy(name, pids) if profile else []
        flt0, thr0, sl0 = tree_minor_faults(pids), thread_cpu_s(pids), thread_sleeps(pids)
        gen0, srv0, stk0, t0 = children_cpu_s(), tree_cpu_s(pids), tree_cpu_s(stack_pids), time.time()
        ol = self.open_loop(f"r{round_no}-{name}", url=url, rate=a.rate, duration_s=a.duration, size=a.photos,
                            out=self.out / f"r{round_no}-{name}.csv")  # fmt: skip
        gen1, srv1, stk1, t1 = children_cpu_s(), tree_cpu_s(pids), tree_cpu_s(stack_pids), time.time()
        sl1 = thread_sleeps(pids)
        faults, sleeps = tree_minor_faults(pids) - flt0, sum(sl1.values()) - sum(sl0.values())
        thr1 = thread_cpu_s(pids)
        threads = sorted(((k, v - thr0.get(k, 0.0)) for k, v in thr1.items()), key=lambda kv: -kv[1])
        for child in spy:
            self.procs.wait(child, 30)
        self.stop(children)
        if not name.startswith("bare") or name in FLOORS:
            self.delete_topics([t for t in self.topics if t.startswith(f"{self.run_id}-{self.producer[:2]}{round_no}")])
        s = ol["summary"]
        refusing = name.startswith("shed") or name == "bare-refuse"
        accepted = max(int(s["requests"] if refusing else s["accepted"]), 1)  # per refusal, or per 202
        thread_sleep = {k: (v - sl0.get(k, 0)) / accepted for k, v in sl1.items()}
        out = {
            "variant": name,
            "round": round_no,
            "accepted": s["accepted"],
            "requests": s["requests"],
            "p50_ms": s["p50_ms"],
            "p99_ms": s["p99_ms"],
            "shed_p99_ms": s["shed_p99_ms"],
            "by_outcome": s["by_outcome"],
            "server_cpu_s": srv1 - srv0,
            "server_cpu_ms_per_req": (srv1 - srv0) / accepted * 1000,
            "server_idle_cores": idle_cores,
            "server_faults_per_req": faults / accepted,
            "server_sleeps_per_req": sleeps / accepted,
            "sleep_cost_ms": sleep_cost,
            "server_thread_sleeps_per_req": thread_sleep,
            "server_threads_ms_per_req": {k: v / accepted * 1000 for k, v in threads if v > 0},
            "server_net_ms_per_req": (srv1 - srv0 - idle_cores * (t1 - t0)) / accepted * 1000,
            "generator_cpu_ms_per_req": (gen1 - gen0) / accepted * 1000,
            "stack_cpu_ms_per_req": (stk1 - stk0) / accepted * 1000,
            "generator_cores": (gen1 - gen0) / max(t1 - t0, 1e-9),
            "others_cores": self.cpu.mean_between(t0, t1)[1],
        }
        bench._log(
            f"{name} round {round_no}: {s['accepted']}/{s['requests']} accepted, server "
            f"{out['server_cpu_ms_per_req']:.2f} ms CPU/req ({out['server_faults_per_req']:.0f} faults, "
            f"{out['server_sleeps_per_req']:.1f} sleeps), "
            f"generator {out['generator_cpu_ms_per_req']:.2f}, "
            f"kafka+minio {out['stack_cpu_ms_per_req']:.2f}, p99 {s['p99_ms']:.0f} ms; server threads ms/req "
            + ", ".join(f"{k} {v:.2f}" for k, v in out["server_threads_ms_per_req"].items())
            + "; sleeps/req "
            + ", ".join(f"{k} {v:.1f}" for k, v in thread_sleep.items() if v > 0)
        )
        return out

    def _spy(self, name: str, pids: list[int]) -> list[Child]:
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        spies = []
        for i, pid in enumerate(pids):
            raw = self.out / f"profile-{name}-{i}.txt"
            argv = [exe, "record", "--pid", str(pid), "--duration", str(int(self.args.duration)), "--rate", "250",
                    "--format", "raw", "--nonblocking", "--output", str(raw)]  # fmt: skip
            spies.append(self.procs.start(f"py-spy-{name}-{i}", argv, self.base_env()))
        return spies

    def run_cpu(self) -> Path:
        a = self.args
        rows = self.in_alternating_rounds(
            variants_of(a),
            a.rounds,
            lambda name, r: [self.variant(name, r, profile=a.profile and r == 0)],
            a.keep_stack,
        )
        summary = summarise(rows)
        text = render(summary, rows, self.out, a)
        (self.out / "cpu.json").write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))
        (self.out / "cpu.md").write_text(text)
        print(text)
        return self.out / "cpu.md"


def variants_of(a: argparse.Namespace) -> list[str]:
    """The variants a run measures, in the first round's order (each API variant right after its earlier self)."""
    producers = [p for p in a.producers.split(",") if p]
    apis = [] if a.only_plain else [f"api-{p}" for p in producers]
    apis += [f"api-{p}-plain" for p in producers] if a.plain or a.only_plain else []
    variants = [
        "bare",
        *(["bare-tuned"] if a.bare_tuned else []),
        *(v for api in apis for v in ([f"{api}-before"] if a.before else []) + [api]),
    ]
    if a.floors:
        variants[1:1] = FLOORS
    if a.shed:
        variants += ["bare-refuse", "shed", "shed-linger", *(["shed-before"] if a.before else [])]
    return variants


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per variant: the median over rounds of each per-request figure, and the ratio bare / variant."""
    by: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in rows:
        by[r["variant"]].append(r)

    def med(xs: list[float]) -> float:
        xs = sorted(xs)
        return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2

    out: dict[str, dict[str, float]] = {}
    for name, rs in by.items():
        out[name] = {
            k: med([float(r[k]) for r in rs])
            for k in ("server_cpu_ms_per_req", "server_net_ms_per_req", "server_idle_cores", "server_faults_per_req",
                      "server_sleeps_per_req", "sleep_cost_ms", "generator_cpu_ms_per_req", "stack_cpu_ms_per_req",
                      "p99_ms", "shed_p99_ms", "generator_cores", "others_cores")
        }  # fmt: skip
    bare = out.get("bare", {}).get("server_cpu_ms_per_req", float("nan"))
    bare_net = out.get("bare", {}).get("server_net_ms_per_req", float("nan"))
    bare_by_round = {r["round"]: float(r["server_cpu_ms_per_req"]) for r in by.get("bare", [])}
    for name, figures in out.items():
        figures["ratio_bare_over_this"] = bare / figures["server_cpu_ms_per_req"]
        figures["net_ratio"] = bare_net / figures["server_net_ms_per_req"]
        cpu = [float(r["server_cpu_ms_per_req"]) for r in by[name]]
        figures["server_cpu_min"], figures["server_cpu_max"] = min(cpu), max(cpu)
        # the ratio within each round (bare and this variant minutes apart), to show how far rounds disagree
        ratios = [
            bare_by_round[r["round"]] / float(r["server_cpu_ms_per_req"])
            for r in by[name]
            if r["round"] in bare_by_round
        ]
        figures["round_ratio_min"] = min(ratios, default=float("nan"))
        figures["round_ratio_max"] = max(ratios, default=float("nan"))
    for name, figures in out.items():  # the cost of sealing: the sealed API against its plaintext twin
        plain = out.get(f"{name}-plain")
        if plain is not None:
            figures["sealed_over_plain"] = figures["server_cpu_ms_per_req"] / plain["server_cpu_ms_per_req"]
            figures["sealed_over_plain_net"] = figures["server_net_ms_per_req"] / plain["server_net_ms_per_req"]
        before = out.get(f"{name}-before")
        if before is not None:  # this working tree against the earlier checkout, same run
            figures["now_over_before"] = figures["server_cpu_ms_per_req"] / before["server_cpu_ms_per_req"]
            figures["now_over_before_net"] = figures["server_net_ms_per_req"] / before["server_net_ms_per_req"]
    return out


def split(summary: dict[str, dict[str, float]], api: str) -> dict[str, float] | None:
    """The CPU per upload of ``api`` (net of idle) split by the ``--floors`` variants, or None without them. The
    parts add up to the API's figure: ``reading`` (the bare reader with the API's heap, else the bare one), ``own
    work`` (the API with Kafka and the store in memory, less reading), ``forwarding`` (what appending the body to
    Kafka adds to the bare reader), ``other clients`` (the rest: the data key's create in the object store, and
    whatever the API's use of the producer costs beyond the bare one's). ``floor_ratio`` is bare-produce / API:
    the ratio against a reader that also forwards."""
    floor, memory, read = summary.get("bare-produce"), summary.get("api-memory"), summary.get("bare-tuned")
    read = read or summary.get("bare")
    if floor is None or memory is None or read is None or api not in summary:
        return None
    net = "server_net_ms_per_req"
    total = summary[api][net]
    forwarding = floor[net] - read[net]
    return {
        "reading": read[net],
        "own work": memory[net] - read[net],
        "forwarding": forwarding,
        "other clients": total - memory[net] - forwarding,
        "total": total,
        "floor_ratio": floor[net] / total,
    }


def _split_lines(summary: dict[str, dict[str, float]]) -> list[str]:
    apis = [name for name in summary if name.startswith("api-") and name != "api-memory" and "-before" not in name]
    parts = {api: split(summary, api) for api in apis}
    lines = [
        "",
        "Where each API's CPU goes (ms per upload, net of idle; `--floors`): reading = the bare reader (with the "
        "API's heap settings when measured), own work = api-memory less reading, forwarding = bare-produce less "
        "reading, other clients = the rest (the data key's create, the API's producer use beyond the bare one's)",
        "",
        "| variant | reading | own work | forwarding to Kafka | other clients | total | bare-produce ÷ API |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {api} | {p['reading']:.2f} | {p['own work']:.2f} | {p['forwarding']:.2f} | {p['other clients']:.2f} | "
        f"{p['total']:.2f} | {p['floor_ratio']:.2f} |"
        for api, p in parts.items()
        if p is not None
    ]
    return lines if any(p is not None for p in parts.values()) else []


def render(summary: dict[str, dict[str, float]], rows: list[dict[str, Any]], out: Path, a: argparse.Namespace) -> str:
    lines = [
        f"CPU per accepted request, {a.photos} photos, open loop {a.rate:g}/s x {a.duration:g}s, {a.rounds} rounds "
        f"(medians), {a.api_procs} server process(es); ratio = bare / variant (target >= 0.5); shed variants: CPU "
        "per refusal; a server's sleeps are its threads' blocking waits (voluntary context switches), one of which "
        f"costs {statistics.median(r['sleep_cost_ms'] for r in rows):.3f} ms CPU on this machine (median)",
        "",
        "| variant | server CPU ms/req | rounds: min-max | ratio | ratio by round: min-max | idle server, cores | "
        "net of idle ms/req | net ratio | server faults/req | server sleeps/req | sleeps × their cost, ms/req | "
        "generator ms/req | Kafka+MinIO ms/req | accepted p99 ms | shed p99 ms | generator cores | others, cores |",
        "| --- " + "| ---: " * 16 + "|",
    ]
    for name, f in summary.items():
        lines.append(
            f"| {name} | {f['server_cpu_ms_per_req']:.2f} | {f['server_cpu_min']:.2f}-{f['server_cpu_max']:.2f} | "
            f"{f['ratio_bare_over_this']:.2f} | {f['round_ratio_min']:.2f}-{f['round_ratio_max']:.2f} | "
            f"{f['server_idle_cores']:.3f} | {f['server_net_ms_per_req']:.2f} | {f['net_ratio']:.2f} | "
            f"{f['server_faults_per_req']:.0f} | {f['server_sleeps_per_req']:.1f} | "
            f"{f['server_sleeps_per_req'] * f['sleep_cost_ms']:.2f} | "
            f"{f['generator_cpu_ms_per_req']:.2f} | {f['stack_cpu_ms_per_req']:.2f} | {f['p99_ms']:.0f} | "
            f"{f['shed_p99_ms']:.0f} | "
            f"{f['generator_cores']:.2f} | {f['others_cores']:.2f} |"
        )
    sealed = {name: f for name, f in summary.items() if "sealed_over_plain" in f}
    if sealed:
        lines += [
            "",
            "| sealed variant | sealed ÷ plain, CPU ms/req | net of idle | target |",
            "| --- | ---: | ---: | --- |",
        ]
        lines += [
            f"| {name} | {f['sealed_over_plain']:.3f} | {f['sealed_over_plain_net']:.3f} | <= 1.10 |"
            for name, f in sealed.items()
        ]
    lines += _split_lines(summary)
    compared = {name: f for name, f in summary.items() if "now_over_before" in f}
    if compared:
        lines += [
            "",
            "| variant | before CPU ms/req | now CPU ms/req | now ÷ before | net of idle: now ÷ before |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {name} | {summary[name + '-before']['server_cpu_ms_per_req']:.2f} | {f['server_cpu_ms_per_req']:.2f} | "
            f"{f['now_over_before']:.3f} | {f['now_over_before_net']:.3f} |"
            for name, f in compared.items()
        ]
    for raw in sorted(out.glob("profile-*.txt")):
        frames = top_frames(raw)
        lines += ["", f"py-spy {raw.stem}: top self time", ""]
        lines += [f"- {share:6.1%} {frame}" for frame, share in frames["self"]]
        lines += ["", f"py-spy {raw.stem}: top inclusive time", ""]
        lines += [f"- {share:6.1%} {frame}" for frame, share in frames["inclusive"]]
    lines += ["", "command: " + " ".join([".venv/bin/python -m loadtests.bench_cpu", *sys.argv[1:]])]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=40.0, help="requests per second (below every variant's capacity)")
    p.add_argument("--duration", type=float, default=12.0, help="seconds of arrivals per variant and round")
    p.add_argument("--rounds", type=int, default=2, help="rounds, alternating the order of the variants")
    p.add_argument("--photos", default="500k", help="photo size class")
    p.add_argument(
        "--producers", default=",".join(PRODUCERS), help="INTAKE_KAFKA_PRODUCER values to compare ('' = none)"
    )
    p.add_argument("--api-procs", type=int, default=1, help="processes of each server variant")
    p.add_argument("--profile", action="store_true", help="py-spy the API processes in the first round")
    p.add_argument(
        "--before",
        type=Path,
        default=None,
        help="checkout of an earlier commit: each API variant also as <variant>-before",
    )
    p.add_argument(
        "--shed", action="store_true", help="also the CPU per refusal (bare-refuse, shed, shed-linger, shed-before)"
    )
    p.add_argument("--plain", action="store_true", help="also each API with INTAKE_SEAL_RECORDS=false (sealing's cost)")
    p.add_argument("--bare-tuned", action="store_true", help="also the bare reader with the API's heap settings")
    p.add_argument("--only-plain", action="store_true", help="only the plaintext API variants (no sealed ones)")
    p.add_argument(
        "--floors",
        action="store_true",
        help="also bare-produce (the tuned bare reader appending each body to Kafka) and api-memory (the API with "
        "Kafka and the object store in memory): where the API's CPU goes, reading, forwarding, its own work",
    )
    p.add_argument(
        "--generator",
        choices=["python", "go"],
        default="python",
        help="the open-loop generator: loadtests.openloop (python: kept-alive connections) or loadtests.gogen "
        "(go: a connection per upload, as each applicant's browser opens its own; costs the servers the accept)",
    )
    p.add_argument("--out", type=Path, default=None, help="folder for cpu.md, cpu.json, the CSVs and logs")
    p.add_argument("--keep-stack", action="store_true", help="leave the private stack running")
    p.add_argument(
        "--api-env",
        action="append",
        default=[],
        metavar="INTAKE_X=V",
        help="a setting for every API variant of this run (repeatable), e.g. INTAKE_HTTP_FIRST_READ_BYTES=262144; "
        "lag admission is off (INTAKE_MAX_LOOP_LAG_MS=0) unless set here, e.g. to the service's default of 10",
    )
    args = p.parse_args(argv)
    if args.out is None:
        args.out = REPO / "reports" / f"bench-cpu-{time.strftime('%Y%m%d-%H%M%S')}"
    for name in filter(None, args.producers.split(",")):
        if name not in PRODUCERS:
            raise SystemExit(f"unknown producer {name!r}: one of {', '.join(PRODUCERS)}")
    # one open-loop generator at a rate below every variant's capacity; every process on every CPU (CPU-seconds per
    # request do not depend on where they ran); browser-like clients: every body sent
    return bench.fixed_load(args, expect=False)


def main(argv: list[str] | None = None) -> None:
    bench.start_fixed_load(CpuBench, parse_args(argv)).run_cpu()


if __name__ == "__main__":
    main()
