"""``intake consume``: one consumer group member, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal

from cli.common import load_or_exit


def cmd_consume(args: argparse.Namespace) -> int:
    from consumers.runner import run_consumer

    settings = load_or_exit()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_consumer(settings, stop)

    asyncio.run(main())
    return 0
