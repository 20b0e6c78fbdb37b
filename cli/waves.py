"""``intake waves close|export``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from pathlib import Path

from cli.common import CONNECT_S, load_or_exit


def cmd_waves(args: argparse.Namespace) -> int:
    """Close a wave: select, mark the rest quota_exceeded, publish outcomes. Idempotent and resumable."""
    from consumers.selection import WaveStillOpen, close_wave
    from intake.kafka import QueueUnavailable, running_sink
    from intake.storage import build_store
    from processors.waves import Wave

    settings = load_or_exit()
    w = settings.wave
    if args.number != w.number:
        print(
            f"intake: the service is configured for wave {w.number} (INTAKE_WAVE_NUMBER); set INTAKE_WAVE_* "
            f"for wave {args.number} to close it",
            file=sys.stderr,
        )
        return 2
    wave = Wave(w.number, w.opens_at, w.closes_at, args.quota if args.quota is not None else w.quota)

    async def main() -> int:
        store = build_store(settings)
        try:
            async with running_sink(settings, probe_interval_s=30.0, connect_timeout_s=CONNECT_S) as producer:
                summary = await close_wave(settings, store, producer, wave, seed=args.seed)
        except WaveStillOpen as exc:
            print(f"intake: {exc}", file=sys.stderr)
            return 3
        except QueueUnavailable as exc:
            print(f"intake: {exc}; nothing was closed, run it again", file=sys.stderr)
            return 5
        finally:
            store.close()
        print(json.dumps(dataclasses.asdict(summary)))
        return 0

    return asyncio.run(main())


def cmd_waves_export(args: argparse.Namespace) -> int:
    """Export a closed wave's selected applicants. Exit 3: the wave's close has not finished; 4: some selected
    applicants' registration records are missing (the summary counts them)."""
    from consumers.dlq import progress_bar
    from consumers.export import WaveNotClosed, export_wave
    from consumers.selection import Selection, selection_key
    from intake.storage import build_store

    settings = load_or_exit()
    output = Path(args.output)

    async def main() -> int:
        store = build_store(settings)
        try:
            stored = await store.get(settings.s3.bucket_status, selection_key(args.number))
            total = len(Selection.from_json(stored.data).selected) if stored is not None else 0
            summary = await export_wave(
                settings, store, args.number, output, fmt=args.format, progress=progress_bar(total)
            )
        except WaveNotClosed as exc:
            print(f"intake: {exc}", file=sys.stderr)
            return 3
        finally:
            store.close()
        print(json.dumps({**dataclasses.asdict(summary), "output": str(output)}))
        return 4 if summary.missing else 0

    return asyncio.run(main())
