"""The message envelope: what one Kafka record of the submissions topic carries.

Two wire formats, chosen so the photo bytes are never base64-inflated or JSON-escaped. Version 2 (what the API
writes) keeps every personal datum sealed with the applicant's data key (:mod:`intake.crypto`)::

    b"PKI" | 2 | header length (4 bytes, big-endian) | header (UTF-8 JSON) | sealed registration | sealed photo

Its header is in clear and holds no personal data: the submission id, when and from whom it was received, the
keyed NIK hash (which names the applicant's data key), the data key's public id (:func:`intake.crypto.key_id`:
which of the applicant's successive keys sealed it) and the sizes of the two sealed parts. The registration (JSON)
and the photo are each AES-256-GCM sealed, with the part's name and the exact header bytes as associated data, so a
sealed part cannot be moved to another record and the header cannot be altered unnoticed (the GCM tag also
replaces version 1's checksum). Without the key (erased: :class:`intake.crypto.KeyDestroyed`) nothing personal
can be read.

Version 1 (plaintext; written only with ``INTAKE_SEAL_RECORDS=false``, in development, and by earlier releases)
is still read, so records in flight across an upgrade are processed::

    b"PKI" | 1 | header length (4 bytes, big-endian) | header (UTF-8 JSON) | photo bytes

with the registration fields and the photo's declared facts (size and SHA-256, checked on decode) in the header.
Decoding never trusts the record: any inconsistency raises :class:`EnvelopeError`, and such a record goes to the
dead-letter topic instead of blocking its partition.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

from intake.crypto import OVERHEAD, CryptoError, key_id, open_sealed, seal_into
from processors.photo import PhotoBytes
from processors.registration import RegistrationData, registration_data

MAGIC = b"PKI"
VERSION = 1
VERSION_SEALED = 2
_NIK_HASH = re.compile(r"^[0-9a-f]{64}$")
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
    photo: PhotoBytes
    """The photo: ``bytes`` as decoded; the API passes a view of the request body it was read in (not copied)."""
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


_scratch = threading.local()


def _scratch_view(size: int) -> memoryview:
    """``size`` writable bytes of this thread's scratch buffer, which grows to the largest record built in the
    thread and is kept for the next one. Not zero-filled: the caller writes every byte before reading any (a
    ``bytearray`` of a record's size is zero-filled first, one more pass over a photo-sized buffer)."""
    buf: bytearray | None = getattr(_scratch, "buf", None)
    if buf is None or len(buf) < size:
        buf = _scratch.buf = bytearray(size)
    return memoryview(buf)[:size]


def encode_sealed(sub: Submission, key: bytes) -> bytes:
    """Serialise a submission into one version-2 record value, its registration and photo sealed under ``key``
    (the applicant's data key; ``sub.nik_hash`` must name it). Built in the thread's scratch buffer (every byte
    written), copied once into ``bytes``; nothing in it is awaited, so records built one after another on one
    thread never share the buffer."""
    if not _NIK_HASH.match(sub.nik_hash):
        raise EnvelopeError("a sealed envelope needs the keyed NIK hash naming its data key")
    registration = json.dumps(sub.registration, separators=(",", ":"), ensure_ascii=False).encode()
    reg_size, photo_size = OVERHEAD + len(registration), OVERHEAD + len(sub.photo)
    header = {
        "submission_id": sub.submission_id,
        "received_at": sub.received_at,
        "client_id": sub.client_id,
        "nik_hash": sub.nik_hash,
        "dek": key_id(key),
        "sealed": {"registration": reg_size, "photo": photo_size},
        "extra": sub.extra,
    }
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(raw) > MAX_HEADER_BYTES:
        raise EnvelopeError("envelope header too large")
    start = _PREFIX.size + len(raw)
    view = _scratch_view(start + reg_size + photo_size)
    _PREFIX.pack_into(view, 0, MAGIC, VERSION_SEALED, len(raw))
    view[_PREFIX.size : start] = raw
    seal_into(key, registration, _aad("registration", raw), view[start : start + reg_size])
    seal_into(key, sub.photo, _aad("photo", raw), view[start + reg_size :])
    return bytes(view)


def _aad(part: str, header: bytes) -> bytes:
    return b"intake.submission.v2|" + part.encode() + b"|" + header


@dataclass(frozen=True)
class Sealed:
    """A version-2 record as read, before its data key is known: the clear header, and the sealed parts."""

    submission_id: str
    received_at: str
    client_id: str
    nik_hash: str
    """Keyed hash (hex) of the NIK: names the applicant's data key."""
    dek_id: str | None
    """:func:`intake.crypto.key_id` of the data key it was sealed with (None in records of earlier releases)."""
    extra: dict[str, Any]
    header: bytes = field(repr=False)
    registration: bytes = field(repr=False)
    photo: bytes = field(repr=False)

    def open(self, key: bytes) -> Submission:
        """The submission, decrypted with the applicant's data key. Raises :class:`EnvelopeError` when a part
        does not decrypt (tampered, or not this applicant's key) or the registration is not a JSON object."""
        try:
            registration = json.loads(open_sealed(key, self.registration, _aad("registration", self.header)))
            photo = bytes(open_sealed(key, self.photo, _aad("photo", self.header)))
        except CryptoError as exc:
            raise EnvelopeError(f"sealed envelope does not open: {exc}") from None
        except (UnicodeDecodeError, ValueError):
            raise EnvelopeError("sealed registration is not JSON") from None
        if not isinstance(registration, dict):
            raise EnvelopeError("sealed registration is not a JSON object")
        try:
            data = registration_data(registration)
        except ValueError:
            raise EnvelopeError("sealed registration lacks required fields") from None
        return Submission(
            submission_id=self.submission_id,
            received_at=self.received_at,
            client_id=self.client_id,
            registration=data,
            photo=photo,
            nik_hash=self.nik_hash,
            extra=self.extra,
        )


def decode(value: bytes | None) -> Submission | Sealed:
    """Parse a record value: a :class:`Submission` (version 1, plaintext) or a :class:`Sealed` one (version 2: call
    :meth:`Sealed.open` with the applicant's data key). Raises :class:`EnvelopeError` for anything else."""
    if not value or len(value) < _PREFIX.size:
        raise EnvelopeError("record too short for an envelope")
    magic, version, header_len = _PREFIX.unpack_from(value)
    if magic != MAGIC:
        raise EnvelopeError("not an intake envelope (bad magic)")
    if version not in (VERSION, VERSION_SEALED):
        raise EnvelopeError(f"unsupported envelope version {version}")
    if header_len > MAX_HEADER_BYTES or _PREFIX.size + header_len > len(value):
        raise EnvelopeError("envelope header length out of range")
    start = _PREFIX.size
    raw = bytes(value[start : start + header_len])
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise EnvelopeError("envelope header is not JSON") from None
    if not isinstance(header, dict):
        raise EnvelopeError("envelope header is not a JSON object")
    body = value[start + header_len :]
    if version == VERSION_SEALED:
        return _sealed(header, raw, body)
    try:
        declared = header["photo"]
        sub = Submission(
            submission_id=str(header["submission_id"]),
            received_at=str(header["received_at"]),
            client_id=str(header["client_id"]),
            registration=registration_data(header["registration"]),
            photo=body,
            nik_hash=str(header.get("nik_hash", "")),
            extra=dict(header.get("extra") or {}),
        )
        size, digest = int(declared["size"]), str(declared["sha256"])
    except (KeyError, TypeError, ValueError):
        raise EnvelopeError("envelope header lacks required fields") from None
    if size != len(body) or hashlib.sha256(body).hexdigest() != digest:
        raise EnvelopeError("photo bytes do not match the envelope's size or checksum")
    return sub


def _sealed(header: dict[str, Any], raw: bytes, body: bytes) -> Sealed:
    try:
        reg_size, photo_size = int(header["sealed"]["registration"]), int(header["sealed"]["photo"])
        nik_hash = str(header["nik_hash"])
        sealed = Sealed(
            submission_id=str(header["submission_id"]),
            received_at=str(header["received_at"]),
            client_id=str(header["client_id"]),
            nik_hash=nik_hash,
            dek_id=None if header.get("dek") is None else str(header["dek"]),
            extra=dict(header.get("extra") or {}),
            header=raw,
            registration=body[:reg_size],
            photo=body[reg_size:],
        )
    except (KeyError, TypeError, ValueError):
        raise EnvelopeError("envelope header lacks required fields") from None
    if not _NIK_HASH.match(nik_hash):
        raise EnvelopeError("sealed envelope without a keyed NIK hash")
    if min(reg_size, photo_size) < OVERHEAD or reg_size + photo_size != len(body):
        raise EnvelopeError("sealed parts do not match the envelope's sizes")
    return sealed
