"""``intake serve``: the API (one process, or several sharing the port)."""

from __future__ import annotations

import argparse
import asyncio

from cli.common import load_or_exit


def cmd_serve(args: argparse.Namespace) -> int:
    from ingest.server import process_count, serve, serve_processes

    settings = load_or_exit()
    if process_count(settings) > 1:
        return serve_processes(settings)
    asyncio.run(serve(settings))
    return 0
