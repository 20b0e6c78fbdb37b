"""Reading an upload's parts: the fast reading of a part's name answers exactly what aiohttp's parser answers."""

from __future__ import annotations

import warnings
from unittest import mock

import pytest
from aiohttp import BodyPartReader
from multidict import CIMultiDict, CIMultiDictProxy

from ingest.form_split import PLAIN_DISPOSITION
from ingest.upload import part_name


def _part(disposition: str | None) -> BodyPartReader:
    headers = CIMultiDict({"Content-Type": "application/octet-stream"})
    if disposition is not None:
        headers["Content-Disposition"] = disposition
    return BodyPartReader(b"--b", CIMultiDictProxy(headers), mock.Mock(), subtype="form-data")


PLAIN: list[str | None] = [
    'form-data; name="registration"',
    'form-data; name="ktp_photo"; filename="ktp.jpg"',
    'form-data; name="ktp_photo"; filename="IMG 2026-12-01 (1).JPG"',
    'form-data; name="ktp_photo"; filename=""',
    'form-data; name="ktp_photo"; filename="foto ktp ñ 東京.jpg"',
    'form-data; name="x.y-z_1"; filename="=a=b="',
    'form-data; name="ktp_photo"; filename="  ktp.jpg  "',
]
"""Headers the regular expression takes."""
OTHER: list[str | None] = [
    None,
    "",
    "form-data",
    'form-data; name=""',
    "form-data; name=registration",
    'form-data;name="registration"',
    'form-data;  name="registration"',
    'FORM-DATA; name="registration"',
    'attachment; name="registration"',
    'form-data; NAME="registration"',
    'form-data; name="/registration"',
    'form-data; name="\\\\registration"',
    'form-data; name="regis\\"tration"',
    'form-data; name="registration"; name="ktp_photo"',
    'form-data; name="registration";',
    'form-data; name="ktp_photo"; filename="a;b.jpg"',
    'form-data; name="ktp_photo"; filename="a\\"b.jpg"',
    "form-data; name=\"ktp_photo\"; filename*=UTF-8''k%C3%A9.jpg",
    "form-data; name*=UTF-8''ktp_photo",
    "form-data; name*0=ktp_; name*1=photo",
    'form-data; name="ktp_photo"; filename="ktp.jpg"; size=3',
    'form-data; name="ktp_photo" ; filename="ktp.jpg"',
    'form-data; filename="ktp.jpg"; name="ktp_photo"',
    'form-data; name="r"egistration',
    'form-data; name="registration"\t',
]
"""Headers left to aiohttp's parser (odd, unusual or broken)."""


@pytest.mark.parametrize("header", PLAIN + OTHER)
def test_part_name_is_aiohttps_answer(header: str | None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # aiohttp warns about the broken ones
        assert part_name(_part(header)) == _part(header).name


def test_the_plain_headers_take_the_fast_way() -> None:
    assert all(h is not None and PLAIN_DISPOSITION.fullmatch(h) for h in PLAIN)
    assert not any(h is not None and PLAIN_DISPOSITION.fullmatch(h) for h in OTHER)
