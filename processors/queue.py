"""An applicant's place in the queue, the estimated wait and the polling pace (pure: numbers in, numbers out).

The queue is the submissions topic; each partition is a lane drained in offset order by one consumer, so a
submission's place is counted in its own partition: ``ahead`` = its offset minus the group's committed offset
there (the records before it not yet processed), ``position`` = ``ahead + 1``. The wait is ``ahead`` divided by
that partition's measured drain rate; without a measured rate (or with a stalled one) there is no estimate.

Pacing (:func:`poll_after`): a queued submission is told to look again after ``fraction`` of its estimated wait,
kept within ``[base_s, cap_s]``; without a rate, after ``fraction * ahead * base_s`` (as if one record drained
per ``base_s``), within the same bounds. With N applicants waiting behind a queue draining D records per second,
the personal polls per second are then at most ``(D / fraction) * (1 + ln(cap_s / base_s)) + N / cap_s``
(README, "Sizing"): the applicant i-th in line waits i/D and polls every max(base, fraction * i / D).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Place:
    """Where a queued submission stands. ``drain_per_s`` is ``None`` while no rate was measured."""

    partition: int
    offset: int
    ahead: int
    drain_per_s: float | None

    @property
    def position(self) -> int:
        """1 for the submission being processed now."""
        return self.ahead + 1

    @property
    def wait_s(self) -> float | None:
        """Estimated seconds until it is processed; ``None`` without a measured, positive drain rate."""
        if self.ahead == 0:
            return 0.0
        if self.drain_per_s is None or not self.drain_per_s > 0:
            return None
        return self.ahead / self.drain_per_s


def place(partition: int, offset: int, committed: int, drain_per_s: float | None) -> Place | None:
    """The place of the record at ``offset`` when the group's next offset to process is ``committed``; ``None``
    once it was processed (``offset < committed``). A NaN or negative rate counts as not measured."""
    if offset < committed:
        return None
    rate = drain_per_s if drain_per_s is not None and math.isfinite(drain_per_s) and drain_per_s >= 0 else None
    return Place(partition, offset, offset - committed, rate)


def poll_after(where: Place | None, base_s: int, cap_s: int, fraction: float) -> int:
    """Seconds until the next personal poll is worth it (see the module docstring); ``base_s`` when the place is
    unknown or passed."""
    if where is None:
        return base_s
    wait = where.wait_s
    wanted = fraction * (wait if wait is not None else where.ahead * base_s)
    return int(min(cap_s, max(base_s, math.ceil(wanted))))


def _thousands(n: int) -> str:
    return f"{n:,}".replace(",", ".")


def place_messages(where: Place) -> tuple[str, str]:
    """The applicant's line in Bahasa Indonesia and in English ("Anda di antrean ke-…, perkiraan … menit")."""
    wait = where.wait_s
    number_id, number_en = _thousands(where.position), f"{where.position:,}"
    if wait is None:
        return (
            f"Anda di antrean ke-{number_id}; perkiraan waktu tunggu belum tersedia.",
            f"You are number {number_en} in the queue; no wait estimate yet.",
        )
    minutes = max(1, math.ceil(round(wait) / 60))  # as the clients do: whole seconds first
    return (
        f"Anda di antrean ke-{number_id}, perkiraan {_thousands(minutes)} menit.",
        f"You are number {number_en} in the queue, estimated wait {minutes:,} min.",
    )
