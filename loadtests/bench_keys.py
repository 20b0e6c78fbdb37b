"""CPU of creating a new applicant's data key at the edge: the event-loop create against the SDK's thread path.

A new applicant's upload makes one conditional create in the key store (:meth:`intake.crypto.KeyStore.get_or_create`),
on the API's event loop, during the spike. This script creates ``--keys`` fresh keys per variant and round, with
``--concurrency`` at once, and prints this process's CPU-seconds (``time.process_time``: every thread) per key:

* ``sdk-thread``: the create as it was built before (a presigned URL from the MinIO SDK and a urllib3 ``PUT`` with
  ``If-None-Match: *`` on the store's thread pool), kept here as the baseline;
* ``event-loop``: :meth:`intake.storage.MinioStore.put_if_absent` as the service runs it
  (:class:`intake.s3_create.ConditionalCreates`: SigV4-signed on the loop, kept-alive connections);

each through the whole ``get_or_create`` (a fresh data key, wrapped under the KEK), alternating the order by round,
and the ratio event-loop / sdk-thread. Needs the S3 server of the environment (``deploy/local/stack.sh start``,
then ``eval "$(deploy/local/stack.sh env)"``); the keys are written under ``bench-keys/`` in the keys bucket and
deleted afterwards.

    .venv/bin/python -m loadtests.bench_keys [--keys 400] [--concurrency 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import time
from datetime import timedelta

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keys", type=int, default=400, help="keys created per variant and round")
    p.add_argument("--concurrency", type=int, default=8, help="creates in flight at once")
    p.add_argument("--rounds", type=int, default=3, help="rounds, alternating the order of the variants")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
