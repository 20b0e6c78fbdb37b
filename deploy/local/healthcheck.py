"""Health probe used by deploy/local/stack.sh: exit 0 when the service answers a real request.

``python healthcheck.py kafka HOST:PORT`` sends a Kafka metadata request (through aiokafka's admin client) and
succeeds only when the broker answers it with at least one broker. Blocks at most a few seconds.
"""

from __future__ import annotations

import asyncio
import sys


async def _kafka(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await asyncio.wait_for(admin.start(), timeout=4)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout=4)
        if not cluster.get("brokers"):
            raise RuntimeError("metadata response lists no broker")
    finally:
        await admin.close()


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] != "kafka":
        print("usage: healthcheck.py kafka HOST:PORT", file=sys.stderr)
        return 2
    try:
        asyncio.run(_kafka(argv[2]))
    except Exception as exc:
        print(f"unhealthy: {exc!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
