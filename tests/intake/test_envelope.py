"""The envelope round-trips and refuses anything inconsistent."""

from __future__ import annotations

import dataclasses
import json
import struct
from typing import Any

import pytest

from intake.crypto import key_id
from intake.envelope import EnvelopeError, Sealed, Submission, decode, encode, encode_sealed
from processors.registration import registration_data
from tests.support import make_registration


def _sub(photo: bytes = b"\xff\xd8photo\xff\xd9") -> Submission:
    reg = registration_data(make_registration())
    return Submission("a" * 26, "2026-11-28T00:00:00+00:00", "web", reg, photo, "ab" * 32)


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


@pytest.mark.parametrize(
    "registration",
    [
        {"full_name": "Budi"},
        {**make_registration(), "wave": "1"},
        {**make_registration(), "extra": "x"},
        ["not", "an", "object"],
    ],
    ids=["missing_fields", "wrong_type", "unknown_field", "not_an_object"],
)
def test_a_registration_of_another_shape_is_refused(registration: Any) -> None:
    """The registration comes back typed (:class:`RegistrationData`) or not at all; the error names no value."""
    raw = encode(_sub())
    _magic, _version, length = struct.unpack_from(">3sBI", raw)
    header = json.loads(raw[8 : 8 + length])
    header["registration"] = registration
    new = json.dumps(header).encode()
    with pytest.raises(EnvelopeError) as exc:
        decode(raw[:4] + struct.pack(">I", len(new)) + new + raw[8 + length :])
    assert "Budi" not in str(exc.value) and "Siti" not in str(exc.value)


DEK = bytes(range(32))


def test_sealed_round_trip_hides_the_personal_data() -> None:
    sub = _sub(bytes(range(256)) * 40)
    value = encode_sealed(sub, DEK)
    assert b"Siti" not in value and sub.registration["nik"].encode() not in value and sub.photo[:512] not in value
    sealed = decode(value)
    assert isinstance(sealed, Sealed)
    assert (sealed.submission_id, sealed.nik_hash, sealed.client_id) == (sub.submission_id, sub.nik_hash, "web")
    assert sealed.dek_id == key_id(DEK) and sealed.dek_id != key_id(b"\x07" * 32)  # which key, not the key
    assert DEK.hex()[:16] not in value.decode("latin-1")
    assert sealed.open(DEK) == sub
    assert len(value) < len(sub.photo) + 1024  # not inflated either


def test_records_built_one_after_another_are_each_whole() -> None:
    """Records are built in a kept scratch buffer: an earlier record's bytes stay as they were, a smaller record
    after a larger one is exactly its own size, and a photo given as a view of a larger buffer (the API's request
    body) is sealed as its bytes."""
    big, small = _sub(b"\xaa" * 300_000), _sub(b"\x55" * 1_000)
    first = encode_sealed(big, DEK)
    body = b"head" + small.photo + b"tail"
    second = encode_sealed(dataclasses.replace(small, photo=memoryview(body)[4:-4]), DEK)
    assert isinstance(first, bytes) and isinstance(second, bytes)
    assert len(second) == len(encode_sealed(small, DEK)) < len(small.photo) + 1024
    opened = decode(second)
    assert isinstance(opened, Sealed) and opened.open(DEK).photo == small.photo
    earlier = decode(first)
    assert isinstance(earlier, Sealed) and earlier.open(DEK) == big


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
    assert "Siti" not in str(refused.value)


def test_a_sealed_record_of_an_earlier_release_names_no_key() -> None:
    """A header without the key id (records sealed by an earlier release) decodes with ``dek_id`` None (the
    consumer then opens it with the applicant's key as before)."""
    value = encode_sealed(_sub(), DEK)
    older = value.replace(f'"dek":"{key_id(DEK)}",'.encode(), b"")
    header_len = int.from_bytes(value[4:8], "big") - (len(value) - len(older))
    older = older[:4] + header_len.to_bytes(4, "big") + older[8:]
    sealed = decode(older)
    assert isinstance(sealed, Sealed) and sealed.dek_id is None and sealed.submission_id == _sub().submission_id


def test_a_sealed_envelope_needs_the_nik_hash() -> None:
    with pytest.raises(EnvelopeError, match="NIK hash"):
        encode_sealed(Submission("a" * 26, "t", "web", _sub().registration, b"p", "not-a-hash"), DEK)
