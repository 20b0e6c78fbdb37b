"""Registration records on the real parts: kept per decided submission, exported after the close, erased on
request, stored once when redelivered, and still exported after the submissions topic's records expired."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from consumers.export import export_wave
from consumers.selection import close_wave
from ingest.records import submission_record
from ingest.tokens import new_submission_id
from intake.kafka import ensure_topics, read_topic, running_sink
from intake.kafka.admin import started_admin
from intake.registration_record import SCHEMA_FILE, RegistrationRecord, registration_key
from intake.settings import Settings, to_environ
from intake.storage import MinioStore
from intake.topics import topic_names, topic_specs
from processors.registration import parse_registration
from processors.waves import Wave
from tests.corpus.ktp import SceneSpec, encode, scene
from tests.integration.conftest import Consumers, read_status, started_api, wait_until
from tests.support import FakeSink, make_registration, multipart

pytestmark = pytest.mark.integration

PHOTO = encode(scene(SceneSpec(seed=31)))
ROOT = Path(__file__).resolve().parents[2]


def _wave(settings: Settings, number: int, quota: int) -> Settings:
    return replace(settings, wave=replace(settings.wave, number=number, quota=quota))


def _validator() -> Any:
    return jsonschema_rs.validator_for(json.loads((ROOT / SCHEMA_FILE).read_text()), validate_formats=True)


def _normalised(reg: dict[str, Any]) -> dict[str, Any]:
    return parse_registration(reg, on=date(2026, 1, 1)).model_dump(mode="json")


async def _submit_all(settings: Settings, regs: list[dict[str, Any]]) -> list[str]:
    """Post every registration through the real API, run a consumer until all are eligible; the submission ids."""
    client: TestClient[Any, Any] = await started_api(settings)
    group = Consumers(settings)
    try:
        accepted = []
        for reg in regs:
            resp = await client.post("/v1/registrations", data=multipart(reg, PHOTO))
            assert resp.status == 202, await resp.text()
            accepted.append(await resp.json())
        group.start()
        for a in accepted:
            auth = {"Authorization": f"Bearer {a['status_token']}"}

            async def eligible(url: str = a["status_url"], headers: dict[str, str] = auth) -> bool:
                body = await (await client.get(url, headers=headers)).json()
                assert body["state"] in ("received", "eligible"), body
                return bool(body["state"] == "eligible")

            await wait_until(eligible, 120, "the submission to be eligible")
    finally:
        await group.close()
        await client.close()
    return [str(a["submission_id"]) for a in accepted]


def _cli(settings: Settings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``intake ARGS`` as an operator would, against this test's topics and buckets."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        input=stdin,
        env={**os.environ, **to_environ(settings)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _latest_on_topic(settings: Settings) -> dict[str, list[bytes]]:
    """Every value of the registrations topic, per submission id, in offset order."""
    values: dict[str, list[bytes]] = {}
    async for record in read_topic(settings, topic_names(settings).registrations):
        values.setdefault((record.key or b"").decode(), []).append(record.value or b"")
    return values


async def test_a_registration_is_exported_after_its_wave_closes_and_gone_after_erasure(
    topics_ready: Settings, minio_store: MinioStore, tmp_path: Path
) -> None:
    settings = _wave(topics_ready, 6, 2)
    regs = [make_registration(wave=6) for _ in range(3)]
    ids = await _submit_all(settings, regs)
    by_id = dict(zip(ids, regs, strict=True))
    bucket = settings.s3.bucket_registrations
    for sid, reg in by_id.items():  # kept for every decided submission, under the submission id
        stored = await minio_store.get(bucket, registration_key(sid))
        assert stored is not None
        _validator().validate(json.loads(stored.data))
        assert RegistrationRecord.from_json(stored.data).registration == _normalised(reg)
        stat = minio_store._client.stat_object(bucket, registration_key(sid))
        assert stat.metadata is not None and stat.metadata.get("x-amz-server-side-encryption") == "AES256"
    assert not [k for k in await minio_store.list_keys(bucket) if any(r["nik"] in k for r in regs)]

    out = tmp_path / "wave6.jsonl"
    early = await asyncio.to_thread(_cli, settings, "waves", "export", "6", "--output", str(out))
    assert early.returncode == 3, early.stderr  # not closed yet: nothing exported

    w = settings.wave
    summary = await close_wave(settings, minio_store, FakeSink(), Wave(6, w.opens_at, w.closes_at, 2), now=w.closes_at)
    assert summary.selected == 2
    done = await asyncio.to_thread(_cli, settings, "waves", "export", "6", "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert "2/2" in done.stderr  # the progress bar
    assert json.loads(done.stdout)["written"] == 2
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and {r["state"] for r in rows} == {"selected"}
    for row in rows:
        _validator().validate(row)
        assert row["registration"] == _normalised(by_id[row["submission_id"]])
        status = await read_status(minio_store, settings, row["submission_id"])
        assert status is not None and status.state == "selected"

    gone = rows[0]["submission_id"]
    erased = await asyncio.to_thread(_cli, settings, "erase", stdin=by_id[gone]["nik"] + "\n")
    assert erased.returncode == 0, erased.stderr
    assert json.loads(erased.stdout)["registrations_deleted"] == 1
    assert by_id[gone]["nik"] not in erased.stdout + erased.stderr
    assert await minio_store.get(bucket, registration_key(gone)) is None
    latest = json.loads((await _latest_on_topic(settings))[gone][-1])
    assert (latest["state"], latest["registration"]) == ("erased", None)

    again = tmp_path / "wave6-after-erasure.csv"
    rerun = await asyncio.to_thread(_cli, settings, "waves", "export", "6", "--output", str(again), "--format", "csv")
    assert rerun.returncode == 0, rerun.stderr
    assert (json.loads(rerun.stdout)["written"], json.loads(rerun.stdout)["erased"]) == (1, 1)
    assert by_id[gone]["nik"] not in again.read_text() and rows[1]["registration"]["nik"] in again.read_text()


async def test_a_redelivered_record_stores_the_same_registration_once(
    topics_ready: Settings, minio_store: MinioStore
) -> None:
    settings = topics_ready
    parsed = parse_registration(make_registration(), on=date(2026, 1, 1))
    sid = new_submission_id(b"r" * 32, "web", None)
    received = settings.wave.opens_at
    digest, value = submission_record(settings, parsed, PHOTO, submission_id=sid, client_id="web", received_at=received)
    async with running_sink(settings) as sink:
        await wait_until(lambda: _ready(sink), 30, "the producer")
        for _ in range(2):  # the same record delivered twice (a producer retry, a replay)
            await sink.send(topic_names(settings).submissions, digest.encode(), value)
    group = Consumers(settings)
    group.start()
    try:

        async def both_handled() -> bool:
            return len((await _latest_on_topic(settings)).get(sid, [])) == 2

        await wait_until(both_handled, 120, "both deliveries to be handled")
    finally:
        await group.close()
    published = (await _latest_on_topic(settings))[sid]
    keys = await minio_store.list_keys(settings.s3.bucket_registrations, registration_key(sid))
    assert keys == [registration_key(sid)]
    stored = await minio_store.get(settings.s3.bucket_registrations, registration_key(sid))
    assert stored is not None and published == [stored.data, stored.data]
    assert RegistrationRecord.from_json(stored.data).registration == parsed.model_dump(mode="json")


async def _ready(sink: Any) -> bool:
    return bool(sink.ready())


async def _shorten_retention(settings: Settings, topic: str, retention_ms: int) -> None:
    """Set the topic's retention (and segment roll) to ``retention_ms``, keeping its other settings."""
    spec = next(s for s in topic_specs(settings) if s.name == topic)
    config = {**spec.config, "retention.ms": str(retention_ms), "segment.ms": str(retention_ms)}
    async with started_admin(settings) as admin:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=config)])


async def _expired(settings: Settings, topic: str) -> bool:
    """True once every partition's log start reached its end: every record of the topic is gone."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.kafka.partitions)]
        start, end = await consumer.beginning_offsets(partitions), await consumer.end_offsets(partitions)
        return sum(end.values()) > 0 and all(start[tp] == end[tp] for tp in partitions)
    finally:
        await consumer.stop()


async def test_no_registration_is_lost_after_the_submissions_expire(
    topics_ready: Settings, minio_store: MinioStore, tmp_path: Path
) -> None:
    k = topics_ready.kafka
    settings = _wave(
        replace(topics_ready, kafka=replace(k, topic_prefix=f"{k.topic_prefix}-ret", group_id=f"{k.group_id}-ret")),
        7,
        3,
    )
    await ensure_topics(settings)
    regs = [make_registration(wave=7) for _ in range(4)]
    ids = await _submit_all(settings, regs)
    by_id = dict(zip(ids, regs, strict=True))
    submissions = topic_names(settings).submissions
    await _shorten_retention(settings, submissions, 1000)
    started = time.monotonic()
    # The broker checks retention every log.retention.check.interval.ms (60 s on the local stack).
    await wait_until(lambda: _expired(settings, submissions), 200, "the submissions topic's segments to expire")
    assert [r async for r in read_topic(settings, submissions)] == []
    expired_after_s = time.monotonic() - started

    w = settings.wave
    summary = await close_wave(settings, minio_store, FakeSink(), Wave(7, w.opens_at, w.closes_at, 3), now=w.closes_at)
    assert summary.selected == 3
    out = tmp_path / "wave7.jsonl"
    exported = await export_wave(settings, minio_store, 7, out)
    assert (exported.written, exported.missing, exported.erased) == (3, 0, 0), expired_after_s
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3
    for row in rows:
        _validator().validate(row)
        assert row["registration"] == _normalised(by_id[row["submission_id"]])
