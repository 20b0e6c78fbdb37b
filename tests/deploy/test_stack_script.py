"""deploy/local/stack.sh refuses at once, with the reason, when its Kafka health check cannot run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

STACK = Path(__file__).resolve().parents[2] / "deploy" / "local" / "stack.sh"


@pytest.mark.parametrize("command", ["start", "start-kafka", "status"])
def test_a_python_without_aiokafka_is_named_before_anything_starts(command: str, tmp_path: Path) -> None:
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\nexit 1\n")  # an interpreter that cannot import aiokafka (nor anything else)
    python.chmod(0o755)
    state = tmp_path / "stack"
    env = {**os.environ, "INTAKE_PYTHON": str(python), "INTAKE_STACK_DIR": str(state)}
    done = subprocess.run(
        ["bash", str(STACK), command], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert f"the Kafka health check runs {python}, which cannot import aiokafka" in done.stderr
    assert not state.exists()  # nothing installed, started or written
