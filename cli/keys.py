"""``intake keys rotate [--check]``: rewrap the applicants' data keys under the active key-encryption key."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from typing import TYPE_CHECKING

from cli.common import load_or_exit

if TYPE_CHECKING:
    from intake.key_rotation import KeyCensus, RotationSummary


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """Rewrap every stored data key that is not under the active KEK (the first of ``INTAKE_DATA_KEKS``), with a
    running count on stderr and a JSON summary on stdout; ``--check`` only counts the keys per KEK id.

    Exit 0: done (with ``--check``: no key is left under another KEK, whose entries may now be removed);
    3: ``--check`` found keys still under an older KEK (run ``intake keys rotate``), or the store does not honour
    ``If-Match`` (nothing was rewrapped); 4: some keys do not unwrap (named on stderr; with ``--check``: keys under
    a KEK that is not listed, or objects that are not wrapped keys); 5: the key store did not answer (run it again:
    keys already rewrapped are skipped)."""
    from intake.crypto import parse_keks
    from intake.key_rotation import census, rotate_keys
    from intake.storage import StorageUnavailable, StoreUnfit, build_store
    from intake.store_probe import probe_conditional_replace

    settings = load_or_exit()
    ring = parse_keks(settings.security.data_keks)
    bucket, window = settings.s3.bucket_keys, settings.security.key_rotation_window

    async def main() -> int:
        store = build_store(settings)
        try:
            if args.check:
                return _report_census(await census(store, bucket, ring, window, _show_census))
            await probe_conditional_replace(store, bucket)
            summary = await rotate_keys(store, bucket, ring, window, _show_rotation)
        except StoreUnfit as exc:
            _say(f"{exc}; nothing was rewrapped (without conditional writes a rotation could bring back a key an "
                 "erasure destroyed)")  # fmt: skip
            return 3
        except StorageUnavailable as exc:
            _say(f"\nthe key store did not answer ({exc}); run it again: keys already rewrapped are skipped")
            return 5
        finally:
            store.close()
        print(file=sys.stderr)
        for failure in summary.failures:
            _say(failure)
        print(json.dumps(dataclasses.asdict(summary)))
        if summary.failed:
            _say(f"{summary.failed} key(s) do not unwrap with INTAKE_DATA_KEKS (see above); the others are done")
            return 4
        _say(f"every data key is under {ring.active.kid!r}; confirm with `intake keys rotate --check`")
        return 0

    return asyncio.run(main())


def _report_census(counted: KeyCensus) -> int:
    """Print the census (JSON on stdout, advice on stderr); its exit code."""
    print(file=sys.stderr)
    extra = {"to_rewrap": counted.to_rewrap, "unknown": counted.unknown, "removable": counted.removable}
    print(json.dumps({**dataclasses.asdict(counted), **extra}))
    if counted.unknown or counted.unreadable:
        _say("some stored keys cannot be unwrapped with INTAKE_DATA_KEKS (an unlisted KEK id, or not a wrapped key)")
        return 4
    if counted.to_rewrap:
        _say(f"{counted.to_rewrap} key(s) still under an older KEK: run `intake keys rotate`")
        return 3
    if counted.removable:
        _say(f"no key is under {', '.join(counted.removable)}: remove them from INTAKE_DATA_KEKS")
    return 0


def _say(message: str) -> None:
    print(f"intake: {message}", file=sys.stderr)


def _show_rotation(s: RotationSummary) -> None:
    sys.stderr.write(
        f"\r{s.scanned} key(s): {s.rewrapped} rewrapped, {s.current} current, {s.gone} gone, {s.failed} failed"
    )


def _show_census(c: KeyCensus) -> None:
    per_kek = ", ".join(f"{n} under {kid}" for kid, n in c.by_kek.items())
    sys.stderr.write(f"\r{c.scanned} key(s): {per_kek}, {c.unreadable} unreadable")
