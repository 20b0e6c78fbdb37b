"""No log line of the test session contains a valid NIK (runs last; see tests/observability/conftest.py)."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from processors.nik import check_nik_structure
from processors.reasons import Rejected
from tests.observability.conftest import REPO, log_capture_path

# 16 digits not inside a longer run of digits or letters (hex digests and ids are not NIKs).
CANDIDATE = re.compile(r"(?<![0-9A-Za-z])\d{16}(?![0-9A-Za-z])")


def niks_in(text: str) -> Iterator[str]:
    for match in CANDIDATE.finditer(text):
        try:
            check_nik_structure(match.group())
        except Rejected:
            continue
        yield match.group()


def test_the_scanner_finds_a_nik_and_ignores_other_numbers() -> None:
    assert list(niks_in('{"nik": "3171015705950001"} x=3171015705950002')) == ["3171015705950001", "3171015705950002"]
    assert list(niks_in("0000000000000000 9999999999999999 31710157059500011 ab3171015705950001")) == []


def test_no_log_line_contains_a_nik(pytestconfig: pytest.Config) -> None:
    captured = log_capture_path(pytestconfig)
    assert captured is not None and captured.exists()
    sentinel = f"log-capture-sentinel-{os.getpid()}"
    logging.getLogger("intake.test").info(sentinel)
    assert sentinel in captured.read_text(encoding="utf-8"), "the session's log capture is not attached"
    stack = Path(os.environ.get("INTAKE_STACK_DIR", REPO / ".stack"))
    files = [captured, *sorted((stack / "logs").glob("*"))]
    found: list[str] = []
    for path in files:
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                found += [f"{path.name}:{number}: …{nik[:6]}…" for nik in niks_in(line)]
    assert not found, f"valid NIKs in the logs (first 20): {found[:20]}"
