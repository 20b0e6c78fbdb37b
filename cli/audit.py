"""``intake audit list``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from cli.common import load_or_exit


def cmd_audit(args: argparse.Namespace) -> int:
    """Print the audit log of KTP image reads (JSON lines, oldest first)."""
    from intake.audit import read_audit

    settings = load_or_exit()

    async def main() -> int:
        count = 0
        async for record in read_audit(settings, args.submission):
            print(record.to_json().decode())
            count += 1
        print(f"{count} read(s)", file=sys.stderr)
        return 0

    return asyncio.run(main())
