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
