"""The submissions record the API appends for an accepted upload: one builder, for the handler and the benchmarks.

Pure apart from hashing: no I/O. The key is the keyed NIK hash (so one applicant's records share a partition and
no raw NIK reaches Kafka's keys); the value is :mod:`intake.envelope`'s encoding.
"""

from __future__ import annotations

from datetime import datetime

from intake.envelope import Submission, encode
from intake.settings import Settings
from processors.registration import Registration
from processors.screening import nik_hash


def submission_record(
    settings: Settings,
    registration: Registration,
    photo: bytes,
    *,
    submission_id: str,
    client_id: str,
    received_at: datetime,
) -> tuple[str, bytes]:
    """(NIK hash in hex, record value) for ``registration`` (already parsed and normalised) and its photo."""
    digest = nik_hash(registration.nik, settings.security.nik_pepper.encode()).hex()
    record = Submission(
        submission_id=submission_id,
        received_at=received_at.isoformat(),
        client_id=client_id,
        registration=registration.as_data(),
        photo=photo,
        nik_hash=digest,
    )
    return digest, encode(record)
