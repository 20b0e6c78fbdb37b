"""The consumer loop: fetch a bounded batch, run the pipeline on each record, commit only after the writes.

Per batch and partition: records run concurrently (bounded by the batch size, ``INTAKE_CONSUMER_MAX_BATCH``;
the photo step is further bounded by the process pool). Then, per partition, the offset after the last record
of the longest prefix that finished is committed; if a record failed transiently (storage or Kafka down
beyond the retry budget), the partition is sought back to it so the next poll redelivers it, and it is paused
until its backoff has passed (a timer resumes it: the loop itself never sleeps while other partitions have
work). When other records of the batch went through, a failure is the record's own: it is parked on the retry
topic with its attempt count and due time (the worker pauses a retry partition until its head is due), and
after ``INTAKE_RETRY_TOPIC_ATTEMPTS`` deliveries it is dead-lettered with the error; when everything failed
(storage or Kafka down for all), nothing is parked: the partitions wait in place. Records that can never
succeed (bad envelope, a bug) go to the dead-letter topic with the error, and their offset is committed like
any other: they never block their partition.

Contract: :meth:`Worker.run` returns when ``stop`` is set, after finishing the batch under way and committing
what finished. The caller owns the consumer, the producer and the pool, and closes them afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka.errors import CommitFailedError, KafkaError

from consumers.pipeline import Outcome, Pipeline
from intake.envelope import EnvelopeError
from intake.kafka import QueueUnavailable, RecordSink
from intake.metrics import Metrics
from intake.storage import StorageUnavailable

log = logging.getLogger("intake.consumer")

Transient = (StorageUnavailable, QueueUnavailable)


class ConsumerLike(Protocol):
    """The calls the worker makes on an aiokafka consumer."""

    async def getmany(self, *partitions: Any, timeout_ms: int = 0, max_records: int | None = None) -> Any: ...

    async def commit(self, offsets: Any = None) -> None: ...

    def seek(self, partition: Any, offset: int) -> None: ...

    def pause(self, *partitions: Any) -> None: ...

    def resume(self, *partitions: Any) -> None: ...

    def assignment(self) -> Any: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter for transient failures of one record."""

    attempts: int = 5
    base_s: float = 0.2
    cap_s: float = 10.0

    def budget_s(self) -> float:
        """The longest a record can spend in retries (the sum of the capped delays)."""
        return float(sum(min(self.cap_s, self.base_s * 2.0**a) for a in range(self.attempts)))

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap_s, self.base_s * 2**attempt))  # noqa: S311 - jitter, not crypto


@dataclass(frozen=True)
class RetryTopic:
    """Where records that fail on their own wait: ``attempts`` deliveries from it, ``base_s`` doubling (<= 5 min)."""

    name: str
    attempts: int = 5
    base_s: float = 5.0

    def delay_s(self, attempt: int) -> float:
        return float(min(300.0, self.base_s * 2.0 ** (attempt - 1)))


@dataclass(frozen=True)
class _Result:
    ok: bool
    error: str | None = None
    not_before: float | None = None


def _header_float(record: Any, name: str) -> float | None:
    for key, value in record.headers or ():
        if key == name:
            try:
                return float(value.decode())
            except (UnicodeDecodeError, ValueError):
                return None
    return None


class Worker:
    """Drives one consumer group member. See the module docstring for the commit and retry contract."""

    def __init__(
        self,
        *,
        consumer: ConsumerLike,
        pipeline: Pipeline,
        sink: RecordSink,
        dlq_topic: str,
        metrics: Metrics,
        retry: RetryPolicy,
        max_batch: int,
        on_outcome: Callable[[Outcome], Awaitable[None]] | None = None,
        commit_timeout_s: float = 15.0,
        retry_topic: RetryTopic | None = None,
    ) -> None:
        self._consumer = consumer
        self._pipeline = pipeline
        self._sink = sink
        self._dlq_topic = dlq_topic
        self._metrics = metrics
        self._retry = retry
        self._max_batch = max_batch
        self._on_outcome = on_outcome
        self._paused_until: dict[Any, asyncio.TimerHandle] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._commit_timeout_s = commit_timeout_s
        self._retry_topic = retry_topic

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set."""
        while not stop.is_set():
            batches = await self._consumer.getmany(timeout_ms=500, max_records=self._max_batch)
            if not batches:
                continue
            self._idle.clear()
            try:
                await self.process_batch(batches)
            finally:
                self._idle.set()
        for handle in self._paused_until.values():
            handle.cancel()

    async def process_batch(self, batches: dict[Any, Sequence[Any]]) -> None:
        """Handle one fetched batch and commit what finished (see module docstring).

        Records with the same key (the same applicant) run one after another, in offset order, so the first
        submission of a NIK claims its place first; different keys run concurrently.
        """
        offsets: dict[Any, int] = {}
        parts = list(batches.items())
        chains: dict[tuple[int, bytes | None], list[tuple[int, int, Any]]] = {}
        for p, (_, records) in enumerate(parts):
            for i, record in enumerate(records):
                chains.setdefault((p, record.key), []).append((p, i, record))
        finished: dict[tuple[int, int], bool] = {}
        failed: dict[tuple[int, int], _Result] = {}
        wait_until: dict[int, float] = {}

        async def run_chain(chain: list[tuple[int, int, Any]]) -> None:
            for p, i, record in chain:
                result = await self._one(record)
                finished[(p, i)] = result.ok
                if result.not_before is not None:
                    wait_until[p] = min(wait_until.get(p, result.not_before), result.not_before)
                elif not result.ok:
                    failed[(p, i)] = result
                if not result.ok:
                    return  # later records of this key wait for redelivery, in order

        await asyncio.gather(*(run_chain(chain) for chain in chains.values()))
        if failed and any(finished.values()) and self._retry_topic is not None:
            # Others in this batch went through, so the failure is this record's own: park it on the retry
            # topic (or dead-letter it once its attempts are spent) instead of holding its partition.
            for (p, i), result in failed.items():
                record = parts[p][1][i]
                finished[(p, i)] = await self._park(record, result.error or "transient")
        for p, (tp, records) in enumerate(parts):
            done = 0
            while done < len(records) and finished.get((p, done), False):
                done += 1
            if done:
                offsets[tp] = records[done - 1].offset + 1
            if done < len(records):
                delay = max(0.0, wait_until[p] - time.time()) if p in wait_until else None
                self._back_off(tp, records[done].offset, delay)
        if offsets:
            await self._commit(offsets)

    async def _commit(self, offsets: dict[Any, int]) -> None:
        """Commit, bounded in time: while the group coordinator is unreachable aiokafka's commit waits for it,
        and a rebalance waits for :meth:`on_partitions_revoked`, which waits for this batch; the bound breaks
        that cycle. An offset not committed only means a redelivery, and the writes are idempotent."""
        try:
            await asyncio.wait_for(self._consumer.commit(offsets), self._commit_timeout_s)
        except TimeoutError:
            log.warning("commit timed out; records will be redelivered")
        except CommitFailedError:
            # A rebalance took the partitions away; the new owner redelivers, and the writes are idempotent.
            log.warning("commit failed after a rebalance; records will be redelivered")
        except KafkaError as exc:
            log.warning("commit failed", extra={"error": type(exc).__name__})

    def _back_off(self, tp: Any, offset: int, delay_s: float | None = None) -> None:
        """Redeliver from ``offset`` after ``delay_s`` (default: the retry cap); the partition is paused till then."""
        self._consumer.seek(tp, offset)
        self._consumer.pause(tp)
        loop = asyncio.get_running_loop()
        if tp in self._paused_until:
            self._paused_until[tp].cancel()
        wait = self._retry.cap_s if delay_s is None else delay_s
        self._paused_until[tp] = loop.call_later(wait, self._resume, tp)

    async def on_partitions_revoked(self, revoked: Any) -> None:
        """Rebalance: let the batch under way finish and commit (bounded by the retry budget), then forget the
        revoked partitions' pause timers. Nothing half-done is handed over: the new owner starts at the last
        commit, and every write it repeats is idempotent."""
        try:
            await asyncio.wait_for(self._idle.wait(), self._commit_timeout_s + self._retry.budget_s())
        except TimeoutError:
            log.warning("rebalance did not wait for the batch under way; its records will be redelivered")
        for tp in list(revoked):
            handle = self._paused_until.pop(tp, None)
            if handle is not None:
                handle.cancel()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        """Rebalance: nothing to prepare; fetching starts at the group's committed offsets."""

    def _resume(self, tp: Any) -> None:
        self._paused_until.pop(tp, None)
        if tp in self._consumer.assignment():
            self._consumer.resume(tp)

    async def _one(self, record: Any) -> _Result:
        """Process one record: finished (processed or dead-lettered), not due yet (a parked retry whose time has
        not come), or failed transiently after the in-place attempts."""
        topic = record.topic
        not_before = _header_float(record, "intake.not_before")
        if not_before is not None and time.time() < not_before:
            return _Result(ok=False, not_before=not_before)
        error = "transient"
        for attempt in range(self._retry.attempts):
            try:
                outcome = await self._pipeline.handle(record.value)
            except EnvelopeError:
                return _Result(ok=await self._dead_letter(record, "envelope_invalid"))
            except Transient as exc:
                error = type(exc).__name__
                self._metrics.retries.labels(error).inc()
                await asyncio.sleep(self._retry.delay(attempt))
                continue
            except Exception as exc:
                log.exception("bug while processing a record", extra={"topic": topic, "offset": record.offset})
                return _Result(ok=await self._dead_letter(record, f"bug:{type(exc).__name__}"))
            self._metrics.consumer_messages.labels(topic, outcome.state, outcome.reason or "none").inc()
            if self._on_outcome is not None:
                await self._on_outcome(outcome)
            return _Result(ok=True)
        self._metrics.consumer_messages.labels(topic, "retry_later", "none").inc()
        return _Result(ok=False, error=error)

    async def _park(self, record: Any, error: str) -> bool:
        """Move a record that failed on its own to the retry topic with its attempt count and due time, or to the
        dead-letter topic when its attempts are spent. True when it was handed on (its offset may be committed)."""
        assert self._retry_topic is not None
        attempt = int(_header_float(record, "intake.attempt") or 0) + 1
        if attempt > self._retry_topic.attempts:
            return await self._dead_letter(record, f"retries_exhausted:{error}")
        source = {k: v for k, v in (record.headers or ()) if k.startswith("intake.source.")} or {
            "intake.source.topic": record.topic.encode(),
            "intake.source.partition": str(record.partition).encode(),
            "intake.source.offset": str(record.offset).encode(),
        }
        headers = [
            ("intake.attempt", str(attempt).encode()),
            ("intake.error", error.encode()),
            ("intake.not_before", f"{time.time() + self._retry_topic.delay_s(attempt):.3f}".encode()),
            *source.items(),
        ]
        try:
            await self._sink.send(self._retry_topic.name, record.key or b"", record.value or b"", headers)
        except QueueUnavailable:
            return False
        self._metrics.retries.labels("retry_topic").inc()
        self._metrics.consumer_messages.labels(record.topic, "retry_topic", "none").inc()
        return True

    async def _dead_letter(self, record: Any, error: str) -> bool:
        headers = [
            ("intake.error", error.encode()),
            ("intake.source.topic", record.topic.encode()),
            ("intake.source.partition", str(record.partition).encode()),
            ("intake.source.offset", str(record.offset).encode()),
        ]
        try:
            await self._sink.send(self._dlq_topic, record.key or b"", record.value or b"", headers)
        except QueueUnavailable:
            return False
        kind = error.split(":", 1)[0]
        self._metrics.dead_letters.labels(kind).inc()
        self._metrics.consumer_messages.labels(record.topic, "dead_letter", kind).inc()
        return True
