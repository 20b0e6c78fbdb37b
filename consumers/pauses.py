"""Pause timers: a partition whose record must be redelivered later is sought back to it and paused, and a timer
resumes it when its wait has passed, so the loop never sleeps while other partitions have work."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from consumers.consumer import ConsumerLike, TopicPartitionLike


class PauseTimers:
    """One timer per paused partition of ``consumer``; ``default_s`` is the wait when none is given. Needs a
    running event loop; :meth:`cancel_all` when the consumer stops."""

    def __init__(self, consumer: ConsumerLike, default_s: float) -> None:
        self._consumer, self._default_s = consumer, default_s
        self._timers: dict[TopicPartitionLike, asyncio.TimerHandle] = {}

    def back_off(self, tp: TopicPartitionLike, offset: int, delay_s: float | None = None) -> None:
        """Redeliver ``tp`` from ``offset`` after ``delay_s`` (default ``default_s``); paused till then. A timer
        already running for ``tp`` is replaced."""
        self._consumer.seek(tp, offset)
        self._consumer.pause(tp)
        if tp in self._timers:
            self._timers[tp].cancel()
        wait = self._default_s if delay_s is None else delay_s
        self._timers[tp] = asyncio.get_running_loop().call_later(wait, self._resume, tp)

    def forget(self, partitions: Iterable[TopicPartitionLike]) -> None:
        """Cancel the timers of ``partitions`` (revoked: the consumer no longer owns them)."""
        for tp in list(partitions):
            handle = self._timers.pop(tp, None)
            if handle is not None:
                handle.cancel()

    def cancel_all(self) -> None:
        self.forget(list(self._timers))

    def waiting(self) -> set[TopicPartitionLike]:
        """The partitions whose timer has not fired yet."""
        return set(self._timers)

    def _resume(self, tp: TopicPartitionLike) -> None:
        self._timers.pop(tp, None)
        if tp in self._consumer.assignment():
            self._consumer.resume(tp)
