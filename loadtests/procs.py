"""Child processes of the benchmark, the private local stack, and the Kafka producer performance tool.

Every process is started in its own session and registered; :meth:`Procs.stop_all` ends them (SIGTERM, then
SIGKILL of that child's own process group after a grace period), so nothing is left behind. The stack is the
project's ``deploy/local/stack.sh`` with this benchmark's own ports and folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil

REPO = Path(__file__).resolve().parents[1]
STACK = REPO / "deploy" / "local" / "stack.sh"

STACK_DEFAULTS = {
    "INTAKE_STACK_DIR": os.environ.get("INTAKE_BENCH_STACK_DIR", "/tmp/lt-stack"),
    "INTAKE_STACK_KAFKA_PORT": os.environ.get("INTAKE_BENCH_KAFKA_PORT", "29092"),
    "INTAKE_STACK_KAFKA_CONTROLLER_PORT": os.environ.get("INTAKE_BENCH_KAFKA_CONTROLLER_PORT", "29093"),
    "INTAKE_STACK_MINIO_PORT": os.environ.get("INTAKE_BENCH_MINIO_PORT", "29000"),
    "INTAKE_STACK_MINIO_CONSOLE_PORT": os.environ.get("INTAKE_BENCH_MINIO_CONSOLE_PORT", "29001"),
    "INTAKE_STACK_BROKERS": "1",
}
"""The benchmark's own stack: never the default one on 19092/19000 that the tests stop and restart. Each value
can be moved by ``INTAKE_BENCH_STACK_DIR``, ``INTAKE_BENCH_KAFKA_PORT``, ``INTAKE_BENCH_KAFKA_CONTROLLER_PORT``,
``INTAKE_BENCH_MINIO_PORT`` and ``INTAKE_BENCH_MINIO_CONSOLE_PORT`` (two benchmarks side by side on one machine)."""


def tree_cpu_s(pid: int) -> float:
    """CPU-seconds (user + system) used so far by process ``pid`` and its live descendants (a consumer and its
    image pool); 0 for a process that is gone."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log: IO[bytes]


class Procs:
    """The benchmark's children."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str], env: dict[str, str], cpus: str | None = None) -> Child:
        """Start ``argv`` in a session of its own, logging to ``<name>.log``; on the CPUs ``cpus`` (a ``taskset
        -c`` list, inherited by its threads and children) when given."""
        log = (self.log_dir / f"{name}.log").open("ab")
        popen = subprocess.Popen(
            ["taskset", "-c", cpus, *argv] if cpus else argv,
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        child = Child(name, popen, log)
        self.children.append(child)
        return child

    def wait(self, child: Child, timeout_s: float) -> int:
        """Wait for ``child`` to exit by itself; past ``timeout_s`` it is stopped. Returns the exit code."""
        try:
            return child.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.stop(child)
            return child.popen.returncode if child.popen.returncode is not None else -9

    def stop(self, child: Child, grace_s: float = 20.0) -> None:
        p = child.popen
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)  # the child leads its own group (start_new_session)
                p.wait(timeout=10)
        # The group may still hold the child's own children (a process pool): end them too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)
        child.log.close()
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in list(reversed(self.children)):
            if child.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.popen.send_signal(signal.SIGTERM)
        for child in list(reversed(self.children)):
            self.stop(child)


def pin(pids: list[int], cpus: str) -> None:
    """Move the running processes ``pids`` (every thread: a JVM, a Go server) onto the CPUs ``cpus``."""
    for pid in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(pid)], check=True, capture_output=True)


def wait_http(url: str, timeout_s: float, want: int = 200) -> bool:
    """Poll ``url`` until it answers ``want``; False after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # loopback only
                if r.status == want:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    return False


class Stack:
    """``deploy/local/stack.sh`` with this benchmark's ports and folder."""

    def __init__(self, overrides: dict[str, str] | None = None) -> None:
        self.env = {**os.environ, **STACK_DEFAULTS, **(overrides or {})}
        self.started_here = False

    def _run(self, *argv: str, check: bool = True, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(STACK), *argv],
            env=self.env,
            check=check,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def running(self) -> bool:
        return self._run("status", check=False).returncode == 0

    def start(self) -> None:
        if self.running():
            return
        self._run("start")
        self.started_here = True

    def stop(self) -> None:
        """Stop the stack if it was started here; then drop the topic folders Kafka had marked for deletion
        (it removes them only a minute after a delete, and the benchmark's topics hold gigabytes)."""
        if self.started_here:
            self._run("stop", check=False, timeout=120)
            self.started_here = False
            if self._run("status", check=False).returncode != 0:
                data = Path(self.env["INTAKE_STACK_DIR"]) / "kafka" / "data"
                for doomed in data.glob("lt-*-delete"):
                    shutil.rmtree(doomed, ignore_errors=True)

    def service_env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in self._run("env").stdout.splitlines():
            if line.startswith("export ") and "=" in line:
                name, _, value = line[len("export ") :].partition("=")
                out[name] = value
        return out

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.env['INTAKE_STACK_KAFKA_PORT']}"

    def pids(self) -> list[int]:
        """Pids of this stack's Kafka and MinIO (for the CPU accounting)."""
        return list(self.named_pids().values())

    def named_pids(self) -> dict[str, int]:
        """``{"kafka": pid, "minio": pid}`` for those running from this stack's folder."""
        out = {}
        state = Path(self.env["INTAKE_STACK_DIR"])
        for name in ("kafka", "minio"):
            with contextlib.suppress(OSError, ValueError):
                out[name] = int((state / name / "pid").read_text().strip())
        return out


def kafka_libs() -> Path:
    """The folder of the Kafka jars the stack script resolved (it resolves them if needed)."""
    out = subprocess.run([str(STACK), "kafka-libs"], check=True, capture_output=True, text=True, timeout=600)
    return Path(out.stdout.strip().splitlines()[-1])


_PERF_LINE = re.compile(
    r"(?P<n>\d+) records sent, (?P<rps>[\d.]+) records/sec \((?P<mibps>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency"
    r"(?:, (?P<p50>\d+) ms 50th, (?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th)?"
)


@dataclass(frozen=True)
class ProducerPerf:
    records: int
    record_bytes: int
    records_per_s: float
    mb_per_s: float
    avg_latency_ms: float
    p99_latency_ms: float
    command: str


def parse_producer_perf(output: str, record_bytes: int) -> ProducerPerf | None:
    """The final summary line of ``ProducerPerformance`` (MB here are 10^6 bytes, recomputed from records/s)."""
    matches = list(_PERF_LINE.finditer(output))
    if not matches:
        return None
    m = matches[-1]
    rps = float(m["rps"])
    return ProducerPerf(
        records=int(m["n"]),
        record_bytes=record_bytes,
        records_per_s=rps,
        mb_per_s=rps * record_bytes / 1e6,
        avg_latency_ms=float(m["avg"]),
        p99_latency_ms=float(m["p99"]) if m["p99"] else float("nan"),
        command="",
    )


def producer_perf(
    *, bootstrap: str, topic: str, records: int, record_bytes: int, max_request_bytes: int, log: Path, timeout_s: float
) -> ProducerPerf | None:
    """Run Kafka's ``ProducerPerformance`` (acks=all, unthrottled) against ``topic``; None if it failed."""
    argv = [
        "java", "-Xmx1g", "-cp", f"{kafka_libs()}/*", "org.apache.kafka.tools.ProducerPerformance",
        "--topic", topic, "--num-records", str(records), "--record-size", str(record_bytes), "--throughput", "-1",
        "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all", f"max.request.size={max_request_bytes}",
        "linger.ms=5", "enable.idempotence=true", f"buffer.memory={max(33554432, 4 * max_request_bytes)}",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout_s,
            start_new_session=True,
            check=False,
        )
        output = done.stdout
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else str(exc.stdout or "")
        output += "\n[bench] ProducerPerformance timed out"
    log.write_text(" ".join(argv) + "\n" + output)
    perf = parse_producer_perf(output, record_bytes)
    if perf is None:
        return None
    return ProducerPerf(**{**perf.__dict__, "command": " ".join(argv)})


def python() -> str:
    return sys.executable


def cli_argv(command: str, tree: Path | None = None) -> list[str]:
    """How ``intake <command>`` (``serve``, ``consume``) is started: from this working tree, or (``tree``) from an
    earlier checkout, whose modules come first (``python -P``; the caller sets ``PYTHONPATH=tree``). A checkout older
    than the ``cli`` package has its CLI in ``intake.cli`` (e.g. 1b30694, where issue #14 was measured)."""
    if tree is None:
        return [python(), "-m", "cli", command]
    module = "cli" if (tree / "cli" / "__main__.py").is_file() else "intake.cli"
    return [python(), "-P", "-m", module, command]


def run_in_tree(script: Path, tree: Path, args: list[str], timeout_s: float = 600) -> Any:
    """Run ``script`` with ``args`` in a fresh interpreter that imports ``tree``'s modules first (``python -P``,
    ``PYTHONPATH=tree``: an earlier checkout against this one, as ``bench_cpu --before``); the JSON on the last
    line of its output. Raises ``CalledProcessError`` when it fails. The script's own top-level imports then come
    from ``tree``, so a script that uses this helper imports it in the parent only."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    argv = [sys.executable, "-P", str(script), *args]
    done = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True, check=True, timeout=timeout_s)
    return json.loads(done.stdout.strip().splitlines()[-1])
