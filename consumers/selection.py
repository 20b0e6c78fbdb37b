"""Closing a wave: select among the eligible registrations and tell everyone where they stand.

The eligible registrations of wave *n* are exactly its claims (``claims/wave-<n>/…``, one per NIK, written by the
pipeline for eligible submissions). :func:`close_wave`:

1. refuses while the wave is still open;
2. ranks the claims with :func:`processors.waves.select` (order of completion, or a lottery with a published
   seed) and stores the result once, atomically, as ``waves/wave-<n>/selection.json``; a later or concurrent
   run reuses the stored selection instead of computing a new one, so a close is idempotent and can be resumed
   after an interruption with the same outcome;
3. sets each status to ``selected`` or ``quota_exceeded`` (skipping those already set) and publishes the outcome
   (results topic) and the new status (status topic);
4. stores ``waves/wave-<n>/done.json`` with the counts.

Run it after the consumers have drained the submissions backlog: a submission still in the queue at the close
is not in the selection (its status stays ``eligible``; the operator can see it in the summary's ``late`` count
on a re-run).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from intake.kafka import RecordSink
from intake.settings import Settings
from intake.status import StatusRecord, status_key
from intake.status_topic import publish_status
from intake.storage import ObjectStore, StorageUnavailable
from intake.topics import topic_names
from processors.waves import Wave, select


class WaveStillOpen(Exception):
    """The wave has not closed yet; nothing was changed."""


@dataclass(frozen=True)
class CloseSummary:
    """What a close did. ``updated`` counts statuses changed by this run (0 when re-run after completion)."""

    wave: int
    quota: int
    rule: str
    eligible: int
    selected: int
    quota_exceeded: int
    updated: int
    late: int


@dataclass(frozen=True)
class Selection:
    """The stored outcome of a close: both lists in rank order."""

    wave: int
    quota: int
    rule: str
    seed: str | None
    created_at: str
    selected: list[str]
    quota_exceeded: list[str]

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Selection:
        return cls(**json.loads(raw))


def selection_key(wave: int) -> str:
    return f"waves/wave-{wave}/selection.json"


def done_key(wave: int) -> str:
    return f"waves/wave-{wave}/done.json"


async def _claims(store: ObjectStore, bucket: str, wave: int, concurrency: int) -> list[tuple[str, datetime]]:
    keys = await store.list_keys(bucket, f"claims/wave-{wave}/")
    sem = asyncio.Semaphore(concurrency)

    async def read(key: str) -> tuple[str, datetime] | None:
        async with sem:
            obj = await store.get(bucket, key)
        if obj is None:  # erased meanwhile
            return None
        claim = json.loads(obj.data)
        return str(claim["submission_id"]), datetime.fromisoformat(claim["received_at"])

    return [c for c in await asyncio.gather(*(read(k) for k in keys)) if c is not None]


async def _selection(
    store: ObjectStore, settings: Settings, wave: Wave, seed: str | None, concurrency: int
) -> Selection:
    bucket = settings.s3.bucket_status
    stored = await store.get(bucket, selection_key(wave.number))
    if stored is not None:
        return Selection.from_json(stored.data)
    eligible = await _claims(store, bucket, wave.number, concurrency)
    chosen, rest = select(eligible, wave.quota, seed)
    selection = Selection(
        wave.number,
        wave.quota,
        "lottery" if seed else "order_of_completion",
        seed,
        datetime.now(UTC).isoformat(),
        chosen,
        rest,
    )
    if await store.put_if_absent(bucket, selection_key(wave.number), selection.to_json(), "application/json"):
        return selection
    again = await store.get(bucket, selection_key(wave.number))  # another close won the race: use its selection
    if again is None:
        raise StorageUnavailable("selection vanished")
    return Selection.from_json(again.data)


async def close_wave(
    settings: Settings,
    store: ObjectStore,
    results: RecordSink,
    wave: Wave,
    *,
    seed: str | None = None,
    now: datetime | None = None,
    concurrency: int = 32,
) -> CloseSummary:
    """Close ``wave`` (see the module docstring), publishing through ``results`` (the results and status topics:
    the API's status views learn the new states from there). Raises :class:`WaveStillOpen` before
    ``wave.closes_at``; storage and Kafka errors propagate (re-run to resume)."""
    now = now or datetime.now(UTC)
    if now < wave.closes_at:
        raise WaveStillOpen(f"wave {wave.number} closes at {wave.closes_at.isoformat()}")
    bucket = settings.s3.bucket_status
    selection = await _selection(store, settings, wave, seed, concurrency)
    selected, rest = selection.selected, selection.quota_exceeded
    sem = asyncio.Semaphore(concurrency)
    updated = 0
    topic, status_topic = topic_names(settings).results, topic_names(settings).status

    async def mark(submission_id: str, state: str) -> None:
        nonlocal updated
        async with sem:
            current = await store.get(bucket, status_key(submission_id))
            if current is None:
                return
            record = StatusRecord.from_json(current.data)
            if record.state == state:
                return
            new = StatusRecord(
                submission_id,
                state,
                datetime.now(UTC).isoformat(),
                reason="quota_exceeded" if state == "quota_exceeded" else None,
                objects=record.objects,
                facts={**record.facts, "wave_closed_at": now.isoformat()},
            )
            await store.put(bucket, status_key(submission_id), new.to_json(), "application/json")
            body = {"submission_id": submission_id, "state": state, "reason": new.reason, "updated_at": new.updated_at}
            await results.send(topic, submission_id.encode(), json.dumps(body).encode())
            await publish_status(results, status_topic, new)
            updated += 1

    await asyncio.gather(*(mark(s, "selected") for s in selected), *(mark(s, "quota_exceeded") for s in rest))
    claims_now = len(await store.list_keys(bucket, f"claims/wave-{wave.number}/"))
    summary = CloseSummary(
        wave.number,
        selection.quota,
        selection.rule,
        len(selected) + len(rest),
        len(selected),
        len(rest),
        updated,
        late=max(0, claims_now - len(selected) - len(rest)),
    )
    await store.put(bucket, done_key(wave.number), json.dumps(asdict(summary)).encode(), "application/json")
    return summary
