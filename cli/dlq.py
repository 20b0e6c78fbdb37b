"""``intake dlq list|replay``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from cli.common import CONNECT_S, load_or_exit


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
        named = letters if args.all else [d for d in letters if d.offset in set(args.offset or [])]
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
