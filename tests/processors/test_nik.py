"""Tests for processors.nik. NIKs are synthesised by :func:`make_nik`; none belongs to a real person."""

from __future__ import annotations

import random
from datetime import date

import pytest
from stdnum.id import nik as stdnum_nik

from processors.nik import (
    PROVINCES,
    age_on,
    check_nik_structure,
    normalize_nik,
    resolve_birth_date,
    validate_nik,
)
from processors.reasons import Rejected
from tests.support import make_nik

ON = date(2024, 3, 1)


def rejected(nik: str, birth: date, on: date = ON) -> Rejected:
    with pytest.raises(Rejected) as info:
        validate_nik(nik, birth, on)
    # The NIK never leaks into the exception.
    text = f"{info.value} {info.value.args} {info.value.detail} {info.value.measured} {info.value.threshold}"
    assert nik not in text
    assert nik[6:12] not in text
    return info.value


def test_valid_male() -> None:
    birth = date(1990, 8, 17)
    facts = validate_nik(make_nik(birth), birth, ON)
    assert facts.province_code == "31"
    assert facts.province_name == "DKI Jakarta"
    assert facts.regency_code == "71"
    assert facts.is_city
    assert facts.district_code == "01"
    assert facts.birth_date == birth
    assert facts.sex == "male"
    assert facts.age == 33


def test_valid_female_day_plus_40() -> None:
    birth = date(1995, 12, 31)
    nik = make_nik(birth, female=True, province="35", regency="15")
    assert nik[6:8] == "71"
    facts = validate_nik(nik, birth, ON)
    assert facts.sex == "female"
    assert not facts.is_city


def test_female_encoding_with_male_day_is_mismatch() -> None:
    birth = date(1995, 1, 5)
    nik = make_nik(date(1995, 1, 5), female=True)  # day field 45
    assert validate_nik(nik, birth, ON).sex == "female"
    assert rejected(nik, date(1995, 1, 15)).code == "nik_birth_date_mismatch"


def test_separators_are_accepted() -> None:
    birth = date(1990, 8, 17)
    nik = make_nik(birth)
    spaced = f" {nik[:4]} {nik[4:8]}-{nik[8:12]}.{nik[12:]} "
    assert normalize_nik(spaced) == nik
    assert validate_nik(spaced, birth, ON).birth_date == birth


def test_normalize_nik_answers_as_stdnum_compact() -> None:
    """The plain-digits shortcut changes no answer: seeded strings of digits (ASCII and others), separators,
    whitespace and look-alike dashes, each normalised both ways."""
    rng = random.Random(20261201)
    alphabet = "0123456789" * 4 + " -.\t\u2013\u2014\u00a0\u0663\uff11\u00b2x"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.choice((0, 1, 15, 16, 17, rng.randrange(40)))))
        assert normalize_nik(text) == stdnum_nik.compact(text), repr(text)
    for text in ("3171011708900001", "", "\u0663" * 16, "\uff11" * 16, "\u00b2" * 16):
        assert normalize_nik(text) == stdnum_nik.compact(text), repr(text)


@pytest.mark.parametrize("nik", ["317101170890000", "31710117089000012", "3" * 65])
def test_wrong_length(nik: str) -> None:
    error = rejected(nik, date(1990, 8, 17))
    assert (error.code, error.detail["rule"]) == ("nik_invalid", "length")


@pytest.mark.parametrize("nik", ["", " ", " - "])
def test_blank_is_wrong_length(nik: str) -> None:
    with pytest.raises(Rejected) as info:
        validate_nik(nik, date(1990, 8, 17), ON)
    assert (info.value.code, info.value.detail["rule"], info.value.measured) == ("nik_invalid", "length", 0)


def test_wrong_length_reports_length() -> None:
    error = rejected("317101170890000", date(1990, 8, 17))
    assert (error.code, error.detail["rule"], error.measured, error.threshold) == ("nik_invalid", "length", 15, 16)


@pytest.mark.parametrize("nik", ["31710117089O0001", "3171011708900x01", "٣١٧١٠١١٧٠٨٩٠٠٠٠١", "+171011708900001"])
def test_non_digits(nik: str) -> None:
    error = rejected(nik, date(1990, 8, 17))
    assert (error.code, error.detail["rule"]) == ("nik_invalid", "digits")


@pytest.mark.parametrize(
    "province", ["00", "10", "20", "22", "37", "50", "54", "60", "66", "70", "77", "83", "90", "97", "99"]
)
def test_bad_province(province: str) -> None:
    birth = date(1990, 8, 17)
    assert rejected(make_nik(birth, province=province), birth).code == "nik_province_invalid"


def test_all_38_provinces_accepted_including_papua_splits() -> None:
    assert len(PROVINCES) == 38
    for code in ("65", "91", "92", "93", "94", "95", "96"):
        assert code in PROVINCES
    birth = date(1990, 8, 17)
    for code in PROVINCES:
        assert validate_nik(make_nik(birth, province=code), birth, ON).province_code == code


@pytest.mark.parametrize(("regency", "district"), [("00", "01"), ("70", "01"), ("01", "00"), ("71", "00")])
def test_bad_region(regency: str, district: str) -> None:
    birth = date(1990, 8, 17)
    error = rejected(make_nik(birth, regency=regency, district=district), birth)
    assert error.code == "nik_region_invalid"
    assert error.detail["rule"] == ("regency" if regency in {"00", "70"} else "district")


@pytest.mark.parametrize(("regency", "is_city"), [("01", False), ("69", False), ("71", True), ("99", True)])
def test_regency_ranges(regency: str, is_city: bool) -> None:
    birth = date(1990, 8, 17)
    assert validate_nik(make_nik(birth, regency=regency, district="99"), birth, ON).is_city is is_city


@pytest.mark.parametrize(
    "ddmmyy", ["001090", "321090", "401090", "721090", "811090", "170090", "171390", "300290", "290201"]
)
def test_nik_date_must_be_real(ddmmyy: str) -> None:
    nik = "317101" + ddmmyy + "0001"
    assert check_nik_structure_rule(nik) == "birth_date"
    error = rejected(nik, date(1990, 10, 17))
    assert (error.code, error.detail["rule"]) == ("nik_invalid", "birth_date")


def check_nik_structure_rule(nik: str) -> str:
    with pytest.raises(Rejected) as info:
        check_nik_structure(nik)
    return str(info.value.detail["rule"])


def test_serial_zero_rejected() -> None:
    birth = date(1990, 8, 17)
    error = rejected(make_nik(birth, serial=0), birth)
    assert (error.code, error.detail["rule"]) == ("nik_invalid", "serial")
    assert validate_nik(make_nik(birth, serial=9999), birth, ON).birth_date == birth


@pytest.mark.parametrize(
    "given",
    [date(1990, 8, 18), date(1990, 9, 17), date(1991, 8, 17), date(1980, 8, 17)],
)
def test_birth_date_mismatch(given: date) -> None:
    nik = make_nik(date(1990, 8, 17))
    error = rejected(nik, given)
    assert error.code == "nik_birth_date_mismatch"


def test_century_resolved_by_given_birth_date() -> None:
    # "05" can be 1905 or 2005: the stated birth date decides (and then the age rule applies to it).
    nik = make_nik(date(2005, 3, 1))
    assert validate_nik(nik, date(1905, 3, 1), ON).age == 119
    assert validate_nik(nik, date(2005, 3, 1), ON).age == 19


def test_feb_29_2000() -> None:
    birth = date(2000, 2, 29)
    nik = make_nik(birth)
    assert validate_nik(nik, birth, ON).birth_date == birth
    assert resolve_birth_date(nik, ON) == birth


@pytest.mark.parametrize(
    ("birth", "reference", "expected"),
    [
        (date(2005, 3, 1), date(2024, 3, 1), date(2005, 3, 1)),
        (date(1990, 8, 17), date(2024, 3, 1), date(1990, 8, 17)),
        (date(1924, 3, 2), date(2024, 3, 1), date(1924, 3, 2)),  # 2024-03-02 would be in the future
        (date(2024, 3, 1), date(2024, 3, 1), date(2024, 3, 1)),  # born today
        (date(1999, 12, 31), date(2000, 1, 1), date(1999, 12, 31)),
    ],
)
def test_standalone_century_resolution(birth: date, reference: date, expected: date) -> None:
    assert resolve_birth_date(make_nik(birth, female=True), reference) == expected


def test_standalone_resolution_rejects_unreal_date() -> None:
    with pytest.raises(Rejected) as info:
        resolve_birth_date("3171013002900001", ON)
    assert info.value.code == "nik_invalid"


def test_under_age_boundary_18th_birthday_on_opening_day() -> None:
    on = date(2024, 3, 1)
    birthday_today = date(2006, 3, 1)
    assert validate_nik(make_nik(birthday_today), birthday_today, on).age == 18
    birthday_tomorrow = date(2006, 3, 2)
    error = rejected(make_nik(birthday_tomorrow), birthday_tomorrow, on)
    assert (error.code, error.threshold, error.measured) == ("under_age", 18, None)


def test_under_age_child() -> None:
    birth = date(2015, 6, 1)
    assert rejected(make_nik(birth), birth).code == "under_age"


def test_age_on_leap_day_birthday() -> None:
    born = date(2004, 2, 29)
    assert age_on(born, date(2022, 2, 28)) == 17
    assert age_on(born, date(2022, 3, 1)) == 18
    assert age_on(born, date(2024, 2, 29)) == 20
    assert age_on(born, date(2003, 1, 1)) == -2


def test_first_failure_order_province_before_date() -> None:
    # Bad province and unreal date: province is reported first.
    assert rejected("991099401090" + "0001", date(1990, 10, 1)).code == "nik_province_invalid"
