"""Replaying dead letters: ``erased`` letters (their data key is destroyed) are skipped and counted unless asked
for; the others are appended to the submissions topic again, in order."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

import consumers.dlq
import intake.kafka
from cli.main import main
from consumers.dlq import NOT_REPLAYED, DeadLetter, replay, replayable
from tests.intake.test_settings import ENV
from tests.support import FakeSink, unit_settings

ERASED = DeadLetter(0, 3, "erased", "intake.submissions.v1[0]@9", b"applicant", b"sealed, key destroyed")
GARBAGE = DeadLetter(0, 4, "envelope_invalid", "intake.submissions.v1[1]@2", b"k", b"<html>")
BUG = DeadLetter(1, 4, "bug:KeyError", "intake.retry.v1[0]@5", b"k2", b"record")


def test_replayable_skips_erased_letters_and_counts_them() -> None:
    chosen, skipped = replayable([ERASED, GARBAGE, ERASED, BUG])
    assert (chosen, dict(skipped)) == ([GARBAGE, BUG], {"erased": 2})
    assert "destroyed" in NOT_REPLAYED["erased"]
    everything, none = replayable([ERASED, GARBAGE], include_unreplayable=True)
    assert (everything, dict(none)) == ([ERASED, GARBAGE], {})


async def test_replay_appends_the_originals_to_the_submissions_topic() -> None:
    sink = FakeSink()
    assert await replay(unit_settings(), sink, [GARBAGE, BUG]) == 2
    assert [(t, k, v, h) for t, k, v, h in sink.records] == [
        ("intake.submissions.v1", b"k", b"<html>", [("intake.replayed.from", b"0:4")]),
        ("intake.submissions.v1", b"k2", b"record", [("intake.replayed.from", b"1:4")]),
    ]


class OpenedSink(FakeSink):
    """A fake broker that counts how often a command connected to it."""

    opened = 0


@pytest.fixture
def dlq_cli(monkeypatch: pytest.MonkeyPatch) -> OpenedSink:
    """``intake dlq`` over a dead-letter topic holding ERASED, GARBAGE, BUG and a fake broker (opened on demand)."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    sink = OpenedSink()

    async def letters(settings: Any) -> AsyncIterator[DeadLetter]:
        for d in (ERASED, GARBAGE, BUG):
            yield d

    @contextlib.asynccontextmanager
    async def running_sink(settings: Any, **kwargs: Any) -> AsyncIterator[FakeSink]:
        sink.opened += 1
        yield sink

    monkeypatch.setattr(consumers.dlq, "read_dead_letters", letters)
    monkeypatch.setattr(intake.kafka, "running_sink", running_sink)
    return sink


def test_replay_all_skips_erased_letters_and_says_why(dlq_cli: OpenedSink, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "replay", "--all"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[-1]) == {"replayed": 2, "skipped": {"erased": 1}}
    assert "skipped 1 dead letter(s) 'erased'" in err and "data key was destroyed" in err
    assert [v for _, _, v, _ in dlq_cli.records] == [GARBAGE.value, BUG.value]


def test_include_erased_replays_them_too(dlq_cli: OpenedSink, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "replay", "--all", "--include-erased"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"replayed": 3, "skipped": {}}
    assert len(dlq_cli.records) == 3


def test_an_erased_letter_named_by_offset_is_skipped_without_calling_kafka(
    dlq_cli: OpenedSink, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "replay", "--offset", "3"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"replayed": 0, "skipped": {"erased": 1}}
    assert dlq_cli.records == [] and dlq_cli.opened == 0


def test_nothing_named_is_exit_2(dlq_cli: OpenedSink) -> None:
    assert main(["dlq", "replay", "--offset", "99"]) == 2


def test_an_offset_two_partitions_have_must_name_its_partition(
    dlq_cli: OpenedSink, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "replay", "--offset", "4"]) == 2
    assert "offset 4 is in partitions 0, 1: name one, as P:4" in capsys.readouterr().err
    assert dlq_cli.records == [] and dlq_cli.opened == 0
    assert main(["dlq", "replay", "--offset", "1:4"]) == 0
    assert [v for _, _, v, _ in dlq_cli.records] == [BUG.value]


@pytest.mark.parametrize("name", ["x", "1:", ":4", "a:4", "-1"])
def test_a_malformed_offset_is_exit_2(dlq_cli: OpenedSink, capsys: pytest.CaptureFixture[str], name: str) -> None:
    assert main(["dlq", "replay", "--offset", name]) == 2
    assert "is not a dead letter's P:N" in capsys.readouterr().err
