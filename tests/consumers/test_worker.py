"""The worker with fakes: commit after the write, idempotent redelivery, retries, dead letters."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from consumers.photo_task import PhotoVerdict
from consumers.pipeline import Pipeline
from consumers.worker import RetryPolicy, RetryTopic, Worker
from intake.envelope import Submission, encode
from intake.metrics import build_metrics
from intake.status import StatusRecord, photo_key, status_key
from intake.storage import MemoryStore
from processors.photo import PhotoResult
from tests.support import FakeSink, unit_settings


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass
class Rec:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass
class FakeConsumer:
    """Records the calls the worker makes; serves no records itself (tests call process_batch)."""

    commits: list[dict[Any, int]] = field(default_factory=list)
    seeks: list[tuple[Any, int]] = field(default_factory=list)
    paused: set[Any] = field(default_factory=set)
    assigned: set[Any] = field(default_factory=set)

    async def getmany(self, *partitions: Any, timeout_ms: int = 0, max_records: int | None = None) -> Any:
        await asyncio.sleep(0)
        return {}

    async def commit(self, offsets: Any = None) -> None:
        self.commits.append(dict(offsets))

    def seek(self, partition: Any, offset: int) -> None:
        self.seeks.append((partition, offset))

    def pause(self, *partitions: Any) -> None:
        self.paused.update(partitions)

    def resume(self, *partitions: Any) -> None:
        self.paused.difference_update(partitions)

    def assignment(self) -> Any:
        return self.assigned


def _sub(n: int, applicant: int | None = None) -> Submission:
    """Submission ``n`` of applicant ``applicant`` (default: its own applicant)."""
    nik_hash = f"{applicant if applicant is not None else n:064x}"
    return Submission(
        f"{'a' * 24}{n:02d}"[:26], "2026-11-28T00:00:00+00:00", "web", {"wave": 1}, b"photo-%d" % n, nik_hash
    )


ACCEPTED = PhotoVerdict(PhotoResult(b"card", b"frame", True, 10, 20, "JPEG", "00" * 32, {"blur": 100.0}))


async def _accept(data: bytes) -> PhotoVerdict:
    if data.endswith(b"-7"):
        return PhotoVerdict(None, "blurry", 10.0, 60.0)
    if data.endswith(b"-9"):
        raise RuntimeError("bug in a processor")
    return ACCEPTED


def _worker(store: MemoryStore, consumer: FakeConsumer, sink: FakeSink, attempts: int = 3) -> Worker:
    settings = unit_settings()
    metrics = build_metrics()
    pipeline = Pipeline(settings, store, _accept, sink, metrics)
    return Worker(
        consumer=consumer,
        pipeline=pipeline,
        sink=sink,
        dlq_topic="intake.dead-letter.v1",
        metrics=metrics,
        retry=RetryPolicy(attempts=attempts, base_s=0.001, cap_s=0.01),
        max_batch=16,
    )


async def _store() -> MemoryStore:
    store = MemoryStore()
    await store.ensure_buckets(["intake-ktp", "intake-status"])
    return store


def _records(tp: TP, subs: list[Submission], first: int = 0) -> list[Rec]:
    return [Rec(tp.topic, tp.partition, first + i, s.nik_hash.encode(), encode(s)) for i, s in enumerate(subs)]


async def test_writes_then_commits() -> None:
    store, consumer, sink = await _store(), FakeConsumer(), FakeSink()
    tp = TP("intake.submissions.v1", 0)
    subs = [_sub(1), _sub(2), _sub(7)]
    await _worker(store, consumer, sink).process_batch({tp: _records(tp, subs, first=40)})
    assert consumer.commits == [{tp: 43}]
    ok = StatusRecord.from_json(store.objects[("intake-status", status_key(subs[0].submission_id))].data)
    assert ok.state == "eligible" and ok.objects["card"] == photo_key(subs[0].submission_id, "card")
    assert store.objects[("intake-ktp", photo_key(subs[0].submission_id, "frame"))].data == b"frame"
    bad = StatusRecord.from_json(store.objects[("intake-status", status_key(subs[2].submission_id))].data)
    assert (bad.state, bad.reason, bad.measured, bad.threshold) == ("rejected", "blurry", 10.0, 60.0)
    assert ("intake-ktp", photo_key(subs[2].submission_id, "frame")) not in store.objects
    results = [r for r in sink.records if r[0] == "intake.results.v1"]
    assert len(results) == 3
    # The status topic gets each stored status, keyed by submission id, the same bytes as the object.
    statuses = {k: v for t, k, v, _ in sink.records if t == "intake.status.v1"}
    for sub in subs:
        stored = store.objects[("intake-status", status_key(sub.submission_id))].data
        assert statuses[sub.submission_id.encode()] == stored


async def test_redelivery_is_idempotent() -> None:
    store, consumer, sink = await _store(), FakeConsumer(), FakeSink()
    tp = TP("intake.submissions.v1", 1)
    recs = _records(tp, [_sub(1), _sub(2)])
    worker = _worker(store, consumer, sink)
    await worker.process_batch({tp: recs})
    keys_once = set(store.objects)
    await worker.process_batch({tp: recs})
    assert set(store.objects) == keys_once
    assert len(store.objects) == 10  # 2 x (applicant marker, card, frame, status, claim)


async def test_storage_outage_retries_then_seeks_back_without_commit() -> None:
    store, consumer, sink = await _store(), FakeConsumer(), FakeSink()
    tp = TP("intake.submissions.v1", 2)
    consumer.assigned.add(tp)
    store.fail_next = 10_000
    await _worker(store, consumer, sink, attempts=3).process_batch({tp: _records(tp, [_sub(1), _sub(2)], first=5)})
    assert consumer.commits == []
    assert consumer.seeks == [(tp, 5)]
    assert tp in consumer.paused


async def test_transient_failure_recovers_within_budget() -> None:
    store, consumer, sink = await _store(), FakeConsumer(), FakeSink()
    tp = TP("intake.submissions.v1", 0)
    store.fail_next = 2
    await _worker(store, consumer, sink, attempts=4).process_batch({tp: _records(tp, [_sub(1)])})
    assert consumer.commits == [{tp: 1}]
    assert consumer.seeks == []


async def test_partial_failure_commits_the_finished_prefix() -> None:
    store, consumer, sink = await _store(), FakeConsumer(), FakeSink()
    tp_a, tp_b = TP("intake.submissions.v1", 0), TP("intake.submissions.v1", 1)
    worker = _worker(store, consumer, sink, attempts=1)
    sink.down = True  # results cannot be published: transient for every record
    await worker.process_batch({tp_a: _records(tp_a, [_sub(1)]), tp_b: _records(tp_b, [_sub(2)], first=9)})
    assert consumer.commits == []
    assert sorted(o for _, o in consumer.seeks) == [0, 9]


async def test_garbage_and_bugs_go_to_dead_letter_and_do_not_block() -> None:
    store, consumer, sink = await _store(), FakeConsumer(), FakeSink()
    tp = TP("intake.submissions.v1", 0)
    recs = [Rec(tp.topic, 0, 0, b"k", b"not an envelope"), *_records(tp, [_sub(9), _sub(1)], first=1)]
    await _worker(store, consumer, sink).process_batch({tp: recs})
    assert consumer.commits == [{tp: 3}]
    dlq = [r for r in sink.records if r[0] == "intake.dead-letter.v1"]
    assert [dict(h)["intake.error"] for _, _, _, h in dlq] == [b"envelope_invalid", b"bug:RuntimeError"]
    assert dlq[0][2] == b"not an envelope"  # the original value travels with the error
    assert ("intake-status", status_key(_sub(1).submission_id)) in store.objects


class ListedScreener:
    """Lists the keyed hashes it was given under one registry."""

    def __init__(self, listed: set[str], code: str = "registry_asn") -> None:
        self.listed, self.code = listed, code

    def screen(self, nik_hash: bytes) -> str | None:
        return self.code if nik_hash.hex() in self.listed else None


def _status(store: MemoryStore, sub: Submission) -> StatusRecord:
    return StatusRecord.from_json(store.objects[("intake-status", status_key(sub.submission_id))].data)


async def test_one_registration_per_nik_per_wave() -> None:
    store, consumer, sink = await _store(), FakeConsumer(), FakeSink()
    tp = TP("intake.submissions.v1", 0)
    first, second, other = _sub(1, applicant=5), _sub(2, applicant=5), _sub(3)
    worker = _worker(store, consumer, sink)
    await worker.process_batch({tp: _records(tp, [first, second, other])})
    assert _status(store, first).state == "eligible"
    dup = _status(store, second)
    assert (dup.state, dup.reason) == ("rejected", "duplicate_registration")
    assert dup.facts["first_submission_id"] == first.submission_id
    assert ("intake-ktp", photo_key(second.submission_id, "card")) not in store.objects
    assert _status(store, other).state == "eligible"
    # Redelivery of both: the owner stays eligible, the duplicate stays a duplicate.
    await worker.process_batch({tp: _records(tp, [first, second])})
    assert _status(store, first).state == "eligible"
    assert _status(store, second).reason == "duplicate_registration"


async def test_rejected_photo_claims_no_place() -> None:
    store, consumer, sink = await _store(), FakeConsumer(), FakeSink()
    tp = TP("intake.submissions.v1", 0)
    blurry, retry = _sub(7, applicant=8), _sub(8, applicant=8)  # _accept rejects photos ending in -7
    await _worker(store, consumer, sink).process_batch({tp: _records(tp, [blurry, retry])})
    assert _status(store, blurry).reason == "blurry"
    assert _status(store, retry).state == "eligible"


async def test_registry_hit_is_rejected_with_its_reason() -> None:
    store, consumer, sink = await _store(), FakeConsumer(), FakeSink()
    tp = TP("intake.submissions.v1", 0)
    listed, free = _sub(1), _sub(2)
    settings = unit_settings()
    metrics = build_metrics()
    pipeline = Pipeline(
        settings, store, _accept, sink, metrics, screener=ListedScreener({listed.nik_hash}, "registry_tni")
    )
    worker = Worker(
        consumer=consumer,
        pipeline=pipeline,
        sink=sink,
        dlq_topic="dlq",
        metrics=metrics,
        retry=RetryPolicy(attempts=1),
        max_batch=16,
    )
    await worker.process_batch({tp: _records(tp, [listed, free])})
    hit = _status(store, listed)
    assert (hit.state, hit.reason) == ("rejected", "registry_tni")
    assert not [k for b, k in store.objects if k.startswith("claims/") and listed.nik_hash in k]
    assert _status(store, free).state == "eligible"
    assert b'"reason": "registry_tni"' in b"".join(v for t, _, v, _ in sink.records if t == "intake.results.v1")


async def test_a_commit_that_never_returns_does_not_wedge_the_worker() -> None:
    """While the coordinator is unreachable aiokafka's commit can wait indefinitely; a rebalance then waits for
    the batch. The bounded commit breaks that cycle: the batch ends, the records are redelivered later."""

    class HangingCommit(FakeConsumer):
        async def commit(self, offsets: Any = None) -> None:
            await asyncio.Event().wait()

    store, consumer, sink = await _store(), HangingCommit(), FakeSink()
    tp = TP("intake.submissions.v1", 0)
    settings = unit_settings()
    metrics = build_metrics()
    worker = Worker(
        consumer=consumer,
        pipeline=Pipeline(settings, store, _accept, sink, metrics),
        sink=sink,
        dlq_topic="dlq",
        metrics=metrics,
        retry=RetryPolicy(attempts=1),
        max_batch=16,
        commit_timeout_s=0.2,
    )
    await asyncio.wait_for(worker.process_batch({tp: _records(tp, [_sub(1)])}), 5)
    await asyncio.wait_for(worker.on_partitions_revoked({tp}), 5)


async def _flaky_photo(data: bytes) -> PhotoVerdict:
    """Photo step where one record (photo ending in -5) keeps failing transiently on its own."""
    from intake.storage import StorageUnavailable

    if data.endswith(b"-5"):
        raise StorageUnavailable("this object's shard is slow")
    return ACCEPTED


def _retry_worker(store: MemoryStore, consumer: FakeConsumer, sink: FakeSink) -> Worker:
    settings = unit_settings()
    metrics = build_metrics()
    return Worker(
        consumer=consumer,
        pipeline=Pipeline(settings, store, _flaky_photo, sink, metrics),
        sink=sink,
        dlq_topic="intake.dead-letter.v1",
        metrics=metrics,
        retry=RetryPolicy(attempts=2, base_s=0.001, cap_s=0.01),
        max_batch=16,
        retry_topic=RetryTopic("intake.retry.v1", attempts=3, base_s=5.0),
    )


async def test_a_record_failing_on_its_own_is_parked_on_the_retry_topic() -> None:
    store, consumer, sink = await _store(), FakeConsumer(), FakeSink()
    tp = TP("intake.submissions.v1", 0)
    started = time.time()
    await _retry_worker(store, consumer, sink).process_batch({tp: _records(tp, [_sub(1), _sub(5), _sub(2)])})
    assert consumer.commits == [{tp: 3}]  # the partition is not held by the one bad record
    parked = [r for r in sink.records if r[0] == "intake.retry.v1"]
    assert len(parked) == 1
    headers = dict(parked[0][3])
    assert headers["intake.attempt"] == b"1"
    assert headers["intake.source.offset"] == b"1"
    assert started + 4 < float(headers["intake.not_before"]) < time.time() + 6
    assert parked[0][2] == encode(_sub(5))


async def test_a_parked_record_waits_until_it_is_due() -> None:
    store, consumer, sink = await _store(), FakeConsumer(), FakeSink()
    rtp = TP("intake.retry.v1", 0)
    due = time.time() + 60
    rec = Rec(rtp.topic, 0, 7, b"k", encode(_sub(1)), (("intake.not_before", f"{due}".encode()),))
    await _retry_worker(store, consumer, sink).process_batch({rtp: [rec]})
    assert consumer.commits == []
    assert consumer.seeks == [(rtp, 7)] and rtp in consumer.paused
    assert ("intake-status", status_key(_sub(1).submission_id)) not in store.objects


async def test_attempts_spent_go_to_the_dead_letter_topic() -> None:
    store, consumer, sink = await _store(), FakeConsumer(), FakeSink()
    rtp = TP("intake.retry.v1", 0)
    spent = Rec(rtp.topic, 0, 3, b"k", encode(_sub(5)), (("intake.attempt", b"3"), ("intake.not_before", b"0")))
    fine = Rec(rtp.topic, 0, 4, b"j", encode(_sub(6)), (("intake.attempt", b"1"), ("intake.not_before", b"0")))
    await _retry_worker(store, consumer, sink).process_batch({rtp: [spent, fine]})
    assert consumer.commits == [{rtp: 5}]
    dlq = [r for r in sink.records if r[0] == "intake.dead-letter.v1"]
    assert [dict(h)["intake.error"] for _, _, _, h in dlq] == [b"retries_exhausted:StorageUnavailable"]


async def test_a_systemic_outage_parks_nothing() -> None:
    store, consumer, sink = await _store(), FakeConsumer(), FakeSink()
    tp = TP("intake.submissions.v1", 0)
    consumer.assigned.add(tp)
    store.fail_next = 10_000  # storage is down for everyone
    await _retry_worker(store, consumer, sink).process_batch({tp: _records(tp, [_sub(1), _sub(2)], first=9)})
    assert [r for r in sink.records if r[0] == "intake.retry.v1"] == []
    assert consumer.commits == [] and consumer.seeks == [(tp, 9)]
