"""One record through the pipeline, with transient failures (storage or Kafka down) retried in place.

:meth:`InPlace.run` answers one of: finished (processed, or dead-lettered because it can never succeed: a bad envelope,
a sealed record whose applicant was erased, a bug), not due yet (a parked record whose ``intake.not_before`` has not
come), or failed transiently after :attr:`RetryPolicy.attempts` tries with jittered exponential backoff (the caller
decides: redeliver or park). It waits only for the pipeline and the backoff, never raises.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from consumers.consumer import ConsumedRecord
from consumers.dead_letter import DeadLetters
from consumers.headers import NOT_BEFORE, header_float
from consumers.pipeline import Outcome, Pipeline
from intake.crypto import CryptoError, KeyDestroyed
from intake.envelope import EnvelopeError
from intake.kafka import QueueUnavailable
from intake.metrics import Metrics
from intake.storage import StorageUnavailable

log = logging.getLogger("intake.consumer")

Transient = (StorageUnavailable, QueueUnavailable)
"""Failures that may pass: retried in place, then redelivered or parked."""


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
class Result:
    """How one record ended: ``ok`` (finished), else ``not_before`` (not due until then) or ``error`` (the type
    of the last transient failure)."""

    ok: bool
    error: str | None = None
    not_before: float | None = None


class InPlace:
    """Runs records through ``pipeline`` (see the module docstring); ``clock`` gives unix time."""

    def __init__(
        self,
        pipeline: Pipeline,
        retry: RetryPolicy,
        *,
        dead_letters: DeadLetters,
        metrics: Metrics,
        on_outcome: Callable[[Outcome], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pipeline, self._retry, self._dead_letters = pipeline, retry, dead_letters
        self._metrics, self._on_outcome, self._clock = metrics, on_outcome, clock

    async def run(self, record: ConsumedRecord) -> Result:
        topic = record.topic
        not_before = header_float(record, NOT_BEFORE)
        if not_before is not None and self._clock() < not_before:
            return Result(ok=False, not_before=not_before)
        error = "transient"
        for attempt in range(self._retry.attempts):
            try:
                outcome = await self._pipeline.handle(record.value)
            except (EnvelopeError, CryptoError):  # not an envelope, or a data key that does not unwrap
                return Result(ok=await self._dead_letters.send(record, "envelope_invalid"))
            except KeyDestroyed:  # crypto-shredded: this record can never be read again
                return Result(ok=await self._dead_letters.send(record, "erased"))
            except Transient as exc:
                error = type(exc).__name__
                self._metrics.retries.labels(error).inc()
                await asyncio.sleep(self._retry.delay(attempt))
                continue
            except Exception as exc:
                log.exception("bug while processing a record", extra={"topic": topic, "offset": record.offset})
                return Result(ok=await self._dead_letters.send(record, f"bug:{type(exc).__name__}"))
            self._metrics.consumer_messages.labels(topic, outcome.state, outcome.reason or "none").inc()
            if self._on_outcome is not None:
                await self._on_outcome(outcome)
            return Result(ok=True)
        self._metrics.consumer_messages.labels(topic, "retry_later", "none").inc()
        return Result(ok=False, error=error)
