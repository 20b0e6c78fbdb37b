"""Tests for processors.registration."""

from __future__ import annotations

import json
import sys
import unicodedata
from datetime import date
from typing import Any

import pytest

from processors.reasons import REASONS, Rejected
from processors.registration import (
    FIELD_CODES,
    FIELD_ERRORS,
    FIELD_LABELS,
    MAX_BODY_BYTES,
    MAX_FIELD_ERRORS,
    NIK_CODES,
    Education,
    EmploymentStatus,
    Registration,
    RegistrationData,
    field_error,
    parse_registration,
    registration_data,
)
from tests.support import make_nik

ON = date(2024, 3, 1)
BIRTH = date(1998, 4, 12)
NIK = make_nik(BIRTH, female=True, province="32", regency="73", district="05", serial=17)


def good(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "full_name": "Ni Luh Putu Ayu Lestari",
        "email": "ayu.lestari@example.co.id",
        "birth_date": BIRTH.isoformat(),
        "nik": NIK,
        "phone": "0812-3456-7890",
        "ktp_address": "Jl. Braga No. 10, Bandung",
        "domicile_address": "Jl. Gatot Subroto 5, Jakarta",
        "education": "s1",
        "employment_status": "pencari_kerja",
        "wave": 12,
    }
    raw.update(changes)
    return raw


def errors(raw: dict[str, Any] | bytes, on: date = ON) -> list[dict[str, str]]:
    with pytest.raises(Rejected) as info:
        parse_registration(raw, on)
    assert info.value.code == "validation_failed"
    fields: list[dict[str, str]] = info.value.detail["fields"]
    text = json.dumps(info.value.detail, ensure_ascii=False) + str(info.value)
    if isinstance(raw, dict) and isinstance(raw.get("nik"), str) and len(raw["nik"]) >= 12:
        assert raw["nik"] not in text
        assert raw["nik"][6:12] not in text
    for item in fields:
        assert set(item) == {"field", "code", "message_id", "message_en"}
        assert item["message_id"]
        assert item["message_en"]
    return fields


def codes(raw: dict[str, Any] | bytes, on: date = ON) -> dict[str, str]:
    return {item["field"]: item["code"] for item in errors(raw, on)}


def test_valid_registration_is_normalised() -> None:
    registration = parse_registration(
        good(
            full_name="  Siti\u00a0 Nur\u2019aini  ",
            email="Siti.Nuraini@Example.CO.ID",
            nik=f"{NIK[:6]} {NIK[6:12]} {NIK[12:]}",
            phone="+62 812 3456 7890",
            ktp_address="Jl. Braga No. 10\nBandung",
            education="SMA_SMK",
            employment_status="Korban_PHK",
            wave="12",
        ),
        ON,
    )
    assert registration.full_name == "Siti Nur\u2019aini"
    assert registration.email == "Siti.Nuraini@example.co.id"
    assert registration.nik == NIK
    assert registration.birth_date == BIRTH
    assert registration.phone == "+6281234567890"
    assert registration.ktp_address == "Jl. Braga No. 10 Bandung"
    assert registration.education is Education.SMA_SMK
    assert registration.employment_status is EmploymentStatus.KORBAN_PHK
    assert registration.wave == 12
    dumped = registration.model_dump(mode="json")
    assert dumped["education"] == "sma_smk"
    assert dumped["birth_date"] == "1998-04-12"


def test_bytes_input() -> None:
    body = json.dumps(good()).encode("utf-8")
    assert parse_registration(body, ON).nik == NIK


def test_repr_hides_personal_data() -> None:
    text = repr(parse_registration(good(), ON))
    for secret in (NIK, "Lestari", "example.co.id", "Braga", "1998", "+62"):
        assert secret not in text


@pytest.mark.parametrize(
    "name",
    [
        "Sukarno",
        "Muhammad 'Ali",
        "Anak Agung Gede Ngurah",
        "J. Siahaan-Panjaitan",
        "Thérèse",
        "\u0627\u062d\u0645\u062f",
    ],
)
def test_unicode_names_accepted(name: str) -> None:
    assert parse_registration(good(full_name=name), ON).full_name == name


def test_name_nfc_normalised() -> None:
    assert parse_registration(good(full_name="Jose\u0301"), ON).full_name == "Jos\u00e9"


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("081234567890", "+6281234567890"),
        ("6281234567890", "+6281234567890"),
        ("+62 (812) 3456-7890", "+6281234567890"),
        ("0062 812 3456 7890", "+6281234567890"),
        ("812-3456-789", "+628123456789"),
        ("0811234567", "+62811234567"),
        ("0895 1234 56789", "+62895123456789"),
        ("0812 3456 78901", "+6281234567890" + "1"),
    ],
)
def test_phone_normalised(phone: str, expected: str) -> None:
    assert parse_registration(good(phone=phone), ON).phone == expected


# --- One test per schema code ----------------------------------------------------------------------------------


@pytest.mark.parametrize("field", list(FIELD_LABELS))
def test_field_required_missing(field: str) -> None:
    raw = good()
    del raw[field]
    assert codes(raw) == {field: "field_required"}


@pytest.mark.parametrize("field", list(FIELD_LABELS))
@pytest.mark.parametrize("value", [None, ""])
def test_field_required_null_or_empty(field: str, value: object) -> None:
    assert codes(good(**{field: value})) == {field: "field_required"}


def test_field_required_whitespace_only_text() -> None:
    assert codes(good(full_name=" \t\n ", ktp_address="   ")) == {
        "full_name": "field_required",
        "ktp_address": "field_required",
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("full_name", 123),
        ("email", ["a@example.com"]),
        ("birth_date", 19980412),
        ("nik", 3273054504980017),
        ("phone", 81234567890),
        ("ktp_address", {"street": "x"}),
        ("wave", True),
        ("wave", 12.5),
    ],
)
def test_field_type_invalid(field: str, value: object) -> None:
    assert codes(good(**{field: value})) == {field: "field_type_invalid"}


def test_field_too_short() -> None:
    found = errors(good(domicile_address="Jl"))
    assert [(e["field"], e["code"]) for e in found] == [("domicile_address", "field_too_short")]
    assert "5" in found[0]["message_id"]
    assert "5" in found[0]["message_en"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("full_name", "A" * 101),
        ("full_name", "A" * 100_000),
        ("email", "a" * 250 + "@example.com"),
        ("phone", "0812" + " " * 40 + "34567890"),
        ("ktp_address", "Jl. " + "x" * 300),
    ],
)
def test_field_too_long(field: str, value: str) -> None:
    assert codes(good(**{field: value})) == {field: "field_too_long"}


def test_field_too_long_message_has_limit() -> None:
    (found,) = errors(good(full_name="A" * 101))
    assert "100" in found["message_id"]
    assert "100" in found["message_en"]
    assert found["message_id"].startswith("Nama lengkap")


@pytest.mark.parametrize("value", ["Jl. Braga\x00 10", "Jl. Braga \u202e01 oN", "Jl. Braga\x7f10", "Jl. \ue000 Braga"])
def test_text_invalid(value: str) -> None:
    assert codes(good(ktp_address=value)) == {"ktp_address": "text_invalid"}


def test_a_printable_character_is_never_a_control_or_format_one() -> None:
    """What lets the text check skip its per-character look for printable text: over every code point."""
    assert not [
        cp for cp in range(sys.maxunicode + 1) if chr(cp).isprintable() and unicodedata.category(chr(cp))[0] == "C"
    ]


@pytest.mark.parametrize(
    "name", ["Budi123", "...", "- '", "Budi_Santoso", "<script>", "Budi@home", "Budi\u200bSantoso"]
)
def test_name_invalid(name: str) -> None:
    assert codes(good(full_name=name))["full_name"] in {"name_invalid", "text_invalid"}


def test_name_invalid_code() -> None:
    assert codes(good(full_name="Budi 2")) == {"full_name": "name_invalid"}


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "budi@@example.com", "budi@example..com", "@example.com"])
def test_email_invalid(email: str) -> None:
    assert codes(good(email=email)) == {"email": "email_invalid"}


@pytest.mark.parametrize(
    "phone",
    [
        "021-555-1234",
        "+1 555 123 4567",
        "0812",
        "0812345678901234",
        "0895 1234 567 890",
        "0801234567890",
        "08l2345678",
        "0812\u06f1234567",
    ],
)
def test_phone_invalid(phone: str) -> None:
    assert codes(good(phone=phone)) == {"phone": "phone_invalid"}


@pytest.mark.parametrize("value", ["12-04-1998", "1998-02-30", "1998/04/12", "1899-12-31", "2024-03-02", "1998-4-12"])
def test_date_invalid(value: str) -> None:
    found = codes(good(birth_date=value))
    assert found["birth_date"] == "date_invalid"
    # The NIK is still checked structurally when the birth date is unusable.
    assert "nik" not in found


@pytest.mark.parametrize(("field", "value"), [("education", "phd"), ("employment_status", "student"), ("education", 3)])
def test_enum_invalid(field: str, value: object) -> None:
    assert codes(good(**{field: value})) == {field: "enum_invalid"}


@pytest.mark.parametrize("wave", [0, -1, 10_000, "abc", "1e3", " "])
def test_wave_invalid(wave: object) -> None:
    expected = "field_required" if wave == " " else "wave_invalid"
    assert codes(good(wave=wave)) == {"wave": expected}


def test_field_unknown() -> None:
    assert codes(good(password="x")) == {"password": "field_unknown"}


def test_unknown_field_names_are_sanitised_and_bounded() -> None:
    raw = good(**{f"extra_{i}": i for i in range(30)}, **{"<b>\u202e": 1, "x" * 100: 2})
    with pytest.raises(Rejected) as info:
        parse_registration(raw, ON)
    detail = info.value.detail
    assert len(detail["fields"]) == MAX_FIELD_ERRORS
    assert detail["truncated"] is True
    assert info.value.measured == 32
    assert all(len(e["field"]) <= 64 for e in detail["fields"])


# --- NIK rules as field errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"nik": "32730545049800"}, "nik_invalid"),
        ({"nik": "3273054504980O17"}, "nik_invalid"),
        ({"nik": make_nik(BIRTH, female=True, serial=0)}, "nik_invalid"),
        ({"nik": make_nik(BIRTH, female=True, province="99")}, "nik_province_invalid"),
        ({"nik": make_nik(BIRTH, female=True, regency="00")}, "nik_region_invalid"),
        ({"nik": make_nik(BIRTH, female=True, district="00")}, "nik_region_invalid"),
        ({"birth_date": "1998-04-13"}, "nik_birth_date_mismatch"),
        ({"birth_date": "2006-03-02", "nik": make_nik(date(2006, 3, 2))}, "under_age"),
    ],
)
def test_nik_codes_on_nik_field(changes: dict[str, Any], code: str) -> None:
    found = errors(good(**changes))
    assert [(e["field"], e["code"]) for e in found] == [("nik", code)]
    assert found[0]["message_id"] == REASONS[code].message_id
    assert found[0]["message_en"] == REASONS[code].message_en


def test_eighteenth_birthday_on_opening_day_accepted() -> None:
    birth = date(2006, 3, 1)
    assert parse_registration(good(birth_date=birth.isoformat(), nik=make_nik(birth)), ON).nik == make_nik(birth)


def test_structural_nik_error_reported_with_bad_birth_date() -> None:
    found = codes(good(birth_date="not a date", nik=make_nik(BIRTH, province="10")))
    assert found == {"birth_date": "date_invalid", "nik": "nik_province_invalid"}


def test_several_errors_in_field_order() -> None:
    found = errors(good(full_name="R2D2", email="x", phone="123", wave=0, education="x"))
    assert [e["field"] for e in found] == ["full_name", "email", "phone", "education", "wave"]


def test_model_without_context_checks_all_but_age() -> None:
    child = date(2015, 1, 1)
    raw = good(birth_date=child.isoformat(), nik=make_nik(child))
    assert Registration.model_validate(raw).nik == make_nik(child)
    assert codes(raw) == {"nik": "under_age"}
    with pytest.raises(ValueError, match="nik_birth_date_mismatch"):
        Registration.model_validate(good(birth_date="1998-04-13"))


def test_pydantic_errors_hide_input() -> None:
    with pytest.raises(ValueError) as info:
        Registration.model_validate(good(birth_date="1998-04-13", email="secret-local@x"))
    assert NIK not in str(info.value)
    assert "secret-local" not in str(info.value)


# --- Bodies ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b'"text"', "invalid_json"),
        (b"[" * 8_000 + b"]" * 8_000, "invalid_json"),
        (b" " * (MAX_BODY_BYTES + 1), "body_too_large"),
    ],
)
def test_bad_bodies(body: bytes, code: str) -> None:
    with pytest.raises(Rejected) as info:
        parse_registration(body, ON)
    assert info.value.code == code
    assert info.value.__cause__ is None


def test_dict_with_non_string_keys() -> None:
    with pytest.raises(Rejected) as info:
        parse_registration({1: "x"}, ON)  # type: ignore[dict-item]
    assert info.value.code == "invalid_json"


def test_validation_failed_has_no_chained_pydantic_error() -> None:
    with pytest.raises(Rejected) as info:
        parse_registration(good(email="x"), ON)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


# --- The code table --------------------------------------------------------------------------------------------


def test_code_table_is_consistent() -> None:
    for code in NIK_CODES:
        assert code in REASONS
    for field, field_codes in FIELD_CODES.items():
        for code in field_codes:
            assert code in FIELD_ERRORS or code in NIK_CODES, (field, code)
            target = field if field != "*" else "unknown_field"
            built = field_error(target, code)
            assert "{" not in built.message_id
            assert "{" not in built.message_en
    used = {code for field_codes in FIELD_CODES.values() for code in field_codes}
    assert set(FIELD_ERRORS) <= used
    assert set(FIELD_LABELS) == set(FIELD_CODES) - {"*"}
    with pytest.raises(KeyError):
        field_error("email", "no_such_code")


def test_as_data_is_registration_data() -> None:
    """The model's JSON has exactly the typed dict's fields, with its types (the envelope and the registration
    record carry it typed)."""
    data = parse_registration(good(), on=ON).as_data()
    assert set(RegistrationData.__annotations__) == set(Registration.model_fields) == set(data)
    assert registration_data(data) == data
    assert isinstance(data["birth_date"], str) and isinstance(data["wave"], int)
