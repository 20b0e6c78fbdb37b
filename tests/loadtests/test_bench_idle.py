"""The idle-CPU benchmark: the environment each tree's API runs with, and the settings it accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.bench_idle import main, serve_env


def test_each_tree_serves_its_own_modules_on_its_port_with_the_run_settings(tmp_path: Path) -> None:
    env = serve_env(tmp_path, 18555, ["INTAKE_MAX_LOOP_LAG_MS=0", "INTAKE_X=a=b"])
    assert env["PYTHONPATH"] == str(tmp_path) and env["INTAKE_HTTP_PORT"] == "18555"
    assert env["INTAKE_MAX_LOOP_LAG_MS"] == "0" and env["INTAKE_X"] == "a=b"  # split at the first '=' only


@pytest.mark.parametrize("bad", ["MAX_LOOP_LAG_MS=0", "INTAKE_NO_VALUE"])
def test_a_setting_that_is_not_intake_x_equals_v_is_refused(bad: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--api-env", bad])
    assert exited.value.code == 2
