"""The message envelope: what one Kafka record of the submissions topic carries.

Wire format (version 1), chosen so the photo bytes are never base64-inflated or JSON-escaped::

    b"PKI" | version (1 byte) | header length (4 bytes, big-endian) | header (UTF-8 JSON) | photo bytes

The header holds the submission id, when and from whom it was received, the registration fields as the
applicant sent them, and the photo's declared facts (size and SHA-256, checked on decode). Decoding never
trusts the record: any inconsistency raises :class:`EnvelopeError`, and such a record goes to the dead-letter
topic instead of blocking its partition.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from typing import Any

from processors.registration import RegistrationData, registration_data

MAGIC = b"PKI"
VERSION = 1
_PREFIX = struct.Struct(">3sBI")
MAX_HEADER_BYTES = 256 * 1024


class EnvelopeError(ValueError):
    """A record that is not a valid envelope. Its message never contains the record's content."""


@dataclass(frozen=True)
class Submission:
    """One accepted upload: registration fields and the KTP photo, as received."""

    submission_id: str
    received_at: str
    """ISO-8601 UTC time at which ingest accepted the request."""
    client_id: str
    """Which API client sent it (bounded set; never an applicant identifier)."""
    registration: RegistrationData
    photo: bytes
    nik_hash: str = ""
    """Keyed hash (hex) of the NIK, also the record key; never the NIK itself."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Forward-compatible facts a newer producer may add; kept and ignored by older consumers."""


def encode(sub: Submission) -> bytes:
    """Serialise a submission into one record value."""
    header = {
        "submission_id": sub.submission_id,
        "received_at": sub.received_at,
        "client_id": sub.client_id,
        "nik_hash": sub.nik_hash,
        "registration": sub.registration,
        "photo": {"size": len(sub.photo), "sha256": hashlib.sha256(sub.photo).hexdigest()},
        "extra": sub.extra,
    }
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(raw) > MAX_HEADER_BYTES:
        raise EnvelopeError("envelope header too large")
    return _PREFIX.pack(MAGIC, VERSION, len(raw)) + raw + sub.photo


def decode(value: bytes | None) -> Submission:
    """Parse a record value. Raises :class:`EnvelopeError` for anything but a consistent version-1 envelope."""
    if not value or len(value) < _PREFIX.size:
        raise EnvelopeError("record too short for an envelope")
    magic, version, header_len = _PREFIX.unpack_from(value)
    if magic != MAGIC:
        raise EnvelopeError("not an intake envelope (bad magic)")
    if version != VERSION:
        raise EnvelopeError(f"unsupported envelope version {version}")
    if header_len > MAX_HEADER_BYTES or _PREFIX.size + header_len > len(value):
        raise EnvelopeError("envelope header length out of range")
    start = _PREFIX.size
    try:
        header = json.loads(value[start : start + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise EnvelopeError("envelope header is not JSON") from None
    photo = value[start + header_len :]
    try:
        declared = header["photo"]
        sub = Submission(
            submission_id=str(header["submission_id"]),
            received_at=str(header["received_at"]),
            client_id=str(header["client_id"]),
            registration=registration_data(header["registration"]),
            photo=photo,
            nik_hash=str(header.get("nik_hash", "")),
            extra=dict(header.get("extra") or {}),
        )
        size, digest = int(declared["size"]), str(declared["sha256"])
    except (KeyError, TypeError, ValueError):
        raise EnvelopeError("envelope header lacks required fields") from None
    if size != len(photo) or hashlib.sha256(photo).hexdigest() != digest:
        raise EnvelopeError("photo bytes do not match the envelope's size or checksum")
    return sub
