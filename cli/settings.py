"""``intake settings``: every environment variable with its default and meaning."""

from __future__ import annotations

import argparse

from intake.settings import documented, markdown_table


def cmd_settings(args: argparse.Namespace) -> int:
    if args.markdown:
        print(markdown_table())
    else:
        for d in documented():
            print(f"{d.env}={d.default}\n    {d.doc}")
    return 0
