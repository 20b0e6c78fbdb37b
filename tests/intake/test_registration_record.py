"""The registration record: deterministic bytes, a published JSON Schema kept in step with the code, records that
validate against it (and ones that must not)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any, cast

import jsonschema_rs
import pytest

from intake.registration_record import (
    CSV_COLUMNS,
    SCHEMA_FILE,
    RecordError,
    RegistrationRecord,
    erased,
    registration_key,
    schema_text,
)
from processors.registration import RegistrationData, parse_registration
from tests.support import make_registration

ROOT = Path(__file__).resolve().parents[2]
SID = "abcdefghijklmnopqrstuvwxyz"


def validator() -> Any:
    """A validator of the published file (formats checked too)."""
    return jsonschema_rs.validator_for(json.loads((ROOT / SCHEMA_FILE).read_text()), validate_formats=True)


def record(state: str = "eligible", reason: str | None = None) -> RegistrationRecord:
    reg = parse_registration(make_registration(), on=date(2026, 1, 1)).as_data()
    return RegistrationRecord(SID, state, reason, "2026-01-02T03:04:05+00:00", reg)


def test_published_schema_file_is_current() -> None:
    assert (ROOT / SCHEMA_FILE).read_text() == schema_text(), (
        "regenerate: python -c 'from intake.registration_record import schema_text; print(schema_text(), end=\"\")'"
        f" > {SCHEMA_FILE}"
    )


@pytest.mark.parametrize(
    ("state", "reason"), [("eligible", None), ("rejected", "blurry"), ("selected", None), ("quota_exceeded", None)]
)
def test_records_validate_against_the_schema(state: str, reason: str | None) -> None:
    validator().validate(json.loads(record(state, reason).to_json()))


def test_erased_record_validates_and_carries_no_personal_data() -> None:
    tomb = erased(SID)
    validator().validate(json.loads(tomb.to_json()))
    assert json.loads(tomb.to_json())["registration"] is None


@pytest.mark.parametrize(
    "change",
    [
        {"state": "received"},
        {"reason": "not_a_code"},
        {"schema_version": 2},
        {"submission_id": "ABC"},
        {"extra": 1},
        {"registration": None},  # only an erased record has no registration
    ],
)
def test_schema_refuses_what_is_not_a_record(change: dict[str, Any]) -> None:
    data = {**json.loads(record().to_json()), **change}
    assert not validator().is_valid(data)


def test_schema_refuses_a_raw_unnormalised_registration() -> None:
    data = json.loads(record().to_json())
    data["registration"]["nik"] = "3171-0157-0595-0001"
    data["registration"]["phone"] = "081234567890"
    assert not validator().is_valid(data)


def test_bytes_are_deterministic_and_round_trip() -> None:
    one = record()
    assert one.registration is not None
    # another insertion order, the same registration
    shuffled = cast(RegistrationData, dict(reversed(list(one.registration.items()))))
    again = RegistrationRecord(one.submission_id, one.state, one.reason, one.received_at, shuffled)
    assert again.to_json() == one.to_json()
    assert RegistrationRecord.from_json(one.to_json()) == one


def test_from_json_refuses_other_versions_and_garbage() -> None:
    data = json.loads(record().to_json())
    with pytest.raises(RecordError):
        RegistrationRecord.from_json(json.dumps({**data, "schema_version": 2}).encode())
    with pytest.raises(RecordError):
        RegistrationRecord.from_json(b"[1, 2]")
    with pytest.raises(RecordError):
        RegistrationRecord.from_json(b"{")


@pytest.mark.parametrize(
    "change",
    [
        lambda reg: reg.pop("nik"),
        lambda reg: reg.update(wave="1"),
        lambda reg: reg.update(extra="x"),
        lambda reg: reg.update(full_name=None),
    ],
    ids=["missing", "wrong_type", "unknown", "null"],
)
def test_from_json_refuses_a_registration_of_another_shape(change: Any) -> None:
    data = json.loads(record().to_json())
    change(data["registration"])
    with pytest.raises(RecordError):
        RegistrationRecord.from_json(json.dumps(data).encode())


def test_invariants() -> None:
    with pytest.raises(ValueError, match="unless it is erased"):
        RegistrationRecord(SID, "erased", None, "", record().registration)
    with pytest.raises(ValueError, match="unknown record state"):
        RegistrationRecord(SID, "received", None, "", record().registration)


def test_key_and_csv_row_never_carry_the_nik_in_the_key() -> None:
    one = record()
    assert registration_key(SID) == f"registrations/{SID}.json"
    assert one.registration is not None and one.registration["nik"] not in registration_key(SID)
    row = dict(zip(CSV_COLUMNS, one.csv_row(), strict=True))
    assert row["submission_id"] == SID and row["nik"] == one.registration["nik"] and row["reason"] == ""
