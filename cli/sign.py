"""``intake sign METHOD PATH``: headers signing one API request."""

from __future__ import annotations

import argparse

from cli.common import load_or_exit


def cmd_sign(args: argparse.Namespace) -> int:
    """Print the headers that sign one request (for curl: ``-H "$line"`` each), with a key of ``--scope``."""
    from intake.auth import sign, signing_key

    settings = load_or_exit()
    key = signing_key(settings.security.client_keys, args.scope)
    headers = sign(key, args.method, args.path, idempotency_key=args.idempotency_key, actor=args.actor)
    if args.idempotency_key:
        headers["Idempotency-Key"] = args.idempotency_key
    for name, value in headers.items():
        print(f"{name}: {value}")
    return 0
