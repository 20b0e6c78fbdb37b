"""The CPU sampler splits this benchmark's CPU time by process group (a busy child is seen in its group)."""

from __future__ import annotations

import subprocess
import sys
import time

from loadtests.samplers import CpuSampler


def test_cpu_by_group_sees_a_busy_child() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 3: pass"])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
    sampler = CpuSampler(list, interval_s=0.5, groups=lambda: {"busy": [busy.pid], "idle": [idle.pid]})
    started = time.time()
    sampler.start()
    try:
        busy.wait(10)
        idle.wait(10)
    finally:
        sampler.stop()
    groups = sampler.groups_between(started + 1.0, time.time())
    assert groups["busy"] > 0.05  # one spinning process, on a machine that may be shared
    assert groups["idle"] < groups["busy"] / 5
    assert sampler.groups_between(0, 1) == {}


def test_run_queue_wait_of_a_process_is_read_from_schedstat() -> None:
    import os

    from loadtests.samplers import run_queue_wait_s

    assert run_queue_wait_s(os.getpid()) >= 0.0


def test_busiest_second_and_waits_per_group() -> None:
    sampler = CpuSampler(list)
    sampler.group_rows = [(10.0, {"api": 0.2, "generator": 0.9}), (11.0, {"api": 0.6, "generator": 0.1})]
    sampler.wait_rows = [(10.0, {"api": 0.5}), (11.0, {"api": 0.1, "generator": 0.3})]
    assert sampler.peaks_between(9.0, 12.0) == {"api": 0.6, "generator": 0.9}
    waits = sampler.waits_between(9.0, 12.0)
    assert waits["api"] == {"mean": 0.3, "max": 0.5}
    assert waits["generator"] == {"mean": 0.15, "max": 0.3}
    assert sampler.waits_between(0.0, 1.0) == {}
