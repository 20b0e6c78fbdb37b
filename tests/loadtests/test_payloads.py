"""Synthetic applicants are valid and distinct; the body factory builds the multipart the API reads."""

from __future__ import annotations

import random
from datetime import date

import pytest

from loadtests.payloads import SIZE_CLASSES, BodyFactory, fresh_registration, parse_classes, pick_class
from processors.registration import parse_registration


def test_fresh_applicants_are_valid_and_their_niks_distinct() -> None:
    rng = random.Random(1)
    regs = [fresh_registration(rng) for _ in range(3000)]
    for reg in regs[:300]:
        parse_registration(reg, on=date(2026, 1, 1))
    assert len({r["nik"] for r in regs}) == len(regs)


def test_body_has_both_parts_in_order() -> None:
    f = BodyFactory(boundary="b0undary")
    body = f.body({"a": 1}, b"JPEGDATA")
    assert f.content_type == "multipart/form-data; boundary=b0undary"
    assert body.startswith(b'--b0undary\r\nContent-Disposition: form-data; name="registration"')
    assert b'name="ktp_photo"; filename="ktp.jpg"\r\nContent-Type: image/jpeg\r\n\r\nJPEGDATA\r\n--b0undary--' in body
    assert 300 < f.overhead() < 2000


def test_size_class_mix() -> None:
    rng = random.Random(3)
    picks = [pick_class(rng, "mix") for _ in range(2000)]
    assert set(picks) == set(SIZE_CLASSES)
    assert picks.count("200k") > picks.count("5m")
    assert pick_class(rng, "1m") == "1m"
    assert parse_classes("mix") == list(SIZE_CLASSES)
    with pytest.raises(ValueError, match="unknown"):
        parse_classes("9m")
