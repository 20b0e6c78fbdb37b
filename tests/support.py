"""Shared helpers for tests: settings, synthetic applicants (never real NIKs) and multipart bodies."""

from __future__ import annotations

import io
import uuid
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer

from intake.auth import ClientKey, signing_key, signing_middleware
from intake.crypto import KeyStore, parse_keks
from intake.envelope import Submission, decode
from intake.kafka import Delivery, QueueUnavailable
from intake.settings import HttpSettings, S3Settings, SecuritySettings, Settings
from intake.storage import MemoryStore, ObjectStore

TEST_KEY = "k" * 40
TEST_PEPPER = "p" * 40
TEST_CLIENT_KEYS = f"web:k1:{'w' * 40}:submit,backoffice:b1:{'b' * 40}:read_ktp"
TEST_KEKS = "t1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
SECRET_ENV = {
    "INTAKE_STATUS_TOKEN_KEY": TEST_KEY,
    "INTAKE_NIK_PEPPER": TEST_PEPPER,
    "INTAKE_CLIENT_KEYS": TEST_CLIENT_KEYS,
    "INTAKE_S3_ACCESS_KEY": "unit",
    "INTAKE_S3_SECRET_KEY": "unit-secret",
    "INTAKE_DATA_KEKS": TEST_KEKS,
}
"""The secret settings as environment variables, for tests that go through ``load_settings``."""
"""A front end that may submit and a back office that may read KTP images (unit tests only)."""


def unit_settings(**sections: Any) -> Settings:
    """Settings for unit tests: no environment, fixed keys, a small topic prefix, and no event-loop-lag admission
    (a test process's loop runs late whenever the machine is busy; the gate has tests of its own)."""
    base = Settings(
        http=HttpSettings(max_loop_lag_ms=0.0),
        security=SecuritySettings(
            status_token_key=TEST_KEY, nik_pepper=TEST_PEPPER, client_keys=TEST_CLIENT_KEYS, data_keks=TEST_KEKS
        ),
        s3=S3Settings(access_key="unit", secret_key="unit-secret"),
    )
    return replace(base, **sections) if sections else base


def api_store() -> MemoryStore:
    """An in-memory store with the buckets the API ensures at start (default names), as after its start-up."""
    store = MemoryStore()
    store.buckets.update({"intake-ktp", "intake-status", "intake-keys"})
    return store


def key_store(store: ObjectStore, settings: Settings | None = None) -> KeyStore:
    """The applicants' data keys in ``store``, as the API and the consumers see them."""
    settings = settings or unit_settings()
    return KeyStore(store, settings.s3.bucket_keys, parse_keks(settings.security.data_keks))


async def open_record(value: bytes, store: ObjectStore, settings: Settings | None = None) -> Submission:
    """A submissions record as the consumer reads it: sealed parts opened with the data key kept in ``store``."""
    envelope = decode(value)
    if isinstance(envelope, Submission):
        return envelope
    return envelope.open(await key_store(store, settings).require(envelope.nik_hash))


def make_nik(
    birth: date,
    *,
    female: bool = False,
    province: str = "31",
    regency: str = "71",
    district: str = "01",
    serial: int = 1,
) -> str:
    """A structurally valid synthetic NIK: PP RR DD ddmmyy SSSS (day + 40 for women)."""
    day = birth.day + (40 if female else 0)
    return f"{province}{regency}{district}{day:02d}{birth.month:02d}{birth.year % 100:02d}{serial:04d}"


def make_registration(wave: int = 1, nik: str | None = None, birth: date | None = None) -> dict[str, Any]:
    """A valid registration for ``wave``. Without ``nik``, a random synthetic applicant (birth date 1975-2000,
    district and serial random: about 7e9 combinations, so collisions within a test run are negligible)."""
    rnd = uuid.uuid4().int
    if birth is None:
        birth = date(1975, 1, 1) + timedelta(days=rnd % 9125)
    if nik is None:
        nik = make_nik(
            birth, female=bool(rnd >> 20 & 1), district=f"{1 + (rnd >> 21) % 99:02d}", serial=1 + (rnd >> 40) % 9999
        )
    return {
        "full_name": "Siti Nurhaliza",
        "email": "siti@example.co.id",
        "nik": nik,
        "birth_date": birth.isoformat(),
        "ktp_address": "Jl. Merdeka No. 1, Jakarta Pusat",
        "domicile_address": "Jl. Merdeka No. 1, Jakarta Pusat",
        "education": "S1",
        "employment_status": "pencari_kerja",
        "phone": "081234567890",
        "wave": wave,
    }


def multipart(registration: dict[str, Any] | bytes, photo: bytes, photo_name: str = "ktp.jpg") -> FormData:
    """A registration upload as the front end sends it."""
    import json

    form = FormData()
    raw = registration if isinstance(registration, bytes) else json.dumps(registration).encode()
    form.add_field("registration", raw.decode("utf-8", "replace"), content_type="application/json")
    form.add_field("ktp_photo", io.BytesIO(photo), filename=photo_name, content_type="image/jpeg")
    return form


class FakeSink:
    """A :class:`intake.kafka.RecordSink` that records sends; ``down`` makes it refuse like an absent broker."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]] = []
        self.down = False
        self.pending_override = 0

    async def send(self, topic: str, key: bytes, value: bytes, headers: Any = ()) -> Delivery:
        if self.down:
            raise QueueUnavailable("fake broker down")
        offset = sum(1 for r in self.records if r[0] == topic)
        self.records.append((topic, key, value, list(headers)))
        return Delivery(0, offset)

    def ready(self) -> bool:
        return not self.down

    def pending(self) -> int:
        return self.pending_override


def client_key(settings: Settings, scope: str = "submit") -> ClientKey:
    """The first configured API key with ``scope``."""
    return signing_key(settings.security.client_keys, scope)


def api_client(
    app: web.Application, settings: Settings, *, scope: str = "submit", actor: str | None = None, **server: Any
) -> TestClient[Any, Any]:
    """A test client whose requests are signed with the settings' first key of ``scope`` (unless they set their
    own ``Authorization``). Start it with ``start_server()`` or ``async with``; close it."""
    signer = signing_middleware(client_key(settings, scope), actor=actor)
    return TestClient(TestServer(app, **server), middlewares=(signer,))
