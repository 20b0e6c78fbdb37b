"""The status record: what the applicant (and the front end) can learn about a submission.

States, in order: ``received`` (accepted at the front, not processed yet; implicit, no record is stored),
then ``eligible`` (photo accepted and stored, not listed in any registry, first registration of this NIK in
the wave) or ``rejected`` (with a reason code), then, for eligible ones, ``selected`` or ``quota_exceeded``
when the wave closes. ``erased`` is the tombstone left when the applicant's data was erased on request.

Records are stored under a deterministic key per submission (:func:`status_key`), so rewriting one on
redelivery is idempotent. The key carries only the submission id, never a NIK.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from processors.reasons import REASONS

STATES = ("received", "eligible", "rejected", "selected", "quota_exceeded", "erased")
FINAL_STATES = ("rejected", "selected", "quota_exceeded", "erased")


def status_key(submission_id: str) -> str:
    """Object key of a submission's status record."""
    return f"status/{submission_id}.json"


def claim_key(wave: int, nik_hash_hex: str) -> str:
    """Object key of the claim on a NIK's place in a wave: the keyed NIK hash, never the NIK."""
    return f"claims/wave-{wave}/{nik_hash_hex}.json"


def applicant_key(nik_hash_hex: str, submission_id: str) -> str:
    """Empty marker tying a submission to its applicant (keyed NIK hash), so erasure can find every submission."""
    return f"applicants/{nik_hash_hex}/{submission_id}"


def photo_prefix(submission_id: str) -> str:
    """Prefix of every image stored for a submission."""
    return f"ktp/{submission_id}/"


def photo_key(submission_id: str, kind: str) -> str:
    """Object key of a stored image: ``kind`` is ``card`` or ``frame``."""
    return f"{photo_prefix(submission_id)}{kind}.jpg"


@dataclass(frozen=True)
class StatusRecord:
    """A submission's state as stored. ``reason`` is a code of ``processors.reasons`` when rejected."""

    submission_id: str
    state: str
    updated_at: str
    reason: str | None = None
    measured: float | int | str | None = None
    threshold: float | int | str | None = None
    objects: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    """Bounded, non-personal facts such as image dimensions, checksum and quality values."""

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"unknown state {self.state!r}")
        if self.reason is not None and self.reason not in REASONS:
            raise ValueError(f"unknown reason {self.reason!r}")

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> StatusRecord:
        data = json.loads(raw)
        return cls(**data)
