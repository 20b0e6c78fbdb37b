"""The status view: every submission's latest status in memory, materialised from the compacted status topic.

Contract:

* :class:`StatusView` maps submission id -> the latest :class:`~intake.status.StatusRecord` published to the
  status topic (:mod:`intake.status_topic`), compressed. It holds at most ``max_entries``; past that the oldest
  updated entry is dropped (``evicted`` counts them) and a read of it falls back to the object store, which stays
  the durable record. ``caught_up`` turns true once the topic was replayed up to the end offsets it had when
  the replay started; readiness waits for it.
* :func:`follow_status_topic` (a task the app runs in ``cleanup_ctx``) replays the topic from the beginning with
  a group-less consumer, then follows it until cancelled; after a broker failure it reconnects and resumes from
  the positions it reached. Nothing is committed and no group is joined: every API process reads everything.

Memory: an entry is its key (the 26-byte submission id, ~59 bytes as ``bytes``), the record compressed with a
preset dictionary (raw deflate, 100-130 bytes for an ``eligible`` record of ~550 bytes of JSON, ~150 bytes as
``bytes``) and its dictionary slot (~50-100 bytes): about 300 bytes. ``loadtests/bench_status.py`` measures it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import zlib
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, TopicPartition

from intake.kafka import connection_config, start_client, topic_partitions
from intake.metrics import Metrics
from intake.settings import Settings
from intake.status import StatusRecord
from intake.topics import topic_names

log = logging.getLogger("intake.ingest.status_view")

_ZDICT = (
    b'{"facts":{},"measured":null,"objects":{},"reason":"duplicate_registration","state":"erased",'
    b'"submission_id":"","threshold":null,"updated_at":"2026-01-01T00:00:00.000000+00:00"}'
    b'{"facts":{"first_submission_id":"","wave_closed_at":"2026-01-01T00:00:00+07:00"},"measured":0.0,'
    b'"objects":{},"reason":"blurry","state":"rejected","submission_id":"","threshold":60.0,'
    b'"updated_at":"2026-01-01T00:00:00.000000+00:00"}'
    b'{"facts":{"card_found":true,"height":1200,"quality":{"blur":312.345,"glare_fraction":0.00123,'
    b'"mean_luma":145.678},"received_at":"2026-01-01T00:00:00.000000+00:00","sha256":"","source_format":"JPEG",'
    b'"wave":1,"width":1600},"measured":null,"objects":{"card":"ktp/'
    b'/card.jpg","frame":"ktp/'
    b'/frame.jpg"},"reason":null,"state":"eligible","submission_id":"'
    b'","threshold":null,"updated_at":"2026-01-01T00:00:00.000000+00:00"}'
)
"""Preset dictionary of the in-memory codec: the shapes of status records (most frequent last). Never
persisted, so it may change between versions."""


class _Codec:
    """Raw deflate with :data:`_ZDICT`; copies a primed (de)compressor instead of building one per record."""

    def __init__(self) -> None:
        self._compress = zlib.compressobj(6, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, _ZDICT)
        self._decompress = zlib.decompressobj(-15, _ZDICT)

    def pack(self, raw: bytes) -> bytes:
        c = self._compress.copy()
        return c.compress(raw) + c.flush()

    def unpack(self, packed: bytes) -> bytes:
        return self._decompress.copy().decompress(packed)


_RECORD, _FINAL, _PENDING = b"r", b"f", b"p"
"""Entry tags: a status record as published; or the answer rendered from it (ETag, then body), for a final or a
not yet final state. A record becomes its rendered answer on its first read (:meth:`StatusView.remember`), so
later reads and 304s of that submission cost a lookup (and a decompression for a 200), never JSON work."""
_ETAG_BYTES = 34


class Rendered(NamedTuple):
    """A memoised answer: its ETag, whether the state is final, and the compressed body (:meth:`StatusView.body`)."""

    etag: str
    final: bool
    packed: bytes


class StatusView:
    """Bounded map of submission id -> latest status; see the module docstring. Used from one event loop."""

    def __init__(self, max_entries: int, metrics: Metrics | None = None) -> None:
        self.max_entries = max_entries
        self._entries: dict[bytes, bytes] = {}
        self._codec = _Codec()
        self._metrics = metrics
        self.caught_up = False
        self.evicted = 0
        self.applied = 0

    def __len__(self) -> int:
        return len(self._entries)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Take one record of the status topic: a status (replacing the previous one) or, for a ``None`` value,
        the removal of that submission. Records without a key are ignored."""
        if key is None:
            return
        self.applied += 1
        entries = self._entries
        if value is None:
            entries.pop(key, None)
            return
        packed = _RECORD + self._codec.pack(value)
        if entries.pop(key, None) is None and len(entries) >= self.max_entries:
            if not entries:
                return
            del entries[next(iter(entries))]  # oldest update first: dicts keep insertion order
            self.evicted += 1
        entries[key] = packed

    def get(self, submission_id: str) -> StatusRecord | None:
        """The latest status of ``submission_id``, or ``None`` when the view does not hold it (not processed
        yet, dropped past the bound, or not caught up): then the object store answers. Never blocks."""
        entry = self._entries.get(submission_id.encode())
        if entry is None:
            return None
        try:
            if entry[:1] == _RECORD:
                return StatusRecord.from_json(self._codec.unpack(entry[1:]))
            return record_of_answer(json.loads(self._codec.unpack(entry[1 + _ETAG_BYTES :])))
        except (ValueError, TypeError, KeyError, zlib.error):  # a record this version cannot read: the store answers
            return None

    def rendered(self, submission_id: str) -> Rendered | None:
        """The answer memoised for ``submission_id`` by :meth:`remember`, if its status did not change since."""
        entry = self._entries.get(submission_id.encode())
        if entry is None or entry[:1] == _RECORD:
            return None
        return Rendered(entry[1 : 1 + _ETAG_BYTES].decode(), entry[:1] == _FINAL, entry[1 + _ETAG_BYTES :])

    def body(self, packed: bytes) -> bytes:
        """The body of a :class:`Rendered` answer."""
        return self._codec.unpack(packed)

    def remember(self, submission_id: str, etag: str, final: bool, body: bytes) -> None:
        """Keep the answer rendered from the status this view holds for ``submission_id`` in its place (the
        caller rendered it from :meth:`get` without awaiting in between, so it is of the current status).
        ``etag`` is the quoted 32-hex-digit ETag."""
        key = submission_id.encode()
        if key in self._entries and len(etag) == _ETAG_BYTES:
            self._entries[key] = (_FINAL if final else _PENDING) + etag.encode() + self._codec.pack(body)

    def mark_caught_up(self) -> None:
        self.caught_up = True
        if self._metrics is not None:
            self._metrics.status_view_caught_up.set(1)

    def report(self) -> None:
        """Export the size of the view as metrics."""
        if self._metrics is not None:
            self._metrics.status_view_entries.set(len(self._entries))
            self._metrics.status_view_evicted.set(self.evicted)


def record_of_answer(body: dict[str, Any]) -> StatusRecord:
    """The status record an answer was rendered from: the inverse of :func:`ingest.status_read.status_body` for a
    stored record (``tests/ingest/test_status_view.py`` checks the round trip)."""
    reason = body["reason"]
    return StatusRecord(
        body["submission_id"],
        body["state"],
        body["updated_at"],
        reason=None if reason is None else reason["code"],
        measured=None if reason is None else reason["measured"],
        threshold=None if reason is None else reason["threshold"],
        objects=body["objects"],
        facts=body["facts"],
    )


def status_consumer(settings: Settings) -> AIOKafkaConsumer:
    """A new, unstarted group-less consumer for the status topic (the caller starts and stops it)."""
    k = settings.kafka
    return AIOKafkaConsumer(
        **connection_config(settings),
        client_id=f"{k.client_id}-status-view",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=settings.limits.max_message_bytes,
        request_timeout_ms=max(k.request_timeout_ms, 40_000),
        isolation_level="read_committed",
    )


async def follow_status_topic(
    settings: Settings, view: StatusView, *, retry_s: float = 1.0, max_retry_s: float = 30.0
) -> None:
    """Replay the status topic into ``view``, mark it caught up, then follow it; runs until cancelled. A failure
    (broker down, topic absent: run ``intake topics create``) is logged and retried, resuming where it stopped,
    after ``retry_s`` doubling up to ``max_retry_s`` while failures follow each other."""
    positions: dict[int, int] = {}
    started = time.monotonic()
    delay = retry_s / 2
    while True:
        consumer = status_consumer(settings)
        applied = view.applied
        try:
            await start_client(consumer.start(), consumer.stop, settle_s=settings.kafka.request_timeout_s)
            await _run(settings, consumer, view, positions=positions, started=started)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            delay = retry_s if view.applied > applied else min(max_retry_s, delay * 2)
            log.warning(
                "status topic not readable; retrying",
                extra={"error": f"{type(exc).__name__}: {exc}", "retry_s": delay},
            )
        finally:
            await _stop(consumer)
        await asyncio.sleep(delay)


async def _run(
    settings: Settings, consumer: AIOKafkaConsumer, view: StatusView, *, positions: dict[int, int], started: float
) -> None:
    topic = topic_names(settings).status
    numbers = await topic_partitions(settings, topic)
    if not numbers:
        raise LookupError(f"topic {topic} not found")
    tps = [TopicPartition(topic, p) for p in numbers]
    consumer.assign(tps)
    for tp in tps:
        if tp.partition in positions:
            consumer.seek(tp, positions[tp.partition])
        else:
            await consumer.seek_to_beginning(tp)
    ends: dict[Any, int] = {} if view.caught_up else await consumer.end_offsets(tps)
    while True:
        batch = await consumer.getmany(timeout_ms=500, max_records=20_000)
        for records in batch.values():
            for record in records:
                view.apply(record.key, record.value)
        for tp in tps:
            positions[tp.partition] = await consumer.position(tp)
        if not view.caught_up and all(positions[tp.partition] >= ends[tp] for tp in tps):
            view.mark_caught_up()
            log.info(
                "status view caught up",
                extra={"entries": len(view), "seconds": round(time.monotonic() - started, 2)},
            )
        view.report()


async def _stop(consumer: AIOKafkaConsumer) -> None:
    with contextlib.suppress(Exception):
        await consumer.stop()
