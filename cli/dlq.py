"""``intake dlq list|replay``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING

from cli.common import CONNECT_S, load_or_exit

if TYPE_CHECKING:
    from consumers.dlq import DeadLetter


def cmd_dlq(args: argparse.Namespace) -> int:
    """List or replay dead letters. A replay skips the letters that can never succeed (``erased``: the data key
    is destroyed), counting them, unless ``--include-erased``. Exit 2: nothing chosen; 5: Kafka did not answer."""
    from consumers.dlq import NOT_REPLAYED, progress_bar, read_dead_letters, replay, replayable
    from intake.kafka import QueueUnavailable, running_sink

    settings = load_or_exit()

    async def main() -> int:
        letters = [d async for d in read_dead_letters(settings)]
        if args.action == "list":
            print(f"{'partition':>9} {'offset':>8} {'bytes':>9}  {'error':<28} source")
            for d in letters:
                print(f"{d.partition:>9} {d.offset:>8} {len(d.value):>9}  {d.error:<28} {d.source}")
            print(f"{len(letters)} dead letter(s)")
            return 0
        named, problem = (letters, None) if args.all else named_letters(letters, args.offset or [])
        if problem:
            print(f"intake: {problem}", file=sys.stderr)
            return 2
        if not named:
            print("intake: nothing to replay (give --all or --offset N)", file=sys.stderr)
            return 2
        chosen, skipped = replayable(named, include_unreplayable=args.include_erased)
        for error, n in sorted(skipped.items()):
            print(f"intake: skipped {n} dead letter(s) {error!r}: {NOT_REPLAYED[error]} (--include-erased replays "
                  "them anyway)", file=sys.stderr)  # fmt: skip
        count = 0
        if chosen:
            try:
                async with running_sink(settings, probe_interval_s=30.0, connect_timeout_s=CONNECT_S) as sink:
                    count = await replay(settings, sink, chosen, progress_bar(len(chosen)))
            except QueueUnavailable as exc:
                print(f"intake: {exc}; replay again (a replayed record may then be appended twice)", file=sys.stderr)
                return 5
        print(json.dumps({"replayed": count, "skipped": dict(skipped)}))
        return 0

    return asyncio.run(main())


def named_letters(letters: list[DeadLetter], names: list[str]) -> tuple[list[DeadLetter], str | None]:
    """The dead letters ``names`` choose (``P:N``: partition P, offset N; ``N``: offset N, when only one partition
    has a letter there), in topic order, or a problem to report: a malformed name, or an offset that letters of
    several partitions have (replaying every one of them was not what was asked)."""
    chosen: set[tuple[int, int]] = set()
    for name in names:
        part, sep, off = name.rpartition(":")
        if not off.isdigit() or (sep and not part.isdigit()):
            return [], f"{name!r} is not a dead letter's P:N (partition:offset) or N (offset)"
        if sep:
            chosen.add((int(part), int(off)))
            continue
        at = sorted(d.partition for d in letters if d.offset == int(off))
        if len(at) > 1:
            return [], f"offset {off} is in partitions {', '.join(map(str, at))}: name one, as P:{off}"
        chosen.update((p, int(off)) for p in at)
    return [d for d in letters if (d.partition, d.offset) in chosen], None
