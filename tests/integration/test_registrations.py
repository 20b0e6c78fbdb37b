"""Registrations on the real parts: one per NIK per wave, registry screening with reload, closing a wave."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from consumers.selection import close_wave
from intake.kafka import running_sink
from intake.settings import Settings
from intake.storage import MinioStore
from processors.waves import Wave
from tests.conftest import ON_EVERY_S3_BACKEND
from tests.corpus.ktp import SceneSpec, encode, scene
from tests.integration.conftest import Consumers, started_api, wait_until
from tests.support import make_registration, multipart

pytestmark = [pytest.mark.integration, ON_EVERY_S3_BACKEND]

PHOTO = encode(scene(SceneSpec(seed=11)))


@contextlib.contextmanager
def _reloads() -> Iterator[asyncio.Event]:
    """An event set when a consumer's registry watcher has swapped in a reloaded index (its log line)."""
    reloaded = asyncio.Event()

    class _Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "registries reloaded":
                reloaded.set()

    logger, handler = logging.getLogger("intake.consumer.registries"), _Seen()
    level = logger.level
    logger.setLevel(logging.INFO)  # the line is INFO; the root may be quieter
    logger.addHandler(handler)
    try:
        yield reloaded
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def registry_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "registries"
    folder.mkdir()
    (folder / "asn.txt").write_text("# synthetic test entries\n3171010101800001\n")
    return folder


@pytest.fixture
async def wave2(topics_ready: Settings, registry_dir: Path) -> AsyncIterator[tuple[Settings, TestClient[Any, Any]]]:
    """The API and settings for wave 2 (so this module's claims are its own), with a registry folder."""
    settings = replace(
        topics_ready,
        wave=replace(topics_ready.wave, number=2, quota=3),
        consumer=replace(topics_ready.consumer, registry_dir=str(registry_dir), registry_reload_s=0.3),
    )
    client = await started_api(settings)
    yield settings, client
    await client.close()


async def _post(client: TestClient[Any, Any], reg: dict[str, Any], **headers: str) -> dict[str, Any]:
    resp = await client.post("/v1/registrations", data=multipart(reg, PHOTO), headers=headers)
    assert resp.status == 202, await resp.text()
    return dict(await resp.json())


async def _final(
    client: TestClient[Any, Any],
    accepted: dict[str, Any],
    states: tuple[str, ...] = ("eligible", "rejected", "selected", "quota_exceeded"),
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def done() -> bool:
        resp = await client.get(accepted["status_url"], headers={"Authorization": f"Bearer {accepted['status_token']}"})
        seen.update(await resp.json())
        return seen.get("state") in states

    await wait_until(done, 90, f"a final state for {accepted['submission_id']}")
    return seen


async def test_concurrent_duplicates_give_one_registration(wave2: tuple[Settings, TestClient[Any, Any]]) -> None:
    settings, client = wave2
    reg = make_registration(wave=2)
    same_key = await asyncio.gather(*(_post(client, reg, **{"Idempotency-Key": "dup-test-key-1"}) for _ in range(3)))
    assert len({a["submission_id"] for a in same_key}) == 1  # a retry is the same submission
    others = await asyncio.gather(*(_post(client, reg) for _ in range(4)))
    group = Consumers(settings)
    group.start()
    try:
        finals = [await _final(client, a) for a in [same_key[0], *others]]
    finally:
        await group.close()
    eligible = [f for f in finals if f["state"] == "eligible"]
    dups = [f for f in finals if f["state"] == "rejected"]
    assert len(eligible) == 1
    assert len(dups) == 4
    assert {d["reason"]["code"] for d in dups} == {"duplicate_registration"}
    assert {d["facts"]["first_submission_id"] for d in dups} == {eligible[0]["submission_id"]}


async def test_registry_hit_and_reload_without_restart(
    wave2: tuple[Settings, TestClient[Any, Any]], registry_dir: Path
) -> None:
    settings, client = wave2
    listed = await _post(client, make_registration(wave=2, nik="3171010101800001", birth=_d("1980-01-01")))
    group = Consumers(settings)
    group.start()
    try:
        hit = await _final(client, listed)
        assert hit["state"] == "rejected" and hit["reason"]["code"] == "registry_asn"
        assert hit["reason"]["message_id"] == "NIK Anda tercatat sebagai ASN (Aparatur Sipil Negara)."
        # A new registry file appears while the consumer runs: it is screened against once the watcher reloaded.
        with _reloads() as reloaded:
            (registry_dir / "tni.txt").write_text("3171010202800002\n")
            await asyncio.wait_for(reloaded.wait(), 60)
        later = await _post(client, make_registration(wave=2, nik="3171010202800002", birth=_d("1980-02-02")))
        tni = await _final(client, later)
        assert tni["reason"]["code"] == "registry_tni"
    finally:
        await group.close()


async def test_close_wave_selects_exactly_the_quota(topics_ready: Settings, minio_store: MinioStore) -> None:
    settings = replace(topics_ready, wave=replace(topics_ready.wave, number=3, quota=3))
    client = await started_api(settings)
    group = Consumers(settings)
    try:
        accepted = [await _post(client, make_registration(wave=3)) for _ in range(7)]
        group.start()
        for a in accepted:
            assert (await _final(client, a))["state"] == "eligible"
        w = settings.wave
        wave = Wave(3, w.opens_at, w.closes_at, 3)
        # The new states reach the API's status view through Kafka.
        async with running_sink(settings, connect_timeout_s=30) as sink:
            summary = await close_wave(settings, minio_store, sink, wave, now=w.closes_at)
            assert (summary.eligible, summary.selected, summary.quota_exceeded) == (7, 3, 4)
            states = [(await _final(client, a, ("selected", "quota_exceeded")))["state"] for a in accepted]
            assert states.count("selected") == 3 and states.count("quota_exceeded") == 4
            again = await close_wave(settings, minio_store, sink, wave, now=w.closes_at)
            assert again.updated == 0
        no_token = await client.get(accepted[0]["status_url"])
        assert no_token.status == 401
    finally:
        await group.close()
        await client.close()


def _d(text: str) -> Any:
    from datetime import date

    return date.fromisoformat(text)
