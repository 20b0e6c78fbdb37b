"""The ``intake`` command: its parser, its entry point and ``python -m cli`` (which ``intake up`` and the
multi-process API start their children with)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {"up", "serve", "consume", "topics", "dlq", "erase", "keys", "audit", "sign", "waves", "settings"}


def test_the_intake_script_is_the_cli() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"intake": "cli.main:main"}


def test_every_command_dispatches_to_its_module() -> None:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    assert set(sub.choices) == COMMANDS  # type: ignore[arg-type]
    for name in COMMANDS - {"waves", "keys"}:
        func = sub.choices[name].get_default("func")  # type: ignore[index]
        assert func.__module__.startswith("cli."), name


def test_python_dash_m_cli_runs_the_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cli", "settings"], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    assert "INTAKE_NIK_PEPPER=" in out


def test_invalid_settings_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("INTAKE_NIK_PEPPER", "")
    with pytest.raises(SystemExit) as exc:
        main(["sign", "GET", "/v1/queue"])
    assert exc.value.code == 2
    assert "invalid settings" in capsys.readouterr().err


def test_keys_rotate_and_its_check_dispatch_to_cli_keys() -> None:
    for argv, check in ((["keys", "rotate"], False), (["keys", "rotate", "--check"], True)):
        args = build_parser().parse_args(argv)
        assert (args.func.__module__, args.check) == ("cli.keys", check)
