"""``intake erase``: NIKs on standard input."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys

from cli.common import CONNECT_S, load_or_exit


def cmd_erase(args: argparse.Namespace) -> int:
    """Erase applicants' data. NIKs are read from standard input (one per line), never from the command line,
    so they stay out of shell history and process lists; ``--nik-hash`` takes keyed hashes instead. Needs Kafka
    too (the ``erased`` registration records): exit 5, nothing erased, when it does not answer; exit 5 too when the
    store or Kafka fails midway (run it again: an erasure is idempotent and a re-run finishes it)."""
    from consumers.erasure import erase_applicant
    from intake.kafka import QueueUnavailable, running_sink
    from intake.storage import StorageUnavailable, build_store
    from processors.screening import nik_hash_hex

    settings = load_or_exit()
    pepper = settings.security.nik_pepper.encode()
    hashes = list(args.nik_hash or [])
    if not hashes:
        hashes = [nik_hash_hex("".join(line.split()), pepper) for line in sys.stdin if line.strip()]
    if not hashes:
        print("intake: give NIKs on standard input or --nik-hash", file=sys.stderr)
        return 2

    async def main() -> int:
        store = build_store(settings)
        try:
            async with running_sink(settings, probe_interval_s=30.0) as sink:
                if not await sink.wait_connected(CONNECT_S):
                    print("intake: Kafka is not reachable; nothing was erased", file=sys.stderr)
                    return 5
                for done, digest in enumerate(hashes):
                    try:
                        report = await erase_applicant(settings, store, digest, sink)
                    except (StorageUnavailable, QueueUnavailable) as exc:
                        print(f"intake: {exc}; {done} of {len(hashes)} applicant(s) erased, the others not (fully): "
                              "run it again", file=sys.stderr)  # fmt: skip
                        return 5
                    print(json.dumps({"nik_hash": digest[:16], **dataclasses.asdict(report)}))
        finally:
            store.close()
        return 0

    return asyncio.run(main())
