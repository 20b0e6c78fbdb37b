"""Benchmark of the screening index (not a test): build time, lookups per second, memory, vs a Python set.

Usage::

    PYTHONPATH=. .venv/bin/python loadtests/bench_screening.py [--entries 50000000] [--baseline 5000000] [--seed 2024]

Builds a :class:`processors.screening.RegistryIndex` of ``--entries`` random 8-byte digests (generated directly
with numpy: hashing 50 million NIKs in Python would take minutes; the hashing and file-loading costs are measured
on a smaller sample and extrapolated), then measures batch and single lookups and memory, and compares with a
Python ``set`` of 8-byte ``bytes`` holding ``--baseline`` entries (scaled linearly to ``--entries``). Runs in
about 30 seconds on 2 cores; prints a plain-text report.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from processors.screening import PRIORITY, NikHasher, RegistryIndex, load_registry_dir, nik_hash

PEPPER = b"benchmark-pepper-not-a-secret"
MIB = 1024 * 1024


def rss() -> int:
    """Current resident set size of this process, in bytes (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    """Peak resident set size of this process so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def synthetic_niks(n: int) -> list[str]:
    """``n`` distinct, structurally valid synthetic NIKs (not real people's)."""
    out = []
    start = date(1960, 1, 1)
    for i in range(n):
        birth = start + timedelta(days=i % 20000)
        day = birth.day + (40 if i % 2 else 0)
        serial = 1 + i // 20000
        out.append(f"3171{1 + i % 44:02d}{day:02d}{birth.month:02d}{birth.year % 100:02d}{serial:04d}")
    return out


def bench_index(entries: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    gc.collect()
    rss0 = rss()
    t = time.perf_counter()
    keys = np.frombuffer(rng.bytes(8 * entries), dtype=np.uint64).copy()
    sources = rng.integers(0, len(PRIORITY), entries, dtype=np.uint8)
    gen_s = time.perf_counter() - t
    sample_hits = keys[rng.integers(0, entries, 1_000_000)].copy()

    t = time.perf_counter()
    index = RegistryIndex.from_keys(keys, sources)
    build_s = time.perf_counter() - t
    del keys, sources
    gc.collect()
    rss_index = rss() - rss0

    # Batch: 1M queries, half hits, half (almost surely) misses.
    misses = np.frombuffer(rng.bytes(8 * 500_000), dtype=np.uint64)
    queries = np.concatenate([sample_hits[:500_000], misses])
    rng.shuffle(queries)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        found = index.lookup_keys(queries)
        best = min(best, time.perf_counter() - t)
    hit_rate = float((found >= 0).mean())

    # Single lookups through the public API (bytes in, reason code out).
    singles = [int(k).to_bytes(8, "big") for k in queries[:200_000]]
    t = time.perf_counter()
    for digest in singles:
        index.screen(digest)
    single_s = time.perf_counter() - t

    return {
        "entries": float(len(index)),
        "generate_s": gen_s,
        "build_s": build_s,
        "index_bytes": float(index.nbytes),
        "bytes_per_entry": index.nbytes / len(index),
        "rss_index_bytes": float(rss_index),
        "batch_per_s": len(queries) / best,
        "batch_hit_rate": hit_rate,
        "single_per_s": len(singles) / single_s,
        "single_us": single_s / len(singles) * 1e6,
    }


def bench_hashing(sample: int) -> dict[str, float]:
    niks = synthetic_niks(sample)
    t = time.perf_counter()
    for nik in niks:
        nik_hash(nik, PEPPER)
    hash_s = time.perf_counter() - t
    hasher = NikHasher(PEPPER)
    t = time.perf_counter()
    for nik in niks:
        hasher(nik)
    hasher_s = time.perf_counter() - t

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        (path / "bansos.txt").write_text("\n".join(niks) + "\n", encoding="ascii")
        t = time.perf_counter()
        index = load_registry_dir(path, PEPPER)
        load_s = time.perf_counter() - t
    assert len(index) == sample, "synthetic NIKs must be distinct"
    return {
        "sample": float(sample),
        "hash_us": hash_s / sample * 1e6,
        "hasher_us": hasher_s / sample * 1e6,
        "load_us_per_line": load_s / sample * 1e6,
    }


def bench_set(entries: int, seed: int) -> dict[str, float]:
    """A Python set of ``entries`` 8-byte ``bytes``: RSS delta (table + objects), single ``in`` per second."""
    rng = np.random.default_rng(seed + 1)
    raw = rng.bytes(8 * entries)
    probe = [raw[i : i + 8] for i in range(0, 8 * 100_000, 8)] + [rng.bytes(8) for _ in range(100_000)]
    gc.collect()
    rss0 = rss()
    t = time.perf_counter()
    table = {raw[i : i + 8] for i in range(0, len(raw), 8)}
    build_s = time.perf_counter() - t
    gc.collect()
    rss_set = rss() - rss0
    del raw
    t = time.perf_counter()
    hits = 0
    for key in probe:
        if key in table:
            hits += 1
    lookup_s = time.perf_counter() - t
    return {
        "entries": float(len(table)),
        "build_s": build_s,
        "rss_bytes": float(rss_set),
        "bytes_per_entry": rss_set / len(table),
        "single_per_s": len(probe) / lookup_s,
        "hits": float(hits),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--entries", type=int, default=50_000_000)
    parser.add_argument("--baseline", type=int, default=5_000_000)
    parser.add_argument("--hash-sample", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    started = time.perf_counter()

    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs, start RSS {rss() / MIB:.0f} MiB")
    idx = bench_index(args.entries, args.seed)
    print(f"\nRegistryIndex, {idx['entries']:,.0f} entries (random 8-byte digests, 13 sources):")
    print(f"  generate {idx['generate_s']:.1f} s, build (lexsort + dedupe) {idx['build_s']:.1f} s")
    print(f"  arrays {idx['index_bytes'] / MIB:,.0f} MiB = {idx['bytes_per_entry']:.2f} B/entry; ", end="")
    print(f"RSS delta {idx['rss_index_bytes'] / MIB:,.0f} MiB = {idx['rss_index_bytes'] / idx['entries']:.2f} B/entry")
    print(
        f"  batch lookup_keys: {idx['batch_per_s']:,.0f} lookups/s (1M queries, hit rate {idx['batch_hit_rate']:.2f})"
    )
    print(f"  single screen(): {idx['single_per_s']:,.0f} lookups/s ({idx['single_us']:.2f} us each)")

    hashing = bench_hashing(args.hash_sample)
    print(f"\nHashing sample of {hashing['sample']:,.0f} NIKs:")
    print(f"  nik_hash: {hashing['hash_us']:.2f} us each -> {hashing['hash_us'] * args.entries / 1e6:,.0f} s", end="")
    print(f" for {args.entries:,} (one core)")
    print(f"  NikHasher (precomputed HMAC state): {hashing['hasher_us']:.2f} us each -> ", end="")
    print(f"{hashing['hasher_us'] * args.entries / 1e6:,.0f} s for {args.entries:,}")
    print(f"  load_registry_dir from .txt: {hashing['load_us_per_line']:.2f} us/line -> ", end="")
    print(f"{hashing['load_us_per_line'] * args.entries / 1e6:,.0f} s for {args.entries:,} lines (+ build above)")

    base = bench_set(args.baseline, args.seed)
    factor = args.entries / base["entries"]
    print(f"\nBaseline: Python set of {base['entries']:,.0f} 8-byte bytes objects:")
    print(f"  build {base['build_s']:.1f} s; {base['bytes_per_entry']:.1f} B/entry (set table + bytes objects)")
    print(f"  scaled to {args.entries:,}: {base['rss_bytes'] * factor / MIB:,.0f} MiB")
    print(f"  single `in`: {base['single_per_s']:,.0f} lookups/s")

    print("\nRatios (index vs set):")
    print(f"  memory: set / index = {base['bytes_per_entry'] / idx['bytes_per_entry']:.1f}x")
    print(f"  single lookups: index / set = {idx['single_per_s'] / base['single_per_s']:.2f}x")
    print(f"  batch lookups (index) / single `in` (set) = {idx['batch_per_s'] / base['single_per_s']:.2f}x")
    elapsed = time.perf_counter() - started
    print(f"\ntotal runtime {elapsed:.0f} s; peak RSS {peak_rss() / MIB:,.0f} MiB")


if __name__ == "__main__":
    main()
