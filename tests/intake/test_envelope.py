"""The envelope round-trips and refuses anything inconsistent."""

from __future__ import annotations

import pytest

from intake.envelope import EnvelopeError, Submission, decode, encode


def _sub(photo: bytes = b"\xff\xd8photo\xff\xd9") -> Submission:
    return Submission("a" * 26, "2026-11-28T00:00:00+00:00", "web", {"full_name": "Budi"}, photo, "ab" * 32)


def test_round_trip() -> None:
    sub = _sub()
    assert decode(encode(sub)) == sub


def test_photo_bytes_are_not_inflated() -> None:
    photo = bytes(range(256)) * 1000
    assert len(encode(_sub(photo))) < len(photo) + 1024


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"PK",
        b"XYZ\x01\x00\x00\x00\x02{}",
        b"PKI\x02\x00\x00\x00\x02{}",
        b"PKI\x01\xff\xff\xff\xff{}",
        b"PKI\x01\x00\x00\x00\x03{x}",
    ],
)
def test_garbage_is_refused(value: bytes | None) -> None:
    with pytest.raises(EnvelopeError):
        decode(value)


def test_tampered_photo_is_refused() -> None:
    raw = bytearray(encode(_sub()))
    raw[-3] ^= 0xFF
    with pytest.raises(EnvelopeError, match="checksum"):
        decode(bytes(raw))


def test_missing_fields_are_refused() -> None:
    import json
    import struct

    header = json.dumps({"submission_id": "x"}).encode()
    with pytest.raises(EnvelopeError, match="required"):
        decode(struct.pack(">3sBI", b"PKI", 1, len(header)) + header)
