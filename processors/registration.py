"""The registration schema and its parser.

Contract
--------
:func:`parse_registration` takes a registration as a dict or as JSON bytes, and the wave's opening date ``on``,
and returns a validated, normalised :class:`Registration`, or raises :class:`processors.reasons.Rejected`:

* ``body_too_large`` if the bytes exceed :data:`MAX_BODY_BYTES`;
* ``invalid_json`` if the bytes are not UTF-8 JSON, or the JSON (or the dict) is not an object with string keys;
* ``validation_failed`` with ``detail == {"fields": [FieldError, ...], "truncated": bool}``, where each field
  error is ``{"field": str, "code": str, "message_id": str, "message_en": str}``. ``code`` is a key of
  :data:`FIELD_ERRORS`, or one of the NIK codes of :mod:`processors.reasons` (:data:`NIK_CODES`, always reported
  on the ``nik`` field). Errors come in field order; at most :data:`MAX_FIELD_ERRORS` are reported.

No message, detail or exception produced here contains submitted values (in particular never the NIK): messages
are built from the code and the field's label only, and pydantic's own errors are discarded (``from None``).

Normalisation: text is NFC-normalised, trimmed, and runs of whitespace (including line breaks) become one space;
the email is normalised as ``email-validator`` does it (domain lower-cased, IDNA; :mod:`processors.email_address`);
the phone becomes E.164 (``+628…``); the NIK loses separators (space, ``-``, ``.``); enum values are matched
case-insensitively.

The age rule needs the reference date: it is applied when the model is validated with the context
``{"on": date}``, which :func:`parse_registration` always passes. Validating :class:`Registration` without that
context (for example re-reading an accepted registration) checks everything else, including that the NIK
matches the birth date.
"""

from __future__ import annotations

import enum
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

import email_validator
import pydantic
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from processors.email_address import normalize_email
from processors.nik import check_nik_birth_date, check_nik_structure, normalize_nik, validate_nik
from processors.reasons import Rejected, reason

__all__ = [
    "FIELD_CODES",
    "FIELD_ERRORS",
    "FIELD_LABELS",
    "LIMITS",
    "MAX_BODY_BYTES",
    "MAX_FIELD_ERRORS",
    "NIK_CODES",
    "Education",
    "EmploymentStatus",
    "FieldError",
    "Registration",
    "field_error",
    "parse_registration",
    "registration_json_schema",
]

MAX_BODY_BYTES = 16 * 1024
"""Largest accepted JSON body; a registration is well under 2 KiB."""
MAX_FIELD_ERRORS = 20
"""At most this many field errors are reported (unknown fields could otherwise make the list unbounded)."""
MIN_BIRTH_DATE = date(1900, 1, 1)


class Education(enum.StrEnum):
    """Highest completed education (``pendidikan terakhir``); values are stable ASCII codes."""

    TIDAK_TAMAT_SD = "tidak_tamat_sd"
    SD = "sd"
    SMP = "smp"
    SMA_SMK = "sma_smk"
    D1 = "d1"
    D2 = "d2"
    D3 = "d3"
    D4 = "d4"
    S1 = "s1"
    S2 = "s2"
    S3 = "s3"


class EmploymentStatus(enum.StrEnum):
    """Current employment status; values are stable ASCII codes."""

    BEKERJA = "bekerja"
    """Employed (wage worker)."""
    WIRAUSAHA = "wirausaha"
    """Self-employed / micro or small business owner."""
    DIRUMAHKAN = "dirumahkan"
    """Furloughed (still employed, not working)."""
    KORBAN_PHK = "korban_phk"
    """Laid off."""
    PENCARI_KERJA = "pencari_kerja"
    """Not working and looking for work."""
    TIDAK_BEKERJA = "tidak_bekerja"
    """Not working and not looking (e.g. homemaker)."""


FIELD_LABELS: dict[str, tuple[str, str]] = {
    "full_name": ("Nama lengkap", "Full name"),
    "email": ("Email", "Email"),
    "birth_date": ("Tanggal lahir", "Birth date"),
    "nik": ("NIK", "NIK"),
    "phone": ("Nomor HP", "Mobile number"),
    "ktp_address": ("Alamat sesuai KTP", "Address on the KTP"),
    "domicile_address": ("Alamat domisili", "Domicile address"),
    "education": ("Pendidikan terakhir", "Highest education"),
    "employment_status": ("Status pekerjaan", "Employment status"),
    "wave": ("Gelombang", "Wave"),
}
"""Field name -> (label in Bahasa Indonesia, label in English), used in messages."""

LIMITS: dict[str, tuple[int, int]] = {
    "full_name": (1, 100),
    "email": (3, 254),
    "nik": (16, 64),
    "phone": (9, 32),
    "ktp_address": (5, 300),
    "domicile_address": (5, 300),
}
"""Field name -> (min, max) length in characters after normalisation (raw length for nik and phone)."""

FIELD_ERRORS: dict[str, tuple[str, str]] = {
    "field_required": ("{label_id} wajib diisi.", "{label_en} is required."),
    "field_type_invalid": ("Format {label_id} tidak valid.", "{label_en} has the wrong type."),
    "field_too_short": (
        "{label_id} terlalu pendek (minimal {min} karakter).",
        "{label_en} is too short (at least {min} characters).",
    ),
    "field_too_long": (
        "{label_id} terlalu panjang (maksimal {max} karakter).",
        "{label_en} is too long (at most {max} characters).",
    ),
    "field_unknown": ("Kolom ini tidak dikenal.", "Unknown field."),
    "field_invalid": ("{label_id} tidak valid.", "{label_en} is not valid."),
    "text_invalid": (
        "{label_id} mengandung karakter yang tidak diizinkan.",
        "{label_en} contains characters that are not allowed.",
    ),
    "name_invalid": (
        "Nama hanya boleh berisi huruf, spasi, tanda petik ('), titik (.) dan tanda hubung (-).",
        "The name may only contain letters, spaces, apostrophes ('), dots (.) and hyphens (-).",
    ),
    "email_invalid": ("Alamat email tidak valid.", "The email address is not valid."),
    "phone_invalid": (
        "Nomor HP tidak valid; gunakan nomor seluler Indonesia, misalnya 0812xxxxxxxx.",
        "The mobile number is not valid; use an Indonesian mobile number, e.g. 0812xxxxxxxx.",
    ),
    "date_invalid": (
        "{label_id} tidak valid; gunakan tanggal yang benar dengan format TTTT-BB-HH.",
        "{label_en} is not valid; use a real date in the format YYYY-MM-DD.",
    ),
    "enum_invalid": ("Pilihan {label_id} tidak valid.", "Invalid choice for {label_en}."),
    "wave_invalid": ("Nomor gelombang tidak valid.", "The wave number is not valid."),
}
"""Schema error code -> (message template in Bahasa Indonesia, in English). Placeholders: ``{label_id}``,
``{label_en}`` (from :data:`FIELD_LABELS`), ``{min}``, ``{max}`` (from :data:`LIMITS`)."""

NIK_CODES: tuple[str, ...] = (
    "nik_invalid",
    "nik_province_invalid",
    "nik_region_invalid",
    "nik_birth_date_mismatch",
    "under_age",
)
"""Codes of :mod:`processors.reasons` reported on the ``nik`` field; their messages come from that table."""

_TEXT = ("field_required", "field_type_invalid", "field_too_short", "field_too_long", "text_invalid")
FIELD_CODES: dict[str, tuple[str, ...]] = {
    "full_name": (*_TEXT, "name_invalid"),
    "email": ("field_required", "field_type_invalid", "field_too_long", "email_invalid"),
    "birth_date": ("field_required", "field_type_invalid", "date_invalid"),
    "nik": ("field_required", "field_type_invalid", *NIK_CODES),
    "phone": ("field_required", "field_type_invalid", "field_too_long", "phone_invalid"),
    "ktp_address": _TEXT,
    "domicile_address": _TEXT,
    "education": ("field_required", "enum_invalid"),
    "employment_status": ("field_required", "enum_invalid"),
    "wave": ("field_required", "field_type_invalid", "wave_invalid"),
    "*": ("field_unknown", "field_invalid"),
}
"""Field -> the codes it can report (``"*"``: any field name, including unknown ones)."""

_UNKNOWN_FIELD = "_"
_FIELD_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_WS = re.compile(r"\s+")
_NAME_PUNCT = frozenset(" '\u2019.-")
_PHONE_SEPARATORS = re.compile(r"[\s().\-]")
_PHONE_NATIONAL = re.compile(r"8[1-9][0-9]{7,10}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True, slots=True)
class FieldError:
    """One field's error, as reported in ``Rejected.detail["fields"]`` (via :meth:`as_dict`)."""

    field: str
    code: str
    message_id: str
    message_en: str

    def as_dict(self) -> dict[str, str]:
        """The JSON-ready form: keys ``field``, ``code``, ``message_id``, ``message_en``."""
        return {"field": self.field, "code": self.code, "message_id": self.message_id, "message_en": self.message_en}


def field_error(field: str, code: str) -> FieldError:
    """Build the :class:`FieldError` for ``field`` and ``code`` (a :data:`FIELD_ERRORS` key or a NIK code).

    An unknown ``code`` is a bug and raises ``KeyError``.
    """
    if code in NIK_CODES:
        row = reason(code)
        return FieldError(field, code, row.message_id, row.message_en)
    template_id, template_en = FIELD_ERRORS[code]
    label_id, label_en = FIELD_LABELS.get(field, (field, field))
    low, high = LIMITS.get(field, (0, 0))
    values = {"label_id": label_id, "label_en": label_en, "min": low, "max": high}
    return FieldError(field, code, template_id.format(**values), template_en.format(**values))


def _err(code: str) -> PydanticCustomError:
    # The message is not used (messages come from FIELD_ERRORS); it must not contain the input.
    return PydanticCustomError(code, code)


def _clean_text(value: object, field: str) -> str:
    """Type check, bound, NFC-normalise, collapse whitespace, reject control/format characters, check length."""
    if value is None:
        raise _err("field_required")
    if not isinstance(value, str):
        raise _err("field_type_invalid")
    low, high = LIMITS[field]
    if len(value) > 4 * high:  # bound the work before normalising
        raise _err("field_too_long")
    text = _WS.sub(" ", unicodedata.normalize("NFC", value)).strip()
    if not text:
        raise _err("field_required")
    # isprintable() is False for every control/format character (category C) and for separators (Z) other than the
    # space, which the collapse above already turned into spaces: so a printable text needs no per-character look.
    if not text.isprintable() and any(unicodedata.category(ch).startswith("C") for ch in text):
        raise _err("text_invalid")
    if len(text) > high:
        raise _err("field_too_long")
    if len(text) < low:
        raise _err("field_too_short")
    return text


def _normalize_phone(value: str) -> str:
    """Indonesian mobile number -> E.164. Accepts ``08…``, ``8…``, ``62 8…``, ``+62 8…``, ``0062 8…``.

    The national number must be ``8`` followed by a nonzero digit and 7-10 more digits (9-12 digits in all), which
    covers every mobile prefix (0811-0899) and number length in use.
    """
    digits = _PHONE_SEPARATORS.sub("", value)
    for prefix in ("+62", "0062", "62", "0"):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
            break
    if not digits.isascii() or _PHONE_NATIONAL.fullmatch(digits) is None:
        raise _err("phone_invalid")
    return "+62" + digits


def _context_on(info: ValidationInfo) -> date | None:
    context = info.context
    if isinstance(context, dict):
        on = context.get("on")
        if isinstance(on, date):
            return on
    return None


class Registration(BaseModel):
    """A validated, normalised registration. Personal fields are excluded from ``repr``.

    Fields (in validation order): ``full_name``, ``email``, ``birth_date``, ``nik`` (16 digits), ``phone``
    (E.164), ``ktp_address``, ``domicile_address``, ``education``, ``employment_status``, ``wave`` (1-9999).
    Unknown fields are rejected (``field_unknown``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    def as_data(self) -> RegistrationData:
        """This registration as JSON types (``model_dump(mode="json")``, whose keys and types the model fixes)."""
        return cast(RegistrationData, self.model_dump(mode="json"))

    full_name: str = Field(repr=False)
    email: str = Field(repr=False)
    birth_date: date = Field(repr=False)
    nik: str = Field(repr=False)
    phone: str = Field(repr=False)
    ktp_address: str = Field(repr=False)
    domicile_address: str = Field(repr=False)
    education: Education
    employment_status: EmploymentStatus
    wave: int

    @field_validator("full_name", mode="before")
    @classmethod
    def _full_name(cls, value: object) -> str:
        name = _clean_text(value, "full_name")
        has_letter = False
        for ch in name:
            category = unicodedata.category(ch)
            if category.startswith("L"):
                has_letter = True
            elif not (category.startswith("M") or ch in _NAME_PUNCT):
                raise _err("name_invalid")
        if not has_letter:
            raise _err("name_invalid")
        return name

    @field_validator("email", mode="before")
    @classmethod
    def _email(cls, value: object) -> str:
        if value is None or value == "":
            raise _err("field_required")
        if not isinstance(value, str):
            raise _err("field_type_invalid")
        if len(value) > LIMITS["email"][1]:
            raise _err("field_too_long")
        try:
            return normalize_email(value.strip())
        except email_validator.EmailNotValidError:
            raise _err("email_invalid") from None

    @field_validator("birth_date", mode="before")
    @classmethod
    def _birth_date(cls, value: object, info: ValidationInfo) -> date:
        if value is None or value == "":
            raise _err("field_required")
        if isinstance(value, str):
            text = value.strip()
            if _ISO_DATE.fullmatch(text) is None:
                raise _err("date_invalid")
            try:
                parsed = date.fromisoformat(text)
            except ValueError:
                raise _err("date_invalid") from None
        elif isinstance(value, date) and type(value) is date:  # not a datetime
            parsed = value
        else:
            raise _err("field_type_invalid")
        on = _context_on(info)
        if parsed < MIN_BIRTH_DATE or (on is not None and parsed > on):
            raise _err("date_invalid")
        return parsed

    @field_validator("nik", mode="before")
    @classmethod
    def _nik(cls, value: object, info: ValidationInfo) -> str:
        if value is None or value == "":
            raise _err("field_required")
        if not isinstance(value, str):
            raise _err("field_type_invalid")
        birth_date = info.data.get("birth_date")  # present only if it validated
        on = _context_on(info)
        try:
            if not isinstance(birth_date, date):
                return check_nik_structure(value)
            if on is None:
                return check_nik_birth_date(value, birth_date)
            validate_nik(value, birth_date, on)
            return normalize_nik(value)
        except Rejected as rejected:
            raise _err(rejected.code) from None

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, value: object) -> str:
        if value is None or value == "":
            raise _err("field_required")
        if not isinstance(value, str):
            raise _err("field_type_invalid")
        if len(value) > LIMITS["phone"][1]:
            raise _err("field_too_long")
        return _normalize_phone(value.strip())

    @field_validator("ktp_address", "domicile_address", mode="before")
    @classmethod
    def _address(cls, value: object, info: ValidationInfo) -> str:
        return _clean_text(value, info.field_name or "ktp_address")

    @field_validator("education", "employment_status", mode="before")
    @classmethod
    def _choice(cls, value: object, info: ValidationInfo) -> enum.StrEnum:
        if value is None or value == "":
            raise _err("field_required")
        kind: type[enum.StrEnum] = Education if info.field_name == "education" else EmploymentStatus
        if isinstance(value, kind):
            return value
        if isinstance(value, str) and len(value) <= 32:
            try:
                return kind(value.strip().lower())
            except ValueError:
                pass
        raise _err("enum_invalid")

    @field_validator("wave", mode="before")
    @classmethod
    def _wave(cls, value: object) -> int:
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            raise _err("field_required")
        if isinstance(value, bool):
            raise _err("field_type_invalid")
        if isinstance(value, str):
            text = value
            if not (text.isascii() and text.isdigit() and len(text) <= 6):
                raise _err("wave_invalid")
            value = int(text)
        if not isinstance(value, int):
            raise _err("field_type_invalid")
        if not 1 <= value <= 9999:
            raise _err("wave_invalid")
        return value


_BUILTIN_CODES = {"missing": "field_required", "extra_forbidden": "field_unknown", "enum": "enum_invalid"}


@pydantic.with_config(ConfigDict(strict=True, extra="forbid", hide_input_in_errors=True))
class RegistrationData(TypedDict):
    """A :class:`Registration` as JSON (:meth:`Registration.as_data`): what the submission envelope carries and the
    registration record stores. Personal data. ``birth_date`` is an ISO 8601 date; ``education`` and
    ``employment_status`` are the enums' values."""

    full_name: str
    email: str
    birth_date: str
    nik: str
    phone: str
    ktp_address: str
    domicile_address: str
    education: str
    employment_status: str
    wave: int


_DATA = TypeAdapter(RegistrationData)


def registration_data(value: object) -> RegistrationData:
    """``value`` (JSON read back from a record) checked to have exactly the fields and JSON types of
    :class:`RegistrationData`. Raises ``ValueError`` (a ``pydantic.ValidationError``, whose message holds no input)
    otherwise. The domain rules are not run again: they ran when the :class:`Registration` was built."""
    return _DATA.validate_python(value)


def _field_errors(error: pydantic.ValidationError) -> list[FieldError]:
    out: list[FieldError] = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        loc = item.get("loc", ())
        name = str(loc[0]) if loc else _UNKNOWN_FIELD
        if _FIELD_NAME.fullmatch(name) is None:
            name = _UNKNOWN_FIELD
        kind = str(item.get("type", ""))
        code = kind if (kind in FIELD_ERRORS or kind in NIK_CODES) else _BUILTIN_CODES.get(kind, "field_invalid")
        if name == "nik" and code in NIK_CODES:
            out.append(field_error("nik", code))
        else:
            out.append(field_error(name, code if code not in NIK_CODES else "field_invalid"))
    return out


def _decode(raw: dict[str, Any] | bytes) -> dict[str, Any]:
    if isinstance(raw, bytes | bytearray | memoryview):
        body = bytes(raw)
        if len(body) > MAX_BODY_BYTES:
            raise Rejected("body_too_large", measured=len(body), threshold=MAX_BODY_BYTES)
        try:
            decoded = json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise Rejected("invalid_json") from None
        raw = decoded
    if not isinstance(raw, dict) or not all(isinstance(key, str) for key in raw):
        raise Rejected("invalid_json", detail={"reason": "not_an_object"})
    return raw


def parse_registration(raw: dict[str, Any] | bytes, on: date) -> Registration:
    """Validate ``raw`` (a dict, or UTF-8 JSON bytes of an object) as a registration for a wave opening on ``on``.

    Returns the normalised :class:`Registration`; raises :class:`Rejected` (see the module docstring).
    """
    data = _decode(raw)
    try:
        return Registration.model_validate(data, context={"on": on})
    except pydantic.ValidationError as error:
        errors = _field_errors(error)
    detail = {
        "fields": [e.as_dict() for e in errors[:MAX_FIELD_ERRORS]],
        "truncated": len(errors) > MAX_FIELD_ERRORS,
    }
    raise Rejected("validation_failed", measured=len(errors), detail=detail)


def registration_json_schema(ref_template: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON Schema of :class:`Registration` with the length bounds of :data:`LIMITS`, the email format and the
    wave's range, and its definitions (the enums) separately: ``(schema, defs)``, references built with
    ``ref_template`` (e.g. ``"#/components/schemas/{model}"``). Used by the OpenAPI document and by the
    registration record's schema, so both describe the same fields."""
    generated = Registration.model_json_schema(ref_template=ref_template)
    defs: dict[str, Any] = generated.pop("$defs", {})
    properties: dict[str, Any] = generated["properties"]
    for name, (low, high) in LIMITS.items():
        properties[name].update({"minLength": low, "maxLength": high})
    properties["email"]["format"] = "email"
    properties["wave"].update({"minimum": 1, "maximum": 9999})
    for name in ("Education", "EmploymentStatus"):
        defs[name].pop("description", None)
    return generated, defs
