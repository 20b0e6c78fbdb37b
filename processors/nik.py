"""NIK (Nomor Induk Kependudukan) rules for registration.

Contract
--------
:func:`validate_nik` takes the NIK as typed by the applicant, the birth date they gave, and the reference date
``on`` (the wave's opening date) and returns :class:`NikFacts`, or raises
:class:`processors.reasons.Rejected` with one of the codes ``nik_invalid``, ``nik_province_invalid``,
``nik_region_invalid``, ``nik_birth_date_mismatch`` or ``under_age``. The NIK itself (or any part of it) never
appears in an exception message, ``measured``/``threshold`` or ``detail``; ``detail["rule"]`` names the rule that
failed (a stable, non-personal string from :data:`RULES`).

Structure of a NIK (PP 37/2007 art. 37, Dukcapil): ``PP RR DD ddmmyy SSSS``

* ``PP``   province code, from Kemendagri's list of 38 provinces (:data:`PROVINCES`);
* ``RR``   regency/city (kabupaten/kota) code: Kemendagri numbers kabupaten 01-69 and kota 71-99, so ``00`` and
  ``70`` are rejected. We deliberately do *not* check against a regency list: regencies are split regularly,
  NIKs are kept for life, and a stale list (``stdnum``'s ``id/loc`` database, for instance, lacks province 65
  and the 2022 Papua provinces) would reject real people;
* ``DD``   district (kecamatan) code: any of 01-99 (``00`` is rejected);
* ``ddmmyy`` birth date, with 40 added to the day for women; it must be a real calendar date;
* ``SSSS`` serial number, starting at 0001 (``0000`` is rejected).

A NIK's region is where it was first issued; it does not follow later moves or regional splits, so the province
list below is the union of every code that has been issued, which since 2022 is Kemendagri's current list.

Two-digit years are resolved against the applicant's stated birth date (:func:`validate_nik`: the NIK's
``ddmmyy`` must equal the stated date's day, month and year modulo 100), or standalone, against a reference date
(:func:`resolve_birth_date`: the latest century that does not put the birth after the reference date; this
assumes the person is younger than 100).

Age is counted in completed years; a person born on 29 February turns a year older on 1 March in common years.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from stdnum.id import nik as _stdnum_nik

from processors.reasons import Rejected

__all__ = [
    "MIN_AGE",
    "PROVINCES",
    "RULES",
    "NikFacts",
    "age_on",
    "check_nik_birth_date",
    "check_nik_structure",
    "normalize_nik",
    "resolve_birth_date",
    "validate_nik",
]

MIN_AGE = 18
"""Minimum age, in completed years, on the wave's opening date."""

PROVINCES: dict[str, str] = {
    "11": "Aceh",
    "12": "Sumatera Utara",
    "13": "Sumatera Barat",
    "14": "Riau",
    "15": "Jambi",
    "16": "Sumatera Selatan",
    "17": "Bengkulu",
    "18": "Lampung",
    "19": "Kepulauan Bangka Belitung",
    "21": "Kepulauan Riau",
    "31": "DKI Jakarta",
    "32": "Jawa Barat",
    "33": "Jawa Tengah",
    "34": "DI Yogyakarta",
    "35": "Jawa Timur",
    "36": "Banten",
    "51": "Bali",
    "52": "Nusa Tenggara Barat",
    "53": "Nusa Tenggara Timur",
    "61": "Kalimantan Barat",
    "62": "Kalimantan Tengah",
    "63": "Kalimantan Selatan",
    "64": "Kalimantan Timur",
    "65": "Kalimantan Utara",
    "71": "Sulawesi Utara",
    "72": "Sulawesi Tengah",
    "73": "Sulawesi Selatan",
    "74": "Sulawesi Tenggara",
    "75": "Gorontalo",
    "76": "Sulawesi Barat",
    "81": "Maluku",
    "82": "Maluku Utara",
    "91": "Papua",
    "92": "Papua Barat",
    "93": "Papua Selatan",
    "94": "Papua Tengah",
    "95": "Papua Pegunungan",
    "96": "Papua Barat Daya",
}
"""Kemendagri province codes (38 provinces, including the 2022 Papua splits: Kepmendagri 100.1.1-6117/2022).

Note: BPS statistical codes differ for Papua (BPS uses 91 for Papua Barat and 94 for Papua); NIKs use
Kemendagri's codes. Every code either scheme assigns in 91-96 is in this table anyway.
"""

if len(PROVINCES) != 38:  # pragma: no cover - guards the table at import time
    raise RuntimeError("processors.nik.PROVINCES must list 38 provinces")

RULES: tuple[str, ...] = ("length", "digits", "province", "regency", "district", "birth_date", "serial")
"""Values of ``Rejected.detail["rule"]`` for structural NIK rejections (besides ``birth_date_mismatch`` and
``under_age``)."""

_NIK_LEN = 16
_MAX_INPUT = 64  # longer input is rejected before any processing


@dataclass(frozen=True, slots=True)
class NikFacts:
    """What a valid NIK tells us. Contains no part of the NIK's serial; still personal data: do not log.

    ``sex`` is derived from the day field (day + 40 for women) and is for information only.
    """

    province_code: str
    province_name: str
    regency_code: str
    is_city: bool
    """True for a kota (regency code 71-99), False for a kabupaten (01-69)."""
    district_code: str
    birth_date: date
    sex: Literal["female", "male"]
    age: int
    """Completed years on the reference date ``on``."""


def normalize_nik(nik: str) -> str:
    """Return ``nik`` without surrounding whitespace and without the separators space, ``-`` and ``.``.

    The result is not validated; :func:`validate_nik` does that. Raises nothing. A NIK typed as ASCII digits alone
    (nearly every one) is returned as it is, which is what python-stdnum's ``compact`` answers for it, without its
    character-by-character passes (~5 µs; the upload path normalises a NIK more than once).
    """
    if nik.isdigit() and nik.isascii():
        return nik
    return str(_stdnum_nik.compact(nik))


def age_on(birth_date: date, on: date) -> int:
    """Completed years between ``birth_date`` and ``on`` (negative if ``on`` is before the birth)."""
    years = on.year - birth_date.year
    if (on.month, on.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def _reject(code: str, rule: str, measured: int | None = None, threshold: int | None = None) -> Rejected:
    return Rejected(code, measured=measured, threshold=threshold, detail={"field": "nik", "rule": rule})


def _date_fields(nik: str) -> tuple[int, int, int, Literal["female", "male"]]:
    """Return (day, month, two-digit year, sex) from a 16-digit NIK, without checking the date."""
    day = int(nik[6:8])
    sex: Literal["female", "male"] = "male"
    if day > 40:
        day -= 40
        sex = "female"
    return day, int(nik[8:10]), int(nik[10:12]), sex


def _is_real(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def resolve_birth_date(nik: str, reference: date) -> date:
    """Resolve the NIK's ``ddmmyy`` to a full date, standalone: the latest century not after ``reference``.

    Tries the years ``c*100 + yy`` for the century ``c`` of ``reference`` and the one before, and returns the first
    real date that is not after ``reference``. ``29 02 00`` resolves to 2000-02-29 (1900 was not a leap year).
    Assumes an age below 100. Raises :class:`Rejected` ``nik_invalid`` (rule ``birth_date``) if the fields form no
    real date, or ``length``/``digits`` if ``nik`` is not 16 digits after :func:`normalize_nik`.
    """
    nik = _check_format(nik)
    day, month, yy, _sex = _date_fields(nik)
    century = reference.year // 100 * 100
    for year in (century + yy, century - 100 + yy):
        if _is_real(year, month, day) and date(year, month, day) <= reference:
            return date(year, month, day)
    raise _reject("nik_invalid", "birth_date")


def _check_format(nik: str) -> str:
    if len(nik) > _MAX_INPUT:
        raise _reject("nik_invalid", "length", measured=len(nik), threshold=_NIK_LEN)
    nik = normalize_nik(nik)
    if nik and not (nik.isascii() and nik.isdigit()):
        raise _reject("nik_invalid", "digits")
    if len(nik) != _NIK_LEN:
        raise _reject("nik_invalid", "length", measured=len(nik), threshold=_NIK_LEN)
    return nik


def _check_structure(nik: str) -> tuple[int, int, int, Literal["female", "male"]]:
    """Check everything that needs no birth date; return (day, month, yy, sex)."""
    if nik[0:2] not in PROVINCES:
        raise _reject("nik_province_invalid", "province")
    regency = int(nik[2:4])
    if regency in {0, 70}:
        raise _reject("nik_region_invalid", "regency")
    if nik[4:6] == "00":
        raise _reject("nik_region_invalid", "district")
    day, month, yy, sex = _date_fields(nik)
    # A real date in the 1900s or the 2000s (29 Feb is real only in 2000 for yy == 0).
    if not (_is_real(1900 + yy, month, day) or _is_real(2000 + yy, month, day)):
        raise _reject("nik_invalid", "birth_date")
    if nik[12:16] == "0000":
        raise _reject("nik_invalid", "serial")
    return day, month, yy, sex


def check_nik_structure(nik: str) -> str:
    """Check the rules that need no birth date; return the normalised 16-digit NIK.

    Raises :class:`Rejected` ``nik_invalid``, ``nik_province_invalid`` or ``nik_region_invalid``.
    """
    nik = _check_format(nik)
    _check_structure(nik)
    return nik


def check_nik_birth_date(nik: str, birth_date: date) -> str:
    """:func:`check_nik_structure`, then the NIK's ``ddmmyy`` must equal ``birth_date`` (year modulo 100).

    Returns the normalised NIK. Raises :class:`Rejected` as :func:`check_nik_structure`, or
    ``nik_birth_date_mismatch``.
    """
    nik = _check_format(nik)
    day, month, yy, _sex = _check_structure(nik)
    if (day, month, yy) != (birth_date.day, birth_date.month, birth_date.year % 100):
        raise _reject("nik_birth_date_mismatch", "birth_date_mismatch")
    return nik


def validate_nik(nik: str, birth_date: date, on: date) -> NikFacts:
    """Validate ``nik`` against the applicant's ``birth_date`` and the age rule on ``on``; return its facts.

    Order of checks (the first failure is raised): format (``nik_invalid``: length, digits), province
    (``nik_province_invalid``), regency and district (``nik_region_invalid``), real birth date and nonzero serial
    (``nik_invalid``), birth date equal to ``birth_date`` modulo the century (``nik_birth_date_mismatch``), and
    age >= :data:`MIN_AGE` on ``on`` (``under_age``; the 18th birthday falling on ``on`` is accepted).
    """
    nik = check_nik_birth_date(nik, birth_date)
    _day, _month, _yy, sex = _date_fields(nik)
    age = age_on(birth_date, on)
    if age < MIN_AGE:
        raise Rejected("under_age", threshold=MIN_AGE, detail={"field": "nik", "rule": "under_age"})
    province = nik[0:2]
    return NikFacts(
        province_code=province,
        province_name=PROVINCES[province],
        regency_code=nik[2:4],
        is_city=int(nik[2:4]) >= 71,
        district_code=nik[4:6],
        birth_date=birth_date,
        sex=sex,
        age=age,
    )
