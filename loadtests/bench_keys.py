"""CPU of creating a new applicant's data key at the edge: the event-loop create against the SDK's thread path.

A new applicant's upload makes one conditional create in the key store (:meth:`intake.crypto.KeyStore.get_or_create`),
on the API's event loop, during the spike. This script creates ``--keys`` fresh keys per variant and round, with
``--concurrency`` at once, and prints this process's CPU-seconds (``time.process_time``: every thread) per key:

* ``sdk-thread``: the create as it was built before (a presigned URL from the MinIO SDK and a urllib3 ``PUT`` with
  ``If-None-Match: *`` on the store's thread pool), kept here as the baseline;
* ``event-loop``: :meth:`intake.storage.MinioStore.put_if_absent` as the service runs it
  (:class:`intake.s3_create.ConditionalCreates`: SigV4-signed on the loop, kept-alive connections);

each through the whole ``get_or_create`` (a fresh data key, wrapped under the KEK), alternating the order by round,
and the ratio event-loop / sdk-thread.

``--rate R`` measures instead what one create costs a process that makes them one at a time, ``R`` a second (as
the API does for new applicants at that upload rate: between creates the process sleeps and its caches go cold):
the event-loop create paced at ``R``, against the same process waking at ``R`` and doing nothing, CPU per key in
all and net of the wake-ups. With ``--before DIR`` (a checkout of an earlier commit) each tree runs in a process
of its own (``python -P`` with ``PYTHONPATH`` set to the tree, as ``bench_path``), in alternating order, and it
prints now ÷ before within each round.

Needs the S3 server of the environment (``deploy/local/stack.sh start``, then ``eval "$(deploy/local/stack.sh
env)"``); the keys are written in the keys bucket and deleted afterwards.

    .venv/bin/python -m loadtests.bench_keys [--keys 400] [--concurrency 8] [--rounds 3]
    .venv/bin/python -m loadtests.bench_keys --rate 40 [--keys 400] [--rounds 5] [--before DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import time
from datetime import timedelta
from pathlib import Path

from intake.crypto import KeyStore, key_object, parse_keks
from intake.settings import load_settings
from intake.storage import MinioStore, build_store


class _SdkThreadCreates(MinioStore):
    """The store with the conditional create of before (presigned URL, urllib3, thread pool)."""

    async def put_if_absent(self, bucket: str, key: str, data: bytes, content_type: str) -> bool:
        client, http = self._client, self._client._http

        def _put() -> bool:
            url = client.get_presigned_url("PUT", bucket, key, expires=timedelta(minutes=5))
            resp = http.request("PUT", url, body=data, headers={"Content-Type": content_type, "If-None-Match": "*"})
            return 200 <= resp.status < 300

        return await self._run("put_if_absent", _put)


async def _create(keys: KeyStore, names: list[str], concurrency: int) -> float:
    """CPU-seconds of this process per key, creating the keys of applicants ``names``."""
    slots = asyncio.Semaphore(concurrency)

    async def one(applicant: str) -> None:
        async with slots:
            await keys.get_or_create(applicant)

    started = time.process_time()
    await asyncio.gather(*(one(name) for name in names))
    return (time.process_time() - started) / len(names)


async def run(args: argparse.Namespace) -> None:
    settings = load_settings()
    bucket = settings.s3.bucket_keys
    ring = parse_keks("bench:" + base64.b64encode(os.urandom(32)).decode())
    store = build_store(settings)
    sdk = _SdkThreadCreates(store._client, settings.s3.io_threads, store._creates)
    await store.ensure_buckets([bucket])
    variants = {"sdk-thread": KeyStore(sdk, bucket, ring), "event-loop": KeyStore(store, bucket, ring)}
    figures: dict[str, list[float]] = {name: [] for name in variants}
    made: list[str] = []

    def fresh(count: int) -> list[str]:
        names = [os.urandom(32).hex() for _ in range(count)]
        made.extend(names)
        return names

    try:
        await _create(variants["event-loop"], fresh(20), args.concurrency)  # connections, imports
        await _create(variants["sdk-thread"], fresh(20), args.concurrency)
        for rnd in range(args.rounds):
            order = list(variants) if rnd % 2 == 0 else list(reversed(variants))
            for name in order:
                figures[name].append(await _create(variants[name], fresh(args.keys), args.concurrency))
        print(f"{'variant':12s} {'CPU µs per key (median)':>24s}   rounds")
        for name, values in figures.items():
            print(f"{name:12s} {statistics.median(values) * 1e6:24.0f}   {', '.join(f'{v * 1e6:.0f}' for v in values)}")
        ratio = statistics.median(figures["event-loop"]) / statistics.median(figures["sdk-thread"])
        print(f"event-loop / sdk-thread: {ratio:.2f}")
    finally:
        for applicant in made:
            await store.delete(bucket, key_object(applicant))
        sdk.close()
        store.close()


async def _paced_ms(keys: KeyStore | None, names: list[str], rate: float) -> float:
    """ms of this process's CPU per tick, ticking ``rate`` times a second, each tick creating the next key of
    ``names`` (one at a time) or, without ``keys``, doing nothing."""
    started, cpu = time.monotonic(), time.process_time()
    for i, name in enumerate(names):
        await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
        if keys is not None:
            await keys.get_or_create(name)
    return (time.process_time() - cpu) / len(names) * 1e3


async def paced(rate: float, count: int) -> dict[str, float]:
    """{"create": ms per paced create, "idle": ms per paced wake-up doing nothing}, with this process's modules."""
    settings = load_settings()
    bucket = settings.s3.bucket_keys
    store = build_store(settings)
    keys = KeyStore(store, bucket, parse_keks("bench:" + base64.b64encode(os.urandom(32)).decode()))
    made = [os.urandom(32).hex() for _ in range(count + 10)]
    try:
        await store.ensure_buckets([bucket])
        for name in made[:10]:  # the connection, the imports
            await keys.get_or_create(name)
        return {"create": await _paced_ms(keys, made[10:], rate), "idle": await _paced_ms(None, made[10:], rate)}
    finally:
        for applicant in made:
            await store.delete(bucket, key_object(applicant))
        store.close()


def _measure(tree: Path, rate: float, count: int) -> dict[str, float]:
    """Run this script's paced mode under ``tree``'s modules in a fresh process; its figures."""
    from loadtests.procs import run_in_tree  # noqa: PLC0415 - the parent's; a child imports the tree's modules

    figures = run_in_tree(Path(__file__).resolve(), tree, ["--child", "--rate", str(rate), "--keys", str(count)])
    return dict(figures)


def run_paced(args: argparse.Namespace) -> None:
    trees = {"now": Path(__file__).resolve().parent.parent}
    if args.before:
        trees["before"] = args.before.resolve()
    figures: dict[str, list[dict[str, float]]] = {t: [] for t in trees}
    for round_ in range(args.rounds):
        for tree in list(trees) if round_ % 2 == 0 else list(reversed(trees)):
            figures[tree].append(_measure(trees[tree], args.rate, args.keys))
        print(
            f"round {round_}: "
            + ", ".join(
                f"{t} {f[-1]['create']:.3f} ms per create ({f[-1]['idle']:.3f} idle)" for t, f in figures.items()
            ),
            flush=True,
        )
    print(
        f"\nms CPU per key created one at a time at {args.rate:g}/s, median of {args.rounds} rounds of {args.keys}:\n"
    )
    print("| tree | per create | per idle wake-up | net of the wake-up |")
    print("| --- | ---: | ---: | ---: |")
    for tree, rows in figures.items():
        create, idle = (statistics.median(r[k] for r in rows) for k in ("create", "idle"))
        net = statistics.median(r["create"] - r["idle"] for r in rows)
        print(f"| {tree} | {create:.3f} | {idle:.3f} | {net:.3f} |")
    if args.before:
        for k in ("create", "net"):
            paired = [
                (n["create"] - (n["idle"] if k == "net" else 0)) / (b["create"] - (b["idle"] if k == "net" else 0))
                for n, b in zip(figures["now"], figures["before"], strict=True)
            ]
            print(f"now ÷ before, {k}, within each round: median {statistics.median(paired):.3f} "
                  f"({min(paired):.3f}-{max(paired):.3f})")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keys", type=int, default=400, help="keys created per variant and round")
    p.add_argument("--concurrency", type=int, default=8, help="creates in flight at once")
    p.add_argument("--rounds", type=int, default=3, help="rounds, alternating the order of the variants")
    p.add_argument("--rate", type=float, help="paced mode: creates one at a time, this many a second")
    p.add_argument("--before", type=Path, help="paced mode: a checkout of an earlier commit, measured alternately")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(paced(args.rate, args.keys))))
    elif args.rate:
        run_paced(args)
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
