"""Inspecting and replaying the dead-letter topic (``intake dlq list|replay``).

A dead letter is the original record (key and value, untouched) with headers saying why it could not be
processed (``intake.error``: ``envelope_invalid`` or ``bug:<ExceptionType>``) and where it came from. Reading
never joins a consumer group and never commits (:func:`intake.kafka.read_topic`), so it terminates. Replay
appends the original records to the submissions topic again (acks=all); since every write downstream is
idempotent, replaying a record twice is harmless. Dead letters that can never succeed, whatever is fixed, are not
replayed unless asked for (:data:`NOT_REPLAYED`, :func:`replayable`): an ``erased`` record was sealed with a data
key an erasure destroyed, so a replay would only dead-letter it again.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from intake.kafka import RecordSink, read_topic
from intake.settings import Settings
from intake.topics import topic_names


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered record. ``value``/``key`` are the original bytes (personal data: never print them)."""

    partition: int
    offset: int
    error: str
    source: str
    key: bytes
    value: bytes


async def read_dead_letters(settings: Settings) -> AsyncIterator[DeadLetter]:
    """Every record of the dead-letter topic that existed when this started, in partition and offset order."""
    async for record in read_topic(settings, topic_names(settings).dead_letter):
        headers = {k: v.decode(errors="replace") for k, v in record.headers}
        h = headers.get
        yield DeadLetter(
            partition=record.partition,
            offset=record.offset,
            error=h("intake.error", "unknown"),
            source=f"{h('intake.source.topic', '?')}[{h('intake.source.partition', '?')}]"
            f"@{h('intake.source.offset', '?')}",
            key=record.key or b"",
            value=record.value or b"",
        )


NOT_REPLAYED = {
    "erased": "the applicant's data key was destroyed (intake erase): the record can never be opened again, and a "
    "replay would only dead-letter it again",
}
"""Errors whose dead letters a replay skips by default, and why."""


def replayable(
    letters: list[DeadLetter], *, include_unreplayable: bool = False
) -> tuple[list[DeadLetter], Counter[str]]:
    """The ``letters`` worth replaying, in order, and how many of the others were skipped per error (none with
    ``include_unreplayable``)."""
    if include_unreplayable:
        return list(letters), Counter()
    skipped = Counter(d.error for d in letters if d.error in NOT_REPLAYED)
    return [d for d in letters if d.error not in NOT_REPLAYED], skipped


def progress_bar(total: int, out: Callable[[str], object] = sys.stderr.write) -> Callable[[int], None]:
    """A one-line text progress bar: call it with the number done so far."""

    def show(done: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        out(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            out("\n")

    return show


async def replay(
    settings: Settings, sink: RecordSink, letters: list[DeadLetter], progress: Callable[[int], None] | None = None
) -> int:
    """Append ``letters`` to the submissions topic again, in order; returns how many were replayed."""
    topic = topic_names(settings).submissions
    for done, letter in enumerate(letters, start=1):
        await sink.send(
            topic, letter.key, letter.value, [("intake.replayed.from", f"{letter.partition}:{letter.offset}".encode())]
        )
        if progress is not None:
            progress(done)
    return len(letters)
