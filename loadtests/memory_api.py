"""The ingest API with nothing outside the process: the real app (middlewares, reading, validation, sealing, the
answer) served as ``intake serve`` serves it, but its Kafka and object store are in memory.

What this measures (``loadtests.bench_cpu --floors``, variant ``api-memory``): the CPU of the API's own work per
upload, without the Kafka and S3 clients; the real API minus this is what those clients cost. The in-memory
sink acknowledges at once and keeps nothing (a benchmark sends hundreds of 500 KB records); the store is
:class:`intake.storage.MemoryStore`, so each new applicant's data key is still created, in memory. Settings come
from the environment as for ``intake serve`` (the Kafka and S3 ones are not used).

    .venv/bin/python -m loadtests.memory_api      # serves on INTAKE_HTTP_HOST:INTAKE_HTTP_PORT until SIGTERM
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ingest.app import create_app
from ingest.server import serve
from intake.kafka import Delivery, Headers
from intake.settings import Settings, load_settings
from intake.storage import MemoryStore


class DiscardingSink:
    """A :class:`intake.kafka.RecordSink` that acknowledges every record at once, at the next offset of one
    partition, and keeps none of it."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers = ()) -> Delivery:
        self.sent += 1
        return Delivery(0, self.sent - 1)

    def ready(self) -> bool:
        return True

    def pending(self) -> int:
        return 0


def memory_app(settings: Settings) -> web.Application:
    """The API for ``settings`` on a :class:`DiscardingSink` and a :class:`MemoryStore` holding its buckets."""
    store = MemoryStore()
    s3 = settings.s3
    store.buckets.update({s3.bucket_photos, s3.bucket_status, s3.bucket_registrations, s3.bucket_keys})
    return create_app(settings, sink=DiscardingSink(), store=store)


def main() -> None:
    asyncio.run(serve(load_settings(), app_factory=memory_app))


if __name__ == "__main__":
    main()
