"""CPU cost of sealing an upload's personal data (``intake/crypto.py``) against building the plaintext record.

For each photo size class, in the same run and process: the baseline is what the API does with
``INTAKE_SEAL_RECORDS=false`` to turn an accepted upload into its Kafka record (``parse_registration`` +
``ingest.records.submission_record``: validation, the keyed NIK hash, the photo's SHA-256 and the version-1 envelope);
the variant is what it does by default: the version-2 envelope, the registration JSON and the photo AES-256-GCM sealed
with the applicant's data key (already unwrapped: the key store's round trip on a first submission is measured by
``loadtests/bench_cpu.py --plain``, which compares the whole API on and off). Figures are CPU-seconds of this process
(``time.process_time``) per upload, and the ratio variant / baseline; a weighted row uses the wave mix.
Both are measured first with glibc's default heap (every photo-sized buffer ``mmap``-ed afresh: the kernel zeroes
its pages, which costs more than the AES-GCM itself), then with the heap tuned as the image pool tunes it
(:func:`consumers.image_process.tune_heap`).

    .venv/bin/python -m loadtests.bench_crypto [--rounds 200] [--classes 200k,500k,1m,3m,5m]

The baseline is only the record-building part of the API's CPU per accepted upload (the spike benchmark's
figure also counts HTTP, multipart parsing and the produce), so the ratio printed is an upper bound of the
increase of the API's CPU per upload.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from consumers.image_process import tune_heap
from ingest.records import submission_record
from loadtests.payloads import SIZE_CLASSES, fresh_registration, photo_set
from processors.registration import parse_registration
from tests.support import unit_settings

KEY = bytes(range(32))
NOW = datetime(2026, 1, 1, tzinfo=UTC)
SID = "abcdefghijklmnopqrstuvwxyz"
SETTINGS = unit_settings()
Step = Callable[[dict[str, Any], bytes], None]


def _baseline(raw: dict[str, Any], photo: bytes) -> None:
    parsed = parse_registration(raw, on=date(2026, 1, 1))
    submission_record(SETTINGS, parsed, photo, submission_id=SID, client_id="web", received_at=NOW)


def _sealed(raw: dict[str, Any], photo: bytes) -> None:
    parsed = parse_registration(raw, on=date(2026, 1, 1))
    submission_record(SETTINGS, parsed, photo, submission_id=SID, client_id="web", received_at=NOW, dek=KEY)


def _cpu_per_call(fn: Step, raw: dict[str, Any], photo: bytes, rounds: int) -> float:
    fn(raw, photo)
    started = time.process_time()
    for _ in range(rounds):
        fn(raw, photo)
    return (time.process_time() - started) / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--classes", default=",".join(SIZE_CLASSES))
    args = parser.parse_args()
    labels = [c for c in args.classes.split(",") if c]
    photos = photo_set(labels, per_class=1)
    raw = fresh_registration()
    print(f"{args.rounds} rounds per class, CPU-seconds of this process (the machine may be shared)")
    print("| heap | class | photo bytes | baseline µs CPU | sealed µs CPU | ratio |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    _table("glibc default", labels, photos, raw, args.rounds)
    _table("tuned" if tune_heap() else "tuned (no mallopt: default)", labels, photos, raw, args.rounds)


def _table(heap: str, labels: list[str], photos: dict[str, list[bytes]], raw: dict[str, Any], rounds: int) -> None:
    weighted_base = weighted_sealed = weight = 0.0
    for label in labels:
        photo = photos[label][0]
        base = sealed = 0.0
        for _ in range(2):  # interleaved halves, so drift in a noisy machine hits both
            base += _cpu_per_call(_baseline, raw, photo, rounds // 2)
            sealed += _cpu_per_call(_sealed, raw, photo, rounds // 2)
        base, sealed = base / 2, sealed / 2
        w = SIZE_CLASSES[label].weight
        weighted_base, weighted_sealed, weight = weighted_base + w * base, weighted_sealed + w * sealed, weight + w
        print(f"| {heap} | {label} | {len(photo)} | {base * 1e6:.0f} | {sealed * 1e6:.0f} | {sealed / base:.2f} |")
    if weight:
        b, s = weighted_base / weight, weighted_sealed / weight
        print(f"| {heap} | mix (weighted) | | {b * 1e6:.0f} | {s * 1e6:.0f} | {s / b:.2f} |")


if __name__ == "__main__":
    main()
