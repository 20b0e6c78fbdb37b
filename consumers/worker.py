"""The consumer loop: fetch a bounded batch, run the pipeline on each record, commit only after the writes.

Per batch and partition: records run concurrently (bounded by the batch size, ``INTAKE_CONSUMER_MAX_BATCH``;
the photo step is further bounded by the process pool). Then, per partition, the offset after the last record
of the longest prefix that finished is committed; if a record failed transiently (storage or Kafka down
beyond the retry budget), the partition is sought back to it so the next poll redelivers it, and it is paused
until its backoff has passed (a timer resumes it: the loop itself never sleeps while other partitions have
work). Records that can never succeed (bad envelope, a bug) go to the dead-letter topic with the error, and
their offset is committed like any other: they never block their partition.

Contract: :meth:`Worker.run` returns when ``stop`` is set, after finishing the batch under way and committing
what finished. The caller owns the consumer, the producer and the pool, and closes them afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import random
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


class Worker:
    """Drives one consumer group member. See the module docstring for the commit and retry contract."""

    def __init__(
        self,
        *,
        consumer: ConsumerLike,
        pipeline: Pipeline,
        dead_letters: RecordSink,
        dlq_topic: str,
        metrics: Metrics,
        retry: RetryPolicy,
        max_batch: int,
        on_outcome: Callable[[Outcome], Awaitable[None]] | None = None,
        commit_timeout_s: float = 15.0,
    ) -> None:
        self._consumer = consumer
        self._pipeline = pipeline
        self._dead_letters = dead_letters
        self._dlq_topic = dlq_topic
        self._metrics = metrics
        self._retry = retry
        self._max_batch = max_batch
        self._on_outcome = on_outcome
        self._paused_until: dict[Any, asyncio.TimerHandle] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._commit_timeout_s = commit_timeout_s

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

        async def run_chain(chain: list[tuple[int, int, Any]]) -> None:
            for p, i, record in chain:
                ok = await self._one(record)
                finished[(p, i)] = ok
                if not ok:
                    return  # later records of this key wait for redelivery, in order

        await asyncio.gather(*(run_chain(chain) for chain in chains.values()))
        for p, (tp, records) in enumerate(parts):
            done = 0
            while done < len(records) and finished.get((p, done), False):
                done += 1
            if done:
                offsets[tp] = records[done - 1].offset + 1
            if done < len(records):
                self._back_off(tp, records[done].offset)
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

    def _back_off(self, tp: Any, offset: int) -> None:
        self._consumer.seek(tp, offset)
        self._consumer.pause(tp)
        loop = asyncio.get_running_loop()
        if tp in self._paused_until:
            self._paused_until[tp].cancel()
        self._paused_until[tp] = loop.call_later(self._retry.cap_s, self._resume, tp)

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

    async def _one(self, record: Any) -> bool:
        """True when the record is finished (processed or dead-lettered); False when it must be redelivered."""
        topic = record.topic
        for attempt in range(self._retry.attempts):
            try:
                outcome = await self._pipeline.handle(record.value)
            except EnvelopeError:
                return await self._dead_letter(record, "envelope_invalid")
            except Transient as exc:
                self._metrics.retries.labels(type(exc).__name__).inc()
                await asyncio.sleep(self._retry.delay(attempt))
                continue
            except Exception as exc:
                log.exception("bug while processing a record", extra={"topic": topic, "offset": record.offset})
                return await self._dead_letter(record, f"bug:{type(exc).__name__}")
            self._metrics.consumer_messages.labels(topic, outcome.state, outcome.reason or "none").inc()
            if self._on_outcome is not None:
                await self._on_outcome(outcome)
            return True
        self._metrics.consumer_messages.labels(topic, "retry_later", "none").inc()
        return False

    async def _dead_letter(self, record: Any, error: str) -> bool:
        headers = [
            ("intake.error", error.encode()),
            ("intake.source.topic", record.topic.encode()),
            ("intake.source.partition", str(record.partition).encode()),
            ("intake.source.offset", str(record.offset).encode()),
        ]
        try:
            await self._dead_letters.send(self._dlq_topic, record.key or b"", record.value or b"", headers)
        except QueueUnavailable:
            return False
        kind = error.split(":", 1)[0]
        self._metrics.dead_letters.labels(kind).inc()
        self._metrics.consumer_messages.labels(record.topic, "dead_letter", kind).inc()
        return True
