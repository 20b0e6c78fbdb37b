"""The envelope round-trips and refuses anything inconsistent."""

from __future__ import annotations

import pytest

from intake.envelope import EnvelopeError, Sealed, Submission, decode, encode, encode_sealed


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


DEK = bytes(range(32))


def test_sealed_round_trip_hides_the_personal_data() -> None:
    sub = _sub(bytes(range(256)) * 40)
    value = encode_sealed(sub, DEK)
    assert b"Budi" not in value and sub.photo[:512] not in value
    sealed = decode(value)
    assert isinstance(sealed, Sealed)
    assert (sealed.submission_id, sealed.nik_hash, sealed.client_id) == (sub.submission_id, sub.nik_hash, "web")
    assert sealed.open(DEK) == sub
    assert len(value) < len(sub.photo) + 1024  # not inflated either


@pytest.mark.parametrize("change", ["key", "header", "registration", "photo", "sizes"])
def test_a_sealed_record_refuses_anything_altered(change: str) -> None:
    value = bytearray(encode_sealed(_sub(), DEK))
    key = DEK
    if change == "key":
        key = b"\x07" * 32
    elif change == "header":  # the clear header is bound to both sealed parts: another submission id fails
        value = bytearray(bytes(value).replace(b"a" * 26, b"b" * 26))
    elif change == "registration":
        value[value.index(b'"extra":{}}') + 40] ^= 1
    elif change == "photo":
        value[-1] ^= 1
    else:
        value = bytearray(bytes(value).replace(b'"registration":', b'"registration":1'))
    with pytest.raises(EnvelopeError) as refused:
        sealed = decode(bytes(value))
        assert isinstance(sealed, Sealed)
        sealed.open(key)
    assert "Budi" not in str(refused.value)


def test_a_sealed_envelope_needs_the_nik_hash() -> None:
    with pytest.raises(EnvelopeError, match="NIK hash"):
        encode_sealed(Submission("a" * 26, "t", "web", {}, b"p", "not-a-hash"), DEK)
