"""The built package carries what ingest serves: the browser client and the demo page (ingest/static)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from ingest.demo import FILES, STATIC_DIR

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("intake", "ingest", "processors", "consumers")


def test_the_wheel_contains_every_static_file(tmp_path: Path) -> None:
    source = tmp_path / "src"
    for name in PACKAGES:
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    proc = subprocess.run(
        [*pip_wheel, "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"ingest/static/{p.name}" for p in STATIC_DIR.iterdir()}
    assert {f"ingest/static/{name}" for name in FILES} <= expected
    assert expected <= names, sorted(expected - names)
