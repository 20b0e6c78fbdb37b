"""``intake erase`` as a command: NIKs on standard input, one JSON report per applicant, exit 5 (run it again)
when the store fails midway."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

import intake.kafka
import intake.storage
from cli.main import main
from intake.storage import MemoryStore
from tests.intake.test_settings import ENV
from tests.support import FakeSink

NIKS = ("3171015705950001", "3171015705950002")


class ConnectedSink(FakeSink):
    async def wait_connected(self, timeout_s: float) -> bool:
        return True


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    """The command's store (in memory, with the service's buckets) and broker; the NIKs on standard input."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    memory = MemoryStore()
    memory.buckets.update({"intake-ktp", "intake-status", "intake-registrations", "intake-keys"})

    @contextlib.asynccontextmanager
    async def running_sink(settings: Any, **kwargs: Any) -> AsyncIterator[FakeSink]:
        yield ConnectedSink()

    monkeypatch.setattr(intake.storage, "build_store", lambda settings: memory)
    monkeypatch.setattr(intake.kafka, "running_sink", running_sink)
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(NIKS) + "\n"))
    return memory


def test_erases_each_applicant_and_names_them_by_a_hash_prefix(
    store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["erase"]) == 0
    out = capsys.readouterr().out
    reports = [json.loads(line) for line in out.splitlines()]
    assert [len(r["nik_hash"]) for r in reports] == [16, 16] and not any(n in out for n in NIKS)


def test_a_store_failure_midway_is_exit_5_and_says_to_run_it_again(
    store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    store.fail_next = 1
    assert main(["erase"]) == 5
    captured = capsys.readouterr()
    assert "0 of 2 applicant(s) erased" in captured.err and "run it again" in captured.err
    assert captured.out == "" and not any(n in captured.err for n in NIKS)
