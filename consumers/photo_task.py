"""The function a process-pool worker runs on one photo, and its picklable result.

Runs in a child process: it must only take and return picklable values. It never raises for bad input:
a :class:`processors.reasons.Rejected` becomes a ``PhotoVerdict`` with the reason; anything else is a bug
and propagates (the caller dead-letters the record).
"""

from __future__ import annotations

from dataclasses import dataclass

from processors.photo import PhotoPolicy, PhotoResult
from processors.photo.pipeline import normalise_photo
from processors.reasons import Rejected


@dataclass(frozen=True)
class PhotoVerdict:
    """Either ``result`` (accepted) or ``reason`` with the measured value and threshold (rejected)."""

    result: PhotoResult | None
    reason: str | None = None
    measured: float | int | str | None = None
    threshold: float | int | str | None = None


def check_photo(data: bytes, policy: PhotoPolicy) -> PhotoVerdict:
    """Validate and normalise one KTP photo. CPU-bound; blocks for the duration of the work."""
    try:
        return PhotoVerdict(normalise_photo(data, policy))
    except Rejected as rej:
        return PhotoVerdict(None, rej.code, rej.measured, rej.threshold)
