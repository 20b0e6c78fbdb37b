"""The submissions record the API appends for an accepted upload: one builder, for the handler and the benchmarks.

Pure apart from hashing and encryption: no I/O. The key is the keyed NIK hash (so one applicant's records share a
partition and no raw NIK reaches Kafka's keys); the value is :mod:`intake.envelope`'s encoding: sealed under the
applicant's data key ``dek`` (version 2, what the API writes), or plaintext (version 1) when ``dek`` is None
(``INTAKE_SEAL_RECORDS=false``, development only).
"""

from __future__ import annotations

from datetime import datetime

from intake.envelope import Submission, encode, encode_sealed
from intake.settings import Settings
from processors.photo import PhotoBytes
from processors.registration import Registration
from processors.screening import nik_hash

LOGGED_HASH_CHARS = 12
"""Hex digits of the applicant's keyed NIK hash written to a log line to correlate it (48 bits). Fewer than a NIK's
16: a 16-character prefix is all digits for one upload in ~1,800, and some of those read as a valid NIK, which
the log formatter then masks (losing the correlation) and the log scan of the tests flags."""


def applicant_of(settings: Settings, registration: Registration) -> str:
    """The keyed NIK hash (hex) of ``registration``: the record key, and the name of the applicant's data key."""
    return nik_hash(registration.nik, settings.security.nik_pepper.encode()).hex()


def submission_record(
    settings: Settings,
    registration: Registration,
    photo: PhotoBytes,
    *,
    submission_id: str,
    client_id: str,
    received_at: datetime,
    dek: bytes | None = None,
    applicant: str | None = None,
) -> tuple[str, bytes]:
    """(NIK hash in hex, record value) for ``registration`` (already parsed and normalised) and its photo, sealed
    under ``dek`` when given. ``applicant`` is the NIK hash when the caller computed it already."""
    digest = applicant or applicant_of(settings, registration)
    record = Submission(
        submission_id=submission_id,
        received_at=received_at.isoformat(),
        client_id=client_id,
        registration=registration.as_data(),
        photo=photo,
        nik_hash=digest,
    )
    return digest, (encode(record) if dek is None else encode_sealed(record, dek))
