"""The submissions record built for an accepted upload (ingest.records)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from ingest.records import submission_record
from intake.envelope import decode
from processors.registration import parse_registration
from processors.screening import nik_hash
from tests.support import make_registration, unit_settings


def test_record_is_keyed_by_the_nik_hash_and_carries_the_upload() -> None:
    settings = unit_settings()
    registration = parse_registration(make_registration(), on=date(2026, 3, 1))
    at = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    key, value = submission_record(
        settings, registration, b"\xff\xd8photo", submission_id="s-1", client_id="web", received_at=at
    )
    assert key == nik_hash(registration.nik, settings.security.nik_pepper.encode()).hex()
    assert registration.nik not in key
    sub = decode(value)
    assert (sub.submission_id, sub.client_id, sub.received_at) == ("s-1", "web", at.isoformat())
    assert sub.photo == b"\xff\xd8photo" and sub.nik_hash == key
    assert sub.registration == registration.model_dump(mode="json")
