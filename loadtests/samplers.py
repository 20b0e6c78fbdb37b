"""Background samplers of the benchmark: the consumer backlog (Kafka offsets) and who uses the CPU.

* :class:`BacklogSampler`: every interval, the submissions topic's end offsets (a consumer without a group)
  and the worker group's committed offsets (admin client); backlog = end - committed, summed over partitions.
* :class:`CpuSampler`: every interval, the CPU time used by this benchmark's processes (its children, the
  stack's Kafka and MinIO) and by every other process on the machine, in cores. On a shared machine the
  "others" column tells whether a figure was measured on a quiet box. With ``groups`` it also splits "ours" by
  role (``api``, ``bare``, ``generator``, ``kafka``, ``minio``, ...: each a set of root pids and their
  descendants), so CPU-seconds per request can be given per process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import threading
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


@dataclass(frozen=True)
class BacklogRow:
    t: float
    end_offsets: int
    committed: int

    @property
    def backlog(self) -> int:
        return max(self.end_offsets - self.committed, 0)


class BacklogSampler(threading.Thread):
    """Samples ``topic``'s backlog for ``group`` until :meth:`stop`; rows in :attr:`rows`."""

    def __init__(self, bootstrap: str, topic: str, group: str, partitions: int, interval_s: float = 1.0) -> None:
        super().__init__(name="backlog-sampler", daemon=True)
        self.bootstrap, self.topic, self.group = bootstrap, topic, group
        self.partitions, self.interval_s = partitions, interval_s
        self.rows: list[BacklogRow] = []
        self.error: str = ""
        self.errors = 0
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)

    def latest(self) -> BacklogRow | None:
        return self.rows[-1] if self.rows else None

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except Exception as exc:  # a sampler failure must not kill the benchmark; it is reported
            self.error = f"{type(exc).__name__}: {exc}"

    async def _run(self) -> None:
        tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await consumer.start()
        await admin.start()
        try:
            while not self._stop_event.is_set():
                t = time.time()
                try:
                    async with asyncio.timeout(5):
                        ends = await consumer.end_offsets(tps)
                    async with asyncio.timeout(5):
                        committed = await admin.list_consumer_group_offsets(self.group)
                except Exception as exc:  # keep sampling through a hiccup; the last error is reported
                    self.error = f"{type(exc).__name__}: {exc}"
                    self.errors += 1
                else:
                    done = sum(max(om.offset, 0) for tp, om in committed.items() if tp.topic == self.topic)
                    self.rows.append(BacklogRow(t, sum(ends.values()), done))
                await asyncio.sleep(max(0.0, self.interval_s - (time.time() - t)))
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
            with contextlib.suppress(Exception):
                await admin.close()

    def write(self, path: Path) -> None:
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["t", "end_offsets", "committed", "backlog"])
            for r in self.rows:
                w.writerow([f"{r.t:.3f}", r.end_offsets, r.committed, r.backlog])


WAIT_GROUPS = frozenset({"api", "bare", "generator", "consumer"})
"""Groups whose main thread does their work (Python event loops), so its run-queue wait is theirs; Kafka's and
MinIO's main threads sleep while other threads work."""


def run_queue_wait_s(pid: int) -> float:
    """Seconds the main thread of ``pid`` has spent runnable but not running (``schedstat``'s second field).
    Raises ``OSError`` when the process is gone or the kernel has no schedstat."""
    with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


@dataclass(frozen=True)
class CpuRow:
    t: float
    ours_cores: float
    others_cores: float
    busy_pct: float


class CpuSampler(threading.Thread):
    """Splits CPU use into this benchmark's processes and everybody else's, once per interval; and, with
    ``groups`` (a callable returning ``{group: root pids}``), this benchmark's by group."""

    def __init__(
        self,
        extra_pids: Callable[[], list[int]],
        interval_s: float = 1.0,
        groups: Callable[[], dict[str, list[int]]] | None = None,
    ) -> None:
        super().__init__(name="cpu-sampler", daemon=True)
        self.extra_pids = extra_pids
        self.interval_s = interval_s
        self.groups = groups or dict
        self.rows: list[CpuRow] = []
        self.group_rows: list[tuple[float, dict[str, float]]] = []
        """(time, {group: cores over the interval ending then})."""
        self.wait_rows: list[tuple[float, dict[str, float]]] = []
        """(time, {group: seconds per second its processes' main threads waited for a CPU (runnable, not running:
        the kernel's run-queue delay, ``/proc/<pid>/task/<pid>/schedstat``)}): an API whose event loop waits
        here is starved by other processes, not slow itself."""
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)

    def _ours(self) -> set[int]:
        me = psutil.Process(os.getpid())
        pids = {me.pid}
        roots = [me]
        for pid in self.extra_pids():
            with contextlib.suppress(psutil.Error):
                roots.append(psutil.Process(pid))
                pids.add(pid)
        for root in roots:
            with contextlib.suppress(psutil.Error):
                pids.update(c.pid for c in root.children(recursive=True))
        return pids

    def _group_of(self) -> dict[int, str]:
        """pid -> group, for every root pid of a group and its descendants."""
        out: dict[int, str] = {}
        for group, roots in self.groups().items():
            for pid in roots:
                with contextlib.suppress(psutil.Error):
                    root = psutil.Process(pid)
                    out[pid] = group
                    out.update((c.pid, group) for c in root.children(recursive=True))
        return out

    def _main_thread_waits(self) -> dict[int, tuple[str, float]]:
        """Root pid -> (group, seconds its main thread has waited for a CPU so far)."""
        out: dict[int, tuple[str, float]] = {}
        for group, roots in self.groups().items():
            if group not in WAIT_GROUPS:
                continue
            for pid in roots:
                with contextlib.suppress(OSError, ValueError, IndexError):
                    out[pid] = (group, run_queue_wait_s(pid))
        return out

    def run(self) -> None:
        last_wait: dict[int, tuple[str, float]] = {}
        last: dict[int, float] = {}
        last_t = time.monotonic()
        psutil.cpu_percent(interval=None)
        while not self._stop_event.wait(self.interval_s):
            now: dict[int, float] = {}
            for p in psutil.process_iter(["pid", "cpu_times"]):
                ct = p.info.get("cpu_times")
                if ct is not None:
                    now[p.info["pid"]] = ct.user + ct.system
            ours = self._ours()
            group_of = self._group_of()
            t = time.monotonic()
            dt = max(t - last_t, 1e-6)
            d_ours = d_others = 0.0
            d_groups: dict[str, float] = dict.fromkeys(self.groups(), 0.0)
            for pid, cpu in now.items():
                delta = cpu - last[pid] if pid in last else cpu  # a new process: all its time is in the interval
                if delta <= 0:
                    continue
                if pid in ours or pid in group_of:
                    d_ours += delta
                else:
                    d_others += delta
                if pid in group_of:
                    d_groups[group_of[pid]] = d_groups.get(group_of[pid], 0.0) + delta
            waits = self._main_thread_waits()
            d_wait: dict[str, float] = {}
            for pid, (group, w) in waits.items():
                if pid in last_wait:
                    d_wait[group] = d_wait.get(group, 0.0) + max(0.0, w - last_wait[pid][1])
            if last:
                wall = time.time()
                self.rows.append(CpuRow(wall, d_ours / dt, d_others / dt, psutil.cpu_percent(interval=None)))
                self.group_rows.append((wall, {g: d / dt for g, d in d_groups.items()}))
                self.wait_rows.append((wall, {g: d / dt for g, d in d_wait.items()}))
            last, last_t, last_wait = now, t, waits

    def mean_between(self, t0: float, t1: float) -> tuple[float, float]:
        """Mean (ours, others) cores over ``[t0, t1]``."""
        sel = [r for r in self.rows if t0 <= r.t <= t1]
        if not sel:
            return float("nan"), float("nan")
        return sum(r.ours_cores for r in sel) / len(sel), sum(r.others_cores for r in sel) / len(sel)

    def groups_between(self, t0: float, t1: float) -> dict[str, float]:
        """Mean cores of each group over the samples in ``[t0, t1]`` (a group absent from a sample used 0)."""
        sel = [g for t, g in self.group_rows if t0 <= t <= t1]
        names = {name for g in sel for name in g}
        return {name: sum(g.get(name, 0.0) for g in sel) / len(sel) for name in sorted(names)} if sel else {}

    def waits_between(self, t0: float, t1: float) -> dict[str, dict[str, float]]:
        """Per group, the mean and the largest run-queue wait of its main threads (s per s) over ``[t0, t1]``."""
        sel = [g for t, g in self.wait_rows if t0 <= t <= t1]
        names = sorted({name for g in sel for name in g})
        return {
            name: {"mean": sum(g.get(name, 0.0) for g in sel) / len(sel), "max": max(g.get(name, 0.0) for g in sel)}
            for name in names
        }

    def peaks_between(self, t0: float, t1: float) -> dict[str, float]:
        """The largest one-interval CPU use (cores) of each group over ``[t0, t1]``: a burst a mean hides."""
        sel = [g for t, g in self.group_rows if t0 <= t <= t1]
        names = sorted({name for g in sel for name in g})
        return {name: max(g.get(name, 0.0) for g in sel) for name in names}

    def write_groups(self, path: Path) -> None:
        names = sorted({name for _, g in self.group_rows for name in g})
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["t", *names])
            for t, g in self.group_rows:
                w.writerow([f"{t:.3f}", *(f"{g.get(n, 0.0):.3f}" for n in names)])

    def write(self, path: Path) -> None:
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow([f.name for f in fields(CpuRow)])
            for r in self.rows:
                w.writerow([f"{v:.3f}" for v in astuple(r)])
