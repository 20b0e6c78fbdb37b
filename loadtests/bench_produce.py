"""aiokafka under many concurrent produces (its issue #528): ``send_and_wait`` per request vs ``send()`` futures.

Both variants keep ``concurrency`` produces in flight against the same topic, with acks=all and idempotence as
the service uses, for the same number of records of the same size, in the same run; the script prints records/s,
MB/s and p50/p99 acknowledgement latency for each and the ratio. ``AIOKafkaSink`` uses the second form (``await
producer.send()`` to enqueue, then await the future), which is what each ingest request does.

    .venv/bin/python -m loadtests.bench_produce [--records 3000] [--size 500000] [--concurrency 64]

Needs a running Kafka (``deploy/local/stack.sh start`` and its ``env``); creates and deletes its own topic.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

Produce = Callable[[AIOKafkaProducer, str, bytes], Awaitable[None]]


async def via_send_and_wait(producer: AIOKafkaProducer, topic: str, value: bytes) -> None:
    await producer.send_and_wait(topic, value)


async def via_send_future(producer: AIOKafkaProducer, topic: str, value: bytes) -> None:
    future = await producer.send(topic, value)
    await future


async def run(
    bootstrap: str,
    topic: str,
    produce: Produce,
    *,
    records: int,
    size: int,
    concurrency: int,
) -> tuple[float, list[float]]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, max_request_size=size + 65536, linger_ms=5
    )
    await producer.start()
    value = os.urandom(size)
    latencies: list[float] = []
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            started = time.perf_counter()
            await produce(producer, topic, value)
            latencies.append(time.perf_counter() - started)

    try:
        await produce(producer, topic, value)  # warm-up: metadata and connections
        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(records)))
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    return elapsed, latencies


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--size", type=int, default=500_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    bootstrap = os.environ.get("INTAKE_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    topic = f"bench-produce-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 6, 1, topic_configs={"max.message.bytes": str(args.size + 65536)})])
    try:
        rows = []
        for name, produce in (("send_and_wait", via_send_and_wait), ("send() + future", via_send_future)):
            elapsed, lat = await run(
                bootstrap, topic, produce, records=args.records, size=args.size, concurrency=args.concurrency
            )
            rate = args.records / elapsed
            rows.append((name, rate, rate * args.size / 1e6, _pct(lat, 50), _pct(lat, 99)))
    finally:
        await admin.delete_topics([topic])
        await admin.close()
    print(f"{args.records} records of {args.size} bytes, {args.concurrency} in flight, acks=all, idempotent")
    print("| variant | records/s | MB/s | p50 ms | p99 ms |\n| --- | ---: | ---: | ---: | ---: |")
    for name, rate, mbs, p50, p99 in rows:
        print(f"| {name} | {rate:.0f} | {mbs:.1f} | {p50:.1f} | {p99:.1f} |")
    print(f"ratio send() futures / send_and_wait (records/s): {rows[1][1] / rows[0][1]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
