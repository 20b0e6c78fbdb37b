"""Retry-topic parking: a record that failed on its own (others of its batch went through) waits on the retry
topic instead of holding its partition. Each delivery from the retry topic counts an attempt; the record is due
again after a doubling delay (``intake.not_before``); after :attr:`RetryTopic.attempts` deliveries it is
dead-lettered with ``retries_exhausted:<error>``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from consumers.consumer import ConsumedRecord
from consumers.dead_letter import DeadLetters
from consumers.headers import ATTEMPT, ERROR, NOT_BEFORE, first_source_headers, header_float
from intake.kafka import QueueUnavailable, RecordSink
from intake.metrics import Metrics

MAX_DELAY_S = 300.0
"""The longest a parked record waits between two deliveries."""


@dataclass(frozen=True)
class RetryTopic:
    """Where records that fail on their own wait: ``attempts`` deliveries from it, ``base_s`` doubling (<= 5 min)."""

    name: str
    attempts: int = 5
    base_s: float = 5.0

    def delay_s(self, attempt: int) -> float:
        return float(min(MAX_DELAY_S, self.base_s * 2.0 ** (attempt - 1)))


class Parking:
    """Parks records on :class:`RetryTopic` through ``sink``; ``clock`` gives unix time (the due times)."""

    def __init__(
        self,
        sink: RecordSink,
        topic: RetryTopic,
        dead_letters: DeadLetters,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sink, self._topic, self._dead_letters = sink, topic, dead_letters
        self._metrics, self._clock = metrics, clock

    async def park(self, record: ConsumedRecord, error: str) -> bool:
        """Move ``record`` to the retry topic with its attempt count and due time, or to the dead-letter topic
        when its attempts are spent. True when it was handed on (its offset may be committed), False when Kafka
        did not acknowledge (it must be redelivered). Raises nothing else."""
        attempt = int(header_float(record, ATTEMPT) or 0) + 1
        if attempt > self._topic.attempts:
            return await self._dead_letters.send(record, f"retries_exhausted:{error}")
        headers = [
            (ATTEMPT, str(attempt).encode()),
            (ERROR, error.encode()),
            (NOT_BEFORE, f"{self._clock() + self._topic.delay_s(attempt):.3f}".encode()),
            *first_source_headers(record),
        ]
        try:
            await self._sink.send(self._topic.name, record.key or b"", record.value or b"", headers)
        except QueueUnavailable:
            return False
        self._metrics.retries.labels("retry_topic").inc()
        self._metrics.consumer_messages.labels(record.topic, "retry_topic", "none").inc()
        return True
