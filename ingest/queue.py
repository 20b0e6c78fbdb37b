"""The public queue watermark behind ``GET /v1/queue``: where the workers stand on each partition, from memory.

A :class:`QueueWatermark` asks an :class:`~intake.offsets.OffsetSource` every ``sample_s`` for the consumer
group's committed offsets on the submissions topic and measures each partition's drain rate over ``window_s``.
A sample whose numbers changed renders the one JSON document every client gets (the same for everybody, no
personal data) with its ETag, so a request costs a dictionary lookup, never a broker call. Unchanged numbers
keep the document, its ``sampled_at`` (when they were first read) and its ETag, so caches revalidate with 304.
A failed sample keeps the last document and counts ``intake_queue_sample_errors_total``.

A client compares its receipt (partition, offset) with the document: while ``committed <= offset`` the
submission is queued, ``offset - committed`` records ahead of it in its partition (:mod:`processors.queue`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from intake.background import background, repeat
from intake.metrics import Metrics
from intake.offsets import DrainRate, KafkaOffsetSource, OffsetSource, PartitionOffsets
from intake.settings import Settings
from intake.topics import topic_names
from processors.queue import Place, place

log = logging.getLogger("intake.ingest.queue")


@dataclass(frozen=True)
class Mark:
    """One partition of the watermark: the group's next offset to process, the log end, the drain rate."""

    partition: int
    committed: int
    end: int
    drain_per_s: float | None


class QueueWatermark:
    """The sampled watermark and its rendered document; see the module docstring. Mutated only by its own task."""

    def __init__(
        self,
        source: OffsetSource,
        metrics: Metrics,
        *,
        group: str,
        topic: str,
        sample_s: float,
        window_s: float,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._metrics = metrics
        self._group = group
        self._topic = topic
        self.sample_s = sample_s
        self._window_s = window_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._rates: dict[int, DrainRate] = {}
        self.marks: dict[int, Mark] = {}
        self.sampled = False
        self.cache_control = f"public, max-age={max(1, math.ceil(sample_s))}"
        self.body, self.etag = self._render(None)

    def where(self, partition: int, offset: int) -> Place | None:
        """The place of the record at (``partition``, ``offset``); ``None`` when passed or not known yet."""
        mark = self.marks.get(partition)
        if mark is None:
            return None
        return place(partition, offset, mark.committed, mark.drain_per_s)

    def passed(self, partition: int, offset: int) -> bool:
        """True only when the watermark is known and the group already processed that record."""
        mark = self.marks.get(partition)
        return mark is not None and offset < mark.committed

    async def sample_once(self) -> None:
        """Read the offsets once and render the document. Raises when the source fails (document untouched)."""
        async with asyncio.timeout(self._timeout_s):
            parts = await self._source.read(self._group, self._topic)
        now = self._clock()
        marks: dict[int, Mark] = {}
        for p in parts:
            rate = self._rates.setdefault(p.partition, DrainRate(self._window_s)).add(now, p.position)
            marks[p.partition] = Mark(p.partition, p.position, p.end, None if math.isnan(rate) else round(rate, 3))
        if marks != self.marks or not self.sampled:  # unchanged numbers keep their document, time and ETag
            self.marks = marks
            self.body, self.etag = self._render(datetime.now(UTC))
            self.sampled = True

    def _render(self, sampled_at: datetime | None) -> tuple[bytes, str]:
        doc = {
            "sampled_at": None if sampled_at is None else sampled_at.isoformat(timespec="seconds"),
            "max_age_seconds": max(1, math.ceil(self.sample_s)),
            "partitions": [
                {"partition": m.partition, "committed": m.committed, "end": m.end, "drain_per_second": m.drain_per_s}
                for m in sorted(self.marks.values(), key=lambda m: m.partition)
            ],
        }
        body = json.dumps(doc, separators=(",", ":")).encode()
        return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'

    async def run(self) -> None:
        """Sample every ``sample_s`` until cancelled; failures are counted and logged, never raised."""
        await repeat(self.sample_once, self.sample_s, self._failed, self._clock)

    def _failed(self, exc: Exception) -> None:
        self._metrics.queue_sample_errors.inc()
        log.warning("queue sample failed", extra={"error": type(exc).__name__})


class NoOffsets:
    """The :class:`~intake.offsets.OffsetSource` of an app whose watermark is never sampled (unit tests with fakes):
    the document stays empty, every place unknown."""

    async def read(self, group: str, topic: str) -> Sequence[PartitionOffsets]:
        raise LookupError("no offset source")


def build_watermark(settings: Settings, metrics: Metrics, source: OffsetSource) -> QueueWatermark:
    """A watermark of the submissions topic for the workers' group, paced by ``settings.status``."""
    return QueueWatermark(
        source,
        metrics,
        group=settings.kafka.group_id,
        topic=topic_names(settings).submissions,
        sample_s=settings.status.queue_sample_s,
        window_s=settings.status.queue_rate_window_s,
        timeout_s=settings.kafka.request_timeout_s,
    )


@contextlib.asynccontextmanager
async def sampling(watermark: QueueWatermark, source: KafkaOffsetSource | None = None) -> AsyncIterator[None]:
    """Run ``watermark``'s sampler while the block runs; on exit stop it and close ``source`` (if owned)."""
    try:
        async with background(watermark.run(), name="queue-watermark"):
            yield
    finally:
        if source is not None:
            await source.close()


def queue_response(request: web.Request, watermark: QueueWatermark) -> web.Response:
    """The watermark document (or 304 for a matching ``If-None-Match``), cacheable by anyone for ``max-age``."""
    headers = {"ETag": watermark.etag, "Cache-Control": watermark.cache_control}
    if watermark.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=watermark.body, content_type="application/json", headers=headers)
