"""The registration step, its erasure and the wave export, on the in-memory store and a fake sink."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from consumers.erasure import erase_applicant
from consumers.export import WaveNotClosed, checkpoint_path, export_wave
from consumers.pipeline import Pipeline
from consumers.selection import Selection, close_wave, selection_key
from ingest.records import submission_record
from ingest.tokens import new_submission_id
from intake.envelope import decode
from intake.metrics import build_metrics
from intake.registration_record import CSV_COLUMNS, SCHEMA_FILE, RegistrationRecord, registration_key
from intake.settings import Settings
from intake.status import StatusRecord, status_key
from intake.storage import MemoryStore
from processors.registration import parse_registration
from processors.waves import Wave
from tests.consumers.test_worker import _accept
from tests.support import FakeSink, make_registration, unit_settings

ROOT = Path(__file__).resolve().parents[2]
OPENS = datetime(2026, 1, 1, tzinfo=UTC)
TOPIC = "intake.registrations.v1"
BUCKET = "intake-registrations"


def _settings(window: int = 64) -> Settings:
    s = unit_settings()
    return replace(s, wave=replace(s.wave, export_window=window))


async def _store() -> MemoryStore:
    store = MemoryStore()
    await store.ensure_buckets(["intake-ktp", "intake-status", BUCKET, "intake-keys"])
    return store


def _record(settings: Settings, reg: dict[str, Any] | None = None) -> tuple[str, str, bytes]:
    """(submission id, NIK hash, record value) as the API builds them."""
    parsed = parse_registration(reg or make_registration(), on=date(2026, 1, 1))
    sid = new_submission_id(b"k" * 32, "web", None)
    digest, value = submission_record(settings, parsed, b"photo", submission_id=sid, client_id="web", received_at=OPENS)
    return sid, digest, value


def _pipeline(settings: Settings, store: MemoryStore, sink: FakeSink) -> Pipeline:
    return Pipeline(settings, store, _accept, sink, build_metrics())


def _validator() -> Any:
    return jsonschema_rs.validator_for(json.loads((ROOT / SCHEMA_FILE).read_text()), validate_formats=True)


async def test_a_decided_submission_keeps_its_registration_and_hands_it_on() -> None:
    settings, store, sink = _settings(), await _store(), FakeSink()
    sid, _, value = _record(settings)
    outcome = await _pipeline(settings, store, sink).handle(value)
    assert outcome.state == "eligible"
    stored = store.objects[(BUCKET, registration_key(sid))]
    record = RegistrationRecord.from_json(stored.data)
    assert (record.state, record.registration) == ("eligible", decode(value).registration)
    _validator().validate(json.loads(stored.data))
    published = [(k, v) for t, k, v, _ in sink.records if t == TOPIC]
    assert published == [(sid.encode(), stored.data)]


async def test_a_rejected_submission_keeps_its_registration_with_the_reason() -> None:
    settings, store, sink = _settings(), await _store(), FakeSink()

    async def blurry(data: bytes) -> Any:
        return await _accept(b"x-7")

    sid, _, value = _record(settings)
    await Pipeline(settings, store, blurry, sink, build_metrics()).handle(value)
    record = RegistrationRecord.from_json(store.objects[(BUCKET, registration_key(sid))].data)
    assert (record.state, record.reason) == ("rejected", "blurry")


async def test_a_redelivery_stores_the_same_registration_once() -> None:
    settings, store, sink = _settings(), await _store(), FakeSink()
    sid, _, value = _record(settings)
    pipeline = _pipeline(settings, store, sink)
    await pipeline.handle(value)
    first = store.objects[(BUCKET, registration_key(sid))].data
    await pipeline.handle(value)
    assert [k for b, k in store.objects if b == BUCKET] == [registration_key(sid)]
    assert store.objects[(BUCKET, registration_key(sid))].data == first
    published = [v for t, _, v, _ in sink.records if t == TOPIC]
    assert published == [first, first]  # the compacted topic keeps one


async def test_the_registration_is_kept_before_the_status_and_a_failure_leaves_no_status() -> None:
    settings, store, sink = _settings(), await _store(), FakeSink()
    sid, _, value = _record(settings)
    sink.down = True  # the registrations topic refuses: the record must be retried, with no status written
    with pytest.raises(Exception, match="fake broker down"):
        await _pipeline(settings, store, sink).handle(value)
    assert ("intake-status", status_key(sid)) not in store.objects
    sink.down = False
    await _pipeline(settings, store, sink).handle(value)
    assert ("intake-status", status_key(sid)) in store.objects


async def test_erasure_deletes_the_record_and_publishes_an_erased_one() -> None:
    settings, store, sink = _settings(), await _store(), FakeSink()
    sid, digest, value = _record(settings)
    other, _, other_value = _record(settings)
    pipeline = _pipeline(settings, store, sink)
    await pipeline.handle(value)
    await pipeline.handle(other_value)
    report = await erase_applicant(settings, store, digest, sink)
    assert report.registrations_deleted == 1
    assert (BUCKET, registration_key(sid)) not in store.objects
    assert (BUCKET, registration_key(other)) in store.objects
    last = [v for t, k, v, _ in sink.records if t == TOPIC and k == sid.encode()][-1]
    tomb = json.loads(last)
    assert (tomb["state"], tomb["registration"]) == ("erased", None)
    _validator().validate(tomb)


async def _closed_wave(n: int, quota: int, window: int = 2) -> tuple[Settings, MemoryStore, list[str]]:
    """``n`` eligible submissions through the pipeline, then wave 1 closed with ``quota`` places."""
    settings, store, sink = _settings(window), await _store(), FakeSink()
    pipeline = _pipeline(settings, store, sink)
    for _ in range(n):
        await pipeline.handle(_record(settings)[2])
    wave = Wave(1, OPENS, OPENS + timedelta(days=1), quota)
    summary = await close_wave(settings, store, FakeSink(), wave, now=wave.closes_at)
    assert summary.selected == quota
    chosen = Selection.from_json(store.objects[("intake-status", selection_key(1))].data).selected
    assert all(_state(store, sid) == "selected" for sid in chosen)
    return settings, store, chosen


def _state(store: MemoryStore, sid: str) -> str:
    return StatusRecord.from_json(store.objects[("intake-status", status_key(sid))].data).state


async def test_export_refuses_a_wave_not_closed(tmp_path: Path) -> None:
    settings, store = _settings(), await _store()
    with pytest.raises(WaveNotClosed):
        await export_wave(settings, store, 1, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


async def test_export_jsonl_writes_the_selected_with_their_fields(tmp_path: Path) -> None:
    settings, store, chosen = await _closed_wave(5, 3)
    out = tmp_path / "selected.jsonl"
    seen: list[int] = []
    summary = await export_wave(settings, store, 1, out, progress=seen.append)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["submission_id"] for r in rows) == sorted(chosen)
    assert {r["state"] for r in rows} == {"selected"}
    for row in rows:
        _validator().validate(row)
        assert len(row["registration"]["nik"]) == 16
    assert (summary.selected, summary.written, summary.erased, summary.missing) == (3, 3, 0, 0)
    assert seen[-1] == 3 and not checkpoint_path(out).exists()


async def test_export_csv_has_a_header_and_one_row_per_selected(tmp_path: Path) -> None:
    settings, store, chosen = await _closed_wave(4, 2)
    out = tmp_path / "selected.csv"
    await export_wave(settings, store, 1, out, fmt="csv")
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert sorted(r[0] for r in rows[1:]) == sorted(chosen)
    assert {r[1] for r in rows[1:]} == {"selected"}


async def test_export_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    settings, store, _ = await _closed_wave(7, 5, window=2)
    out = tmp_path / "selected.jsonl"
    whole = tmp_path / "whole.jsonl"
    await export_wave(settings, store, 1, whole)

    def interrupt(done: int) -> None:
        if done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await export_wave(settings, store, 1, out, progress=interrupt)
    assert json.loads(checkpoint_path(out).read_text())["next_rank"] == 4
    with out.open("ab") as f:
        f.write(b'{"half-written')  # a crash mid-window: cut back to the checkpoint
    summary = await export_wave(settings, store, 1, out)
    assert summary.resumed_at == 4 and summary.written == 5
    assert out.read_bytes() == whole.read_bytes()
    assert not checkpoint_path(out).exists()


async def test_export_counts_erased_and_missing_records(tmp_path: Path) -> None:
    settings, store, chosen = await _closed_wave(4, 3)
    gone, lost = chosen[0], chosen[1]
    await store.put("intake-status", status_key(gone), StatusRecord(gone, "erased", "t").to_json(), "x")
    await store.delete(BUCKET, registration_key(gone))
    await store.delete(BUCKET, registration_key(lost))
    summary = await export_wave(settings, store, 1, tmp_path / "out.jsonl")
    assert (summary.written, summary.erased, summary.missing) == (1, 1, 1)
