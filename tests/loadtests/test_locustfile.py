"""The locustfile imports, exposes the chosen shape only, and its shape classes follow the schedules.

Locust monkey-patches the standard library (gevent) on import, so each check runs in a child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

_PROBE = r"""
import json, sys
from locust.util.load_locustfile import load_locustfile
users, shapes = load_locustfile("loadtests/locustfile.py")
ticks = {}
for shape in shapes:
    out = []
    for t in (0.0, 1.0, 3.0, 10.0, 1000.0):
        shape.elapsed = lambda t=t: t  # a fixed clock
        out.append(shape.tick())
    ticks[type(shape).__name__] = out
print(json.dumps({"users": sorted(users), "shapes": [type(s).__name__ for s in shapes], "ticks": ticks}))
"""


@pytest.fixture(scope="module")
def photo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A photo cache holding three tiny stand-in files, so importing the locustfile generates nothing."""
    root = tmp_path_factory.mktemp("photos")
    (root / "v1").mkdir()
    for i in range(3):
        (root / "v1" / f"200k-{i}.jpg").write_bytes(b"\xff\xd8stand-in\xff\xd9")
    return root


def _load(photo_cache: Path, **env: str) -> dict[str, object]:
    full = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")},
        "INTAKE_LOAD_PHOTO_CACHE": str(photo_cache),
        "INTAKE_LOAD_PHOTOS": "200k",
        "INTAKE_SPIKE_PEAK": "100",
        "INTAKE_SPIKE_IDLE_S": "2",
        "INTAKE_SPIKE_RAMP_S": "4",
        "INTAKE_SPIKE_HOLD_S": "10",
        "INTAKE_SPIKE_DECAY_S": "10",
        "INTAKE_SOAK_USERS": "40",
        "INTAKE_SOAK_RAMP_S": "2",
        "INTAKE_SOAK_S": "100",
        **env,
    }
    result: dict[str, object] = _run_probe(_PROBE, full)
    return result


def _run_probe(script: str, env: dict[str, str]) -> Any:
    """Run ``script`` in a child interpreter at the repository root; its last line of output, as JSON."""
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_locustfile_imports_with_both_shapes_for_the_class_picker(photo_cache: Path) -> None:
    got = _load(photo_cache)
    assert got["users"] == ["Applicant"]
    assert got["shapes"] == ["WaveSpikeShape", "SoakShape"]


def test_the_spike_shape_ticks_follow_the_schedule(photo_cache: Path) -> None:
    got = _load(photo_cache, INTAKE_LOAD_SHAPE="spike")
    assert got["shapes"] == ["WaveSpikeShape"]
    ticks = got["ticks"]["WaveSpikeShape"]  # type: ignore[index]
    # t = 0, 1 (idle), 3 (a quarter up the ramp), 10 (hold), 1000 (over)
    assert [tick[0] if tick else None for tick in ticks] == [0, 0, 25, 100, None]
    assert ticks[2][1] == pytest.approx(25.0)  # spawn rate: the peak within the ramp


def test_the_soak_shape_and_no_shape(photo_cache: Path) -> None:
    got = _load(photo_cache, INTAKE_LOAD_SHAPE="soak")
    assert got["shapes"] == ["SoakShape"]
    assert [tick[0] if tick else None for tick in got["ticks"]["SoakShape"]] == [1, 20, 40, 40, None]  # type: ignore[index]
    assert _load(photo_cache, INTAKE_LOAD_SHAPE="none")["shapes"] == []


def test_an_unknown_shape_is_refused(photo_cache: Path) -> None:
    env = {**os.environ, "INTAKE_LOAD_PHOTO_CACHE": str(photo_cache), "INTAKE_LOAD_PHOTOS": "200k"}
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _PROBE],
        cwd=REPO,
        env={**env, "INTAKE_LOAD_SHAPE": "tsunami"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "INTAKE_LOAD_SHAPE" in done.stderr


_WRITE_PROBE = r"""
import importlib.util, json, os, sys, types
from locust.runners import MasterRunner
spec = importlib.util.spec_from_file_location("lf", "loadtests/locustfile.py")
lf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lf)
kw = dict(context={"kind": "register"}, response=types.SimpleNamespace(status_code=202), response_time=5.0,
          start_time=1.0, name=lf.REGISTER)
child = os.fork()
if child == 0:  # a worker forked after the import, as locust --processes does: it appends to its own part
    lf._record(**kw)
    lf._record(**kw)
    lf._write_rows(environment=types.SimpleNamespace(runner=None))
    os._exit(0)
os.waitpid(child, 0)
lf._write_rows(environment=types.SimpleNamespace(runner=object.__new__(MasterRunner)))  # the master: nothing
folder = os.path.dirname(os.environ["INTAKE_LOAD_EVENTS"])
parts = {n: len(open(os.path.join(folder, n)).read().splitlines()) for n in os.listdir(folder)}
lf._record(**kw)
lf._write_rows(environment=types.SimpleNamespace(runner=None))  # one process: the path itself, at the end
print(json.dumps([parts, sorted(os.listdir(folder))]))
"""


def test_a_forked_worker_appends_its_own_part_and_the_master_writes_none(photo_cache: Path, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")},
        "INTAKE_LOAD_PHOTO_CACHE": str(photo_cache),
        "INTAKE_LOAD_PHOTOS": "200k",
        "INTAKE_LOAD_EVENTS": str(tmp_path / "events.csv"),
    }
    parts, names = _run_probe(_WRITE_PROBE, env)
    assert list(parts.values()) == [3]  # the worker's part: header and its two rows
    assert next(iter(parts)).startswith("events.part-")
    assert sorted(names) == sorted(["events.csv", *parts])
