"""The Prometheus rules and config under deploy/observability, checked and unit-tested with promtool.

promtool must be installed (``deploy/local/prometheus.sh install``): these tests fail, never skip, without it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OBS = REPO / "deploy" / "observability"
SCRIPT = REPO / "deploy" / "local" / "prometheus.sh"


def promtool(*args: str, cwd: Path = OBS) -> str:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool not found: run deploy/local/prometheus.sh install")
    run = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, f"promtool {' '.join(args)} failed:\n{run.stdout}\n{run.stderr}"
    return run.stdout + run.stderr


def test_rules_are_valid() -> None:
    out = promtool("check", "rules", "rules.yml")
    assert "SUCCESS" in out


def test_rule_unit_tests_pass() -> None:
    tests = sorted(p.name for p in (OBS / "tests").glob("*.yml"))
    assert tests, "no promtool rule tests found"
    promtool("test", "rules", *tests, cwd=OBS / "tests")


def test_every_alert_has_a_promtool_test() -> None:
    alerts = set(re.findall(r"^\s*- alert: (\S+)$", (OBS / "rules.yml").read_text(), re.M))
    tested = (OBS / "tests" / "rules_test.yml").read_text()
    assert alerts and all(f"alertname: {a}" in tested for a in alerts), alerts


def test_local_config_is_valid(tmp_path: Path) -> None:
    # As deploy/local/prometheus.sh lays it out: the config with rules.yml next to it.
    shutil.copy(OBS / "prometheus.yml", tmp_path)
    shutil.copy(OBS / "rules.yml", tmp_path)
    (tmp_path / "targets").mkdir()
    out = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert "SUCCESS" in out


def test_script_refuses_a_bad_target_without_starting(tmp_path: Path) -> None:
    env = {**os.environ, "INTAKE_PROMETHEUS_DIR": str(tmp_path / "p"), "INTAKE_PROMETHEUS_LOG": str(tmp_path / "l")}
    run = subprocess.run(
        [str(SCRIPT), "start", "not a target"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode != 0
    assert "bad target" in run.stderr
    assert not (tmp_path / "p" / "pid").exists()
