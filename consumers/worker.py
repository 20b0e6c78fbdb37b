"""The consumer loop: fetch a bounded batch, run the pipeline on each record, commit only after the writes.

Per batch and partition: records run concurrently (bounded by the batch size, ``INTAKE_CONSUMER_MAX_BATCH``;
the photo step is further bounded by the process pool), one chain per key (:mod:`consumers.chains`), each
record retried in place on transient failures (:mod:`consumers.in_place`). Then, per partition, the offset
after the last record of the longest prefix that finished is committed; if a record failed transiently (storage
or Kafka down beyond the retry budget), the partition is sought back to it so the next poll redelivers it, and it
is paused until its backoff has passed (:mod:`consumers.pauses`: the loop itself never sleeps while other
partitions have work). When other records of the batch went through, a failure is the record's own: it is
parked on the retry topic (:mod:`consumers.parking`; the worker pauses a retry partition until its head is due),
and after ``INTAKE_RETRY_TOPIC_ATTEMPTS`` deliveries it is dead-lettered with the error; when everything failed
(storage or Kafka down for all), nothing is parked: the partitions wait in place. Records that can never
succeed (bad envelope, a bug) go to the dead-letter topic with the error (:mod:`consumers.dead_letter`), and
their offset is committed like any other: they never block their partition.

Contract: :meth:`Worker.run` returns when ``stop`` is set, after finishing the batch under way and committing
what finished. The caller owns the consumer, the producer and the pool, and closes them afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence

from aiokafka.errors import CommitFailedError, KafkaError

from consumers.chains import Position, finished_prefix, key_chains, next_offsets
from consumers.consumer import ConsumedRecord, ConsumerLike, TopicPartitionLike
from consumers.dead_letter import DeadLetters
from consumers.in_place import InPlace, Result, RetryPolicy
from consumers.parking import Parking, RetryTopic
from consumers.pauses import PauseTimers
from consumers.pipeline import Outcome, Pipeline
from intake.kafka import RecordSink
from intake.metrics import Metrics

__all__ = ["ConsumerLike", "RetryPolicy", "RetryTopic", "Worker"]

log = logging.getLogger("intake.consumer")


class Worker:
    """Drives one consumer group member. See the module docstring for the commit and retry contract.
    ``clock`` gives unix time (the due times of parked records)."""

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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._consumer = consumer
        self._retry = retry
        self._max_batch = max_batch
        self._commit_timeout_s = commit_timeout_s
        self._clock = clock
        dead_letters = DeadLetters(sink, dlq_topic, metrics)
        self._in_place = InPlace(
            pipeline, retry, dead_letters=dead_letters, metrics=metrics, on_outcome=on_outcome, clock=clock
        )
        self._parking = None if retry_topic is None else Parking(sink, retry_topic, dead_letters, metrics, clock)
        self._pauses = PauseTimers(consumer, retry.cap_s)
        self._idle = asyncio.Event()
        self._idle.set()

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
        self._pauses.cancel_all()

    async def process_batch(self, batches: Mapping[TopicPartitionLike, Sequence[ConsumedRecord]]) -> None:
        """Handle one fetched batch and commit what finished (see module docstring)."""
        parts = list(batches.items())
        finished: dict[Position, bool] = {}
        failed: dict[Position, Result] = {}
        wait_until: dict[int, float] = {}

        async def run_chain(chain: list[tuple[Position, ConsumedRecord]]) -> None:
            for (p, i), record in chain:
                result = await self._in_place.run(record)
                finished[(p, i)] = result.ok
                if result.not_before is not None:
                    wait_until[p] = min(wait_until.get(p, result.not_before), result.not_before)
                elif not result.ok:
                    failed[(p, i)] = result
                if not result.ok:
                    return  # later records of this key wait for redelivery, in order

        await asyncio.gather(*(run_chain(chain) for chain in key_chains([records for _, records in parts])))
        if failed and any(finished.values()) and self._parking is not None:
            # Others in this batch went through, so the failure is this record's own: park it on the retry
            # topic (or dead-letter it once its attempts are spent) instead of holding its partition.
            for (p, i), result in failed.items():
                finished[(p, i)] = await self._parking.park(parts[p][1][i], result.error or "transient")
        for p, (tp, records) in enumerate(parts):
            done = finished_prefix(len(records), finished, p)
            if done < len(records):
                delay = max(0.0, wait_until[p] - self._clock()) if p in wait_until else None
                self._pauses.back_off(tp, records[done].offset, delay)
        offsets = next_offsets(parts, finished)
        if offsets:
            await self._commit(offsets)

    async def _commit(self, offsets: Mapping[TopicPartitionLike, int]) -> None:
        """Commit, bounded in time: while the group coordinator is unreachable aiokafka's commit waits for it,
        and a rebalance waits for :meth:`on_partitions_revoked`, which waits for this batch; the bound breaks
        that cycle. An offset not committed only means a redelivery, and the writes are idempotent."""
        try:
            async with asyncio.timeout(self._commit_timeout_s):
                await self._consumer.commit(offsets)
        except TimeoutError:
            log.warning("commit timed out; records will be redelivered")
        except CommitFailedError:
            # A rebalance took the partitions away; the new owner redelivers, and the writes are idempotent.
            log.warning("commit failed after a rebalance; records will be redelivered")
        except KafkaError as exc:
            log.warning("commit failed", extra={"error": type(exc).__name__})

    async def on_partitions_revoked(self, revoked: Collection[TopicPartitionLike]) -> None:
        """Rebalance: let the batch under way finish and commit (bounded by the retry budget), then forget the
        revoked partitions' pause timers. Nothing half-done is handed over: the new owner starts at the last
        commit, and every write it repeats is idempotent."""
        try:
            async with asyncio.timeout(self._commit_timeout_s + self._retry.budget_s()):
                await self._idle.wait()
        except TimeoutError:
            log.warning("rebalance did not wait for the batch under way; its records will be redelivered")
        self._pauses.forget(revoked)

    async def on_partitions_assigned(self, assigned: Collection[TopicPartitionLike]) -> None:
        """Rebalance: nothing to prepare; fetching starts at the group's committed offsets."""
