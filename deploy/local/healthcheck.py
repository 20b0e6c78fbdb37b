"""Health probe used by deploy/local/stack.sh: exit 0 when the service answers a real request.

``python healthcheck.py kafka HOST:PORT [BROKERS]`` sends a Kafka metadata request to that node (through aiokafka's
admin client) and succeeds only when it answers with at least BROKERS brokers (default 1: a cluster's node is
healthy once every node has registered). Blocks at most a few seconds.
"""

from __future__ import annotations

import asyncio
import sys


async def _kafka(bootstrap: str, brokers: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        async with asyncio.timeout(4):
            await admin.start()
        async with asyncio.timeout(4):
            cluster = await admin.describe_cluster()
        if len(cluster.get("brokers") or []) < brokers:
            raise RuntimeError(f"metadata response lists fewer than {brokers} brokers")
    finally:
        await admin.close()


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4) or argv[1] != "kafka":
        print("usage: healthcheck.py kafka HOST:PORT [BROKERS]", file=sys.stderr)
        return 2
    try:
        asyncio.run(_kafka(argv[2], int(argv[3]) if len(argv) == 4 else 1))
    except Exception as exc:
        print(f"unhealthy: {exc!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
