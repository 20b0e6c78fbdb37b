"""Closing a wave on the in-memory store: exact quota, deterministic, idempotent, resumable."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from consumers.selection import WaveStillOpen, close_wave, done_key, selection_key
from intake.status import StatusRecord, claim_key, status_key
from intake.storage import MemoryStore
from processors.waves import Wave
from tests.support import FakeSink, unit_settings

OPEN = datetime(2026, 1, 1, tzinfo=UTC)
CLOSE = OPEN + timedelta(days=3)
AFTER = CLOSE + timedelta(minutes=1)


async def _store_with(n: int, wave: int = 1) -> tuple[MemoryStore, list[str]]:
    store = MemoryStore()
    await store.ensure_buckets(["intake-status", "intake-ktp"])
    ids = [f"{i:026d}" for i in range(n)]
    for i, sid in enumerate(ids):
        received = (OPEN + timedelta(seconds=n - i)).isoformat()  # later ids completed earlier
        claim = json.dumps({"submission_id": sid, "received_at": received}).encode()
        await store.put("intake-status", claim_key(wave, f"{i:064x}"), claim, "application/json")
        record = StatusRecord(sid, "eligible", received, objects={"card": f"ktp/{sid}/card.jpg"})
        await store.put("intake-status", status_key(sid), record.to_json(), "application/json")
    return store, ids


def _state(store: MemoryStore, sid: str) -> StatusRecord:
    return StatusRecord.from_json(store.objects[("intake-status", status_key(sid))].data)


async def test_refuses_while_open() -> None:
    store, _ = await _store_with(3)
    with pytest.raises(WaveStillOpen):
        await close_wave(unit_settings(), store, FakeSink(), Wave(1, OPEN, CLOSE, 2), now=CLOSE - timedelta(seconds=1))
    assert ("intake-status", selection_key(1)) not in store.objects


async def test_order_of_completion_selects_exactly_the_quota() -> None:
    store, ids = await _store_with(10)
    sink = FakeSink()
    summary = await close_wave(unit_settings(), store, sink, Wave(1, OPEN, CLOSE, 4), now=AFTER)
    assert (summary.eligible, summary.selected, summary.quota_exceeded, summary.updated) == (10, 4, 6, 10)
    selected = {sid for sid in ids if _state(store, sid).state == "selected"}
    assert selected == set(ids[-4:])  # the earliest completions
    rest = [_state(store, sid) for sid in ids[:6]]
    assert all(r.state == "quota_exceeded" and r.reason == "quota_exceeded" for r in rest)
    assert _state(store, ids[0]).objects == {"card": f"ktp/{ids[0]}/card.jpg"}  # facts and objects kept
    assert len([r for r in sink.records if r[0] == "intake.results.v1"]) == 10
    statuses = {k.decode(): StatusRecord.from_json(v).state for t, k, v, _ in sink.records if t == "intake.status.v1"}
    assert statuses == {sid: _state(store, sid).state for sid in ids}
    assert ("intake-status", done_key(1)) in store.objects


async def test_lottery_is_deterministic_and_rerun_changes_nothing() -> None:
    store_a, ids = await _store_with(12)
    store_b, _ = await _store_with(12)
    wave = Wave(1, OPEN, CLOSE, 5)
    await close_wave(unit_settings(), store_a, FakeSink(), wave, seed="published-seed", now=AFTER)
    await close_wave(unit_settings(), store_b, FakeSink(), wave, seed="published-seed", now=AFTER)
    pick_a = [sid for sid in ids if _state(store_a, sid).state == "selected"]
    pick_b = [sid for sid in ids if _state(store_b, sid).state == "selected"]
    assert pick_a == pick_b and len(pick_a) == 5
    again = await close_wave(unit_settings(), store_a, FakeSink(), wave, seed="another-seed", now=AFTER)
    assert again.updated == 0  # the stored selection wins over a new seed: the close happened once
    assert [sid for sid in ids if _state(store_a, sid).state == "selected"] == pick_a


async def test_resumes_after_an_interruption() -> None:
    store, ids = await _store_with(8)
    wave = Wave(1, OPEN, CLOSE, 3)
    store.fail_next = 0
    puts_before = store.puts

    class Interrupt(Exception):
        pass

    original_put = store.put
    calls = 0

    async def flaky_put(bucket: str, key: str, data: bytes, content_type: str) -> None:
        nonlocal calls
        if key.startswith("status/"):
            calls += 1
            if calls == 4:
                raise Interrupt
        await original_put(bucket, key, data, content_type)

    store.put = flaky_put  # type: ignore[method-assign]
    with pytest.raises(Interrupt):
        await close_wave(unit_settings(), store, FakeSink(), wave, now=AFTER, concurrency=1)
    store.put = original_put  # type: ignore[method-assign]
    assert store.puts > puts_before
    done_before = sum(_state(store, sid).state != "eligible" for sid in ids)
    assert done_before < 8
    summary = await close_wave(unit_settings(), store, FakeSink(), wave, now=AFTER)
    assert (summary.selected, summary.quota_exceeded) == (3, 5)
    assert summary.updated == 8 - done_before  # only what the interruption left undone
    assert sorted(_state(store, sid).state for sid in ids).count("selected") == 3
