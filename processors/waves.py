"""Registration waves and the selection rule at a wave's close.

Contract
--------
* :class:`Wave` is open on the half-open interval ``[opens_at, closes_at)``; its datetimes must be timezone-aware.
  Its :attr:`Wave.opening_date` (the reference date of the age rule) is the calendar date of ``opens_at`` in WIB
  (UTC+7, no daylight saving), the time zone waves are announced in.
* :func:`select` ranks the eligible submissions and returns ``(selected, not_selected)``; ``selected`` holds the
  first ``quota`` ids of the ranking, ``not_selected`` the rest, both in rank order (``not_selected`` doubles as a
  waiting list). The rule is one of:

  - **order of completion** (``seed is None``): by completion timestamp (compared in UTC), then by submission id
    (plain string order) to break ties;
  - **published lottery** (``seed`` given): by ``HMAC-SHA256(key=seed, msg=submission_id)`` (UTF-8, digests
    compared as bytes), then by submission id. Anyone holding the seed and the list of eligible ids can recompute
    the ranking. To make the draw verifiable, publish SHA-256(seed) before the wave opens and the seed after it
    closes.

  The result depends only on the *set* of (id, timestamp) pairs, the quota and the seed, not on input order, so
  re-running a close (after a crash, or to audit it) gives the same result.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

from processors.reasons import Rejected

__all__ = ["WIB", "Wave", "select"]

WIB = timezone(timedelta(hours=7), "WIB")
"""Western Indonesia Time, in which wave dates are announced."""

_MAX_ID = 256


def _aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Wave:
    """A registration wave: number (>= 1), opening and closing instants (aware, opens < closes), quota (>= 0)."""

    number: int
    opens_at: datetime
    closes_at: datetime
    quota: int

    def __post_init__(self) -> None:
        if self.number < 1:
            raise ValueError("wave number must be >= 1")
        _aware(self.opens_at, "opens_at")
        _aware(self.closes_at, "closes_at")
        if self.opens_at >= self.closes_at:
            raise ValueError("opens_at must be before closes_at")
        if self.quota < 0:
            raise ValueError("quota must be >= 0")

    @property
    def opening_date(self) -> date:
        """The calendar date of ``opens_at`` in WIB: the reference date for the age rule."""
        return self.opens_at.astimezone(WIB).date()

    def is_open(self, at: datetime) -> bool:
        """True if ``opens_at <= at < closes_at``. ``at`` must be timezone-aware (``ValueError`` otherwise)."""
        _aware(at, "at")
        return self.opens_at <= at < self.closes_at

    def check_open(self, at: datetime) -> None:
        """Raise :class:`Rejected` ``wave_not_open`` unless :meth:`is_open` at ``at``."""
        if not self.is_open(at):
            raise Rejected("wave_not_open", detail={"wave": self.number})

    def select(self, eligible: Iterable[tuple[str, datetime]], seed: str | None = None) -> tuple[list[str], list[str]]:
        """:func:`select` with this wave's quota."""
        return select(eligible, self.quota, seed)


def select(eligible: Iterable[tuple[str, datetime]], quota: int, seed: str | None) -> tuple[list[str], list[str]]:
    """Rank ``eligible`` (submission id, completion time) pairs and split them at ``quota``.

    Returns ``(selected, not_selected)`` as described in the module docstring. Raises ``ValueError`` if ``quota``
    is negative, ``seed`` is the empty string, an id is empty or longer than 256 characters, a timestamp is naive,
    or an id occurs twice (the caller must deduplicate, e.g. one submission per NIK, before selecting).
    """
    if quota < 0:
        raise ValueError("quota must be >= 0")
    if seed == "":
        raise ValueError("seed must be None (order of completion) or a non-empty string")
    entries: list[tuple[str, datetime]] = []
    seen: set[str] = set()
    for submission_id, completed_at in eligible:
        if not submission_id or len(submission_id) > _MAX_ID:
            raise ValueError("submission ids must be 1-256 characters")
        if submission_id in seen:
            raise ValueError("duplicate submission id in eligible")
        _aware(completed_at, "completion timestamp")
        seen.add(submission_id)
        entries.append((submission_id, completed_at.astimezone(UTC)))

    if seed is None:
        entries.sort(key=lambda entry: (entry[1], entry[0]))
    else:
        key = seed.encode("utf-8")
        entries.sort(key=lambda entry: (hmac.digest(key, entry[0].encode("utf-8"), hashlib.sha256), entry[0]))
    ids = [submission_id for submission_id, _ in entries]
    return ids[:quota], ids[quota:]
