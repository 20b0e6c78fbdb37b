"""The data-path benchmark measures the upload handler's path, and its child process answers one figure."""

from __future__ import annotations

import pytest

from loadtests.bench_path import REPO, _measure, cpu_us_per_upload, main


@pytest.mark.parametrize("cold", [False, True])
async def test_the_path_runs_and_costs_cpu(cold: bool) -> None:
    assert await cpu_us_per_upload(2, cold) > 0


def test_a_tree_is_measured_in_a_process_of_its_own() -> None:
    assert _measure(REPO, "warm", 2) > 0


def test_the_table_names_both_trees(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--uploads", "1", "--rounds", "1"])
    out = capsys.readouterr().out
    assert "| warm |" in out and "| cold |" in out and "now ÷ before" in out
