"""The worker on the in-memory Kafka (intake.memory_kafka) and the memory store, checked by its effects: what the
group committed, what was stored, what reached the results, retry and dead-letter topics, and what the next
fetch redelivers. No call sequence is pinned."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from consumers.photo_task import PhotoVerdict
from consumers.pipeline import PhotoRunner, Pipeline, Screener
from consumers.worker import RetryPolicy, RetryTopic, Worker
from intake.envelope import Submission, encode
from intake.memory_kafka import MemoryBroker, MemoryConsumer, MemoryRecord, MemorySink, Partition
from intake.metrics import build_metrics
from intake.status import StatusRecord, photo_key, status_key
from intake.storage import MemoryStore, StorageUnavailable
from processors.photo import PhotoResult
from tests.support import unit_settings

SUBMISSIONS, RETRY, DLQ, RESULTS = (
    "intake.submissions.v1",
    "intake.retry.v1",
    "intake.dead-letter.v1",
    "intake.results.v1",
)
GROUP = "workers"


def _sub(n: int, applicant: int | None = None) -> Submission:
    """Submission ``n`` of applicant ``applicant`` (default: its own applicant)."""
    nik_hash = f"{applicant if applicant is not None else n:064x}"
    return Submission(
        f"{'a' * 24}{n:02d}"[:26], "2026-11-28T00:00:00+00:00", "web", {"wave": 1}, b"photo-%d" % n, nik_hash
    )


ACCEPTED = PhotoVerdict(PhotoResult(b"card", b"frame", True, 10, 20, "JPEG", "00" * 32, {"blur": 100.0}))


async def _accept(data: bytes) -> PhotoVerdict:
    """Accepts every photo, except: ending in -7 blurry, -9 a bug, -5 a storage failure of its own."""
    if data.endswith(b"-7"):
        return PhotoVerdict(None, "blurry", 10.0, 60.0)
    if data.endswith(b"-9"):
        raise RuntimeError("bug in a processor")
    if data.endswith(b"-5"):
        raise StorageUnavailable("this object's shard is slow")
    return ACCEPTED


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class ListedScreener:
    """Lists the keyed hashes it was given under one registry."""

    def __init__(self, listed: set[str], code: str = "registry_asn") -> None:
        self.listed, self.code = listed, code

    def screen(self, nik_hash: bytes) -> str | None:
        return self.code if nik_hash.hex() in self.listed else None


@dataclass
class Rig:
    """A broker with the service's topics, a store, and a worker of group ``GROUP`` (no retry topic unless asked)."""

    attempts: int = 3
    retry_topic: bool = False
    screener: Screener | None = None
    photos: PhotoRunner = _accept
    commit_timeout_s: float = 15.0
    partitions: int = 2
    broker: MemoryBroker = field(default_factory=MemoryBroker)
    store: MemoryStore = field(default_factory=MemoryStore)
    clock: Clock = field(default_factory=Clock)

    def __post_init__(self) -> None:
        for topic in (SUBMISSIONS, RETRY):
            self.broker.create_topic(topic, self.partitions)
        self.sink = MemorySink(self.broker)
        self.consumer = self.new_consumer()
        self.worker = self.new_worker(self.consumer)

    def new_consumer(self) -> MemoryConsumer:
        return MemoryConsumer(self.broker, GROUP, [SUBMISSIONS, RETRY])

    def new_worker(self, consumer: MemoryConsumer) -> Worker:
        metrics = build_metrics()
        return Worker(
            consumer=consumer,
            pipeline=Pipeline(unit_settings(), self.store, self.photos, self.sink, metrics, screener=self.screener),
            sink=self.sink,
            dlq_topic=DLQ,
            metrics=metrics,
            retry=RetryPolicy(attempts=self.attempts, base_s=0.001, cap_s=0.01),
            max_batch=16,
            commit_timeout_s=self.commit_timeout_s,
            retry_topic=RetryTopic(RETRY, attempts=3, base_s=5.0) if self.retry_topic else None,
            clock=self.clock,
        )

    async def start(self) -> None:
        await self.store.ensure_buckets(["intake-ktp", "intake-status", "intake-registrations", "intake-keys"])

    def submit(self, *subs: Submission, partition: int = 0, topic: str = SUBMISSIONS) -> None:
        for s in subs:
            self.broker.append(topic, s.nik_hash.encode(), encode(s), partition=partition)

    async def poll(self, worker: Worker | None = None, consumer: MemoryConsumer | None = None) -> int:
        """One fetch and its processing, as the run loop does; returns how many records were fetched."""
        consumer = consumer or self.consumer
        batches = await consumer.getmany(timeout_ms=0, max_records=16)
        if batches:
            await (worker or self.worker).process_batch(batches)
        return sum(len(r) for r in batches.values())

    def committed(self, partition: int = 0, topic: str = SUBMISSIONS) -> int | None:
        return self.broker.committed.get((GROUP, Partition(topic, partition)))

    def topic(self, name: str) -> list[MemoryRecord]:
        return self.broker.records(name)

    def status(self, sub: Submission) -> StatusRecord:
        return StatusRecord.from_json(self.store.objects[("intake-status", status_key(sub.submission_id))].data)

    def has_status(self, sub: Submission) -> bool:
        return ("intake-status", status_key(sub.submission_id)) in self.store.objects


async def rig(**options: Any) -> Rig:
    r = Rig(**options)
    await r.start()
    return r


def _errors(records: list[MemoryRecord]) -> list[bytes]:
    return [dict(r.headers)["intake.error"] for r in records]


async def test_writes_then_commits() -> None:
    r = await rig()
    subs = [_sub(1), _sub(2), _sub(7)]
    r.submit(*subs)
    assert await r.poll() == 3
    assert r.committed() == 3
    ok = r.status(subs[0])
    assert ok.state == "eligible" and ok.objects["card"] == photo_key(subs[0].submission_id, "card")
    assert r.store.objects[("intake-ktp", photo_key(subs[0].submission_id, "frame"))].data == b"frame"
    bad = r.status(subs[2])
    assert (bad.state, bad.reason, bad.measured, bad.threshold) == ("rejected", "blurry", 10.0, 60.0)
    assert ("intake-ktp", photo_key(subs[2].submission_id, "frame")) not in r.store.objects
    assert len(r.topic(RESULTS)) == 3
    # The status topic gets each stored status, keyed by submission id, the same bytes as the object.
    statuses = {rec.key: rec.value for rec in r.topic("intake.status.v1")}
    for sub in subs:
        stored = r.store.objects[("intake-status", status_key(sub.submission_id))].data
        assert statuses[sub.submission_id.encode()] == stored
    assert await r.poll() == 0  # nothing is redelivered


async def test_redelivery_is_idempotent() -> None:
    """A member that crashed before committing: the next one redelivers everything, and rewrites the same keys."""
    r = await rig()
    r.submit(_sub(1), _sub(2))
    assert await r.poll() == 2
    r.broker.committed.clear()  # as if the commit never happened
    keys_once = dict(r.store.objects)
    successor = r.new_consumer()
    assert await r.poll(r.new_worker(successor), successor) == 2
    assert set(r.store.objects) == set(keys_once)
    assert len(r.store.objects) == 12  # 2 x (applicant marker, card, frame, registration, status, claim)
    assert r.committed() == 2


async def test_storage_outage_commits_nothing_and_redelivers_after_the_pause() -> None:
    r = await rig(attempts=3)
    r.submit(_sub(1), _sub(2))
    r.store.fail_next = 10_000
    assert await r.poll() == 2
    assert r.committed() is None
    assert Partition(SUBMISSIONS, 0) in r.consumer.paused()  # its pause timer resumes it
    assert await r.poll() == 0  # nothing while paused
    r.store.fail_next = 0
    r.consumer.resume(Partition(SUBMISSIONS, 0))  # what the timer does when the backoff has passed
    assert await r.poll() == 2  # redelivered from the first record
    assert r.committed() == 2 and r.status(_sub(1)).state == "eligible"


class Watched(MemoryConsumer):
    """Sets ``resumed``/``committed_now`` when the worker resumes a partition or commits."""

    def __init__(self, broker: MemoryBroker, group: str, topics: list[str]) -> None:
        super().__init__(broker, group, topics)
        self.resumed, self.committed_now = asyncio.Event(), asyncio.Event()

    def resume(self, *partitions: Partition) -> None:
        super().resume(*partitions)
        self.resumed.set()

    async def commit(self, offsets: Any = None) -> None:
        await super().commit(offsets)
        self.committed_now.set()


async def test_the_pause_timer_resumes_the_partition() -> None:
    r = await rig(attempts=1)
    consumer = Watched(r.broker, GROUP, [SUBMISSIONS])
    worker = r.new_worker(consumer)
    r.submit(_sub(1))
    r.store.fail_next = 1
    assert await r.poll(worker, consumer) == 1
    tp = Partition(SUBMISSIONS, 0)
    assert tp in consumer.paused()
    await asyncio.wait_for(consumer.resumed.wait(), 30)  # the timer (the retry cap); nothing else resumes it
    assert tp not in consumer.paused()
    assert await r.poll(worker, consumer) == 1 and r.committed() == 1


async def test_transient_failure_recovers_within_budget() -> None:
    r = await rig(attempts=4)
    r.submit(_sub(1))
    r.store.fail_next = 2
    assert await r.poll() == 1
    assert r.committed() == 1 and r.consumer.paused() == set()
    assert r.status(_sub(1)).state == "eligible"


async def test_kafka_down_for_every_record_commits_nothing_in_any_partition() -> None:
    r = await rig(attempts=1)
    r.submit(_sub(1), partition=0)
    r.submit(_sub(2), partition=1)
    r.sink.down = True  # results cannot be published: transient for every record
    assert await r.poll() == 2
    assert (r.committed(0), r.committed(1)) == (None, None)
    assert r.consumer.paused() == {Partition(SUBMISSIONS, 0), Partition(SUBMISSIONS, 1)}
    assert [await r.consumer.position(Partition(SUBMISSIONS, p)) for p in (0, 1)] == [0, 0]  # sought back


async def test_a_failure_holds_back_only_the_later_records_of_its_partition() -> None:
    r = await rig(attempts=1)
    r.submit(_sub(1), _sub(5), _sub(2))  # -5 fails on its own; no retry topic: it waits in place
    assert await r.poll() == 3
    assert r.committed() == 1  # the finished prefix
    assert await r.consumer.position(Partition(SUBMISSIONS, 0)) == 1  # redelivered from the failed record
    assert r.has_status(_sub(2))  # another key went on (and its rewrite on redelivery is idempotent)


async def test_garbage_and_bugs_go_to_dead_letter_and_do_not_block() -> None:
    r = await rig()
    r.broker.append(SUBMISSIONS, b"k", b"not an envelope", partition=0)
    r.submit(_sub(9), _sub(1))
    assert await r.poll() == 3
    assert r.committed() == 3
    dlq = r.topic(DLQ)
    assert _errors(dlq) == [b"envelope_invalid", b"bug:RuntimeError"]
    assert dlq[0].value == b"not an envelope"  # the original value travels with the error
    assert dict(dlq[1].headers)["intake.source.offset"] == b"1"
    assert r.has_status(_sub(1))


async def test_one_registration_per_nik_per_wave() -> None:
    r = await rig()
    first, second, other = _sub(1, applicant=5), _sub(2, applicant=5), _sub(3)
    r.submit(first, second, other)
    assert await r.poll() == 3
    assert r.status(first).state == "eligible"
    dup = r.status(second)
    assert (dup.state, dup.reason) == ("rejected", "duplicate_registration")
    assert dup.facts["first_submission_id"] == first.submission_id
    assert ("intake-ktp", photo_key(second.submission_id, "card")) not in r.store.objects
    assert r.status(other).state == "eligible"
    # Redelivery of both: the owner stays eligible, the duplicate stays a duplicate.
    r.consumer.seek(Partition(SUBMISSIONS, 0), 0)
    assert await r.poll() == 3
    assert r.status(first).state == "eligible"
    assert r.status(second).reason == "duplicate_registration"


async def test_rejected_photo_claims_no_place() -> None:
    r = await rig()
    blurry, retry = _sub(7, applicant=8), _sub(8, applicant=8)  # _accept rejects photos ending in -7
    r.submit(blurry, retry)
    assert await r.poll() == 2
    assert r.status(blurry).reason == "blurry"
    assert r.status(retry).state == "eligible"


async def test_registry_hit_is_rejected_with_its_reason() -> None:
    listed, free = _sub(1), _sub(2)
    r = await rig(screener=ListedScreener({listed.nik_hash}, "registry_tni"))
    r.submit(listed, free)
    assert await r.poll() == 2
    hit = r.status(listed)
    assert (hit.state, hit.reason) == ("rejected", "registry_tni")
    assert not [k for b, k in r.store.objects if k.startswith("claims/") and listed.nik_hash in k]
    assert r.status(free).state == "eligible"
    assert b'"reason": "registry_tni"' in b"".join(rec.value or b"" for rec in r.topic(RESULTS))


class HangingCommit(MemoryConsumer):
    async def commit(self, offsets: Any = None) -> None:
        await asyncio.Event().wait()


async def test_a_commit_that_never_returns_does_not_wedge_the_worker() -> None:
    """While the coordinator is unreachable aiokafka's commit can wait indefinitely; a rebalance then waits for
    the batch. The bounded commit breaks that cycle: the batch ends uncommitted, a rebalance goes through, and the
    next owner redelivers the records."""
    r = await rig(commit_timeout_s=0.2)
    r.submit(_sub(1))
    hanging = HangingCommit(r.broker, GROUP, [SUBMISSIONS])
    worker = r.new_worker(hanging)
    async with asyncio.timeout(30):
        assert await r.poll(worker, hanging) == 1
        await worker.on_partitions_revoked({Partition(SUBMISSIONS, 0)})
    assert r.committed() is None and r.status(_sub(1)).state == "eligible"
    successor = r.new_consumer()
    assert await r.poll(r.new_worker(successor), successor) == 1
    assert r.committed() == 1


async def test_a_record_failing_on_its_own_is_parked_on_the_retry_topic() -> None:
    r = await rig(attempts=2, retry_topic=True)
    r.submit(_sub(1), _sub(5), _sub(2))
    assert await r.poll() == 3
    assert r.committed() == 3  # the partition is not held by the one bad record
    (parked,) = r.topic(RETRY)
    headers = dict(parked.headers)
    assert headers["intake.attempt"] == b"1"
    assert headers["intake.error"] == b"StorageUnavailable"
    assert (headers["intake.source.topic"], headers["intake.source.offset"]) == (SUBMISSIONS.encode(), b"1")
    assert float(headers["intake.not_before"]) == r.clock.now + 5.0  # the first delay
    assert parked.value == encode(_sub(5))
    assert r.topic(DLQ) == []


async def test_a_parked_record_waits_until_it_is_due_then_is_processed() -> None:
    r = await rig(retry_topic=True)
    due = r.clock.now + 60
    r.broker.append(RETRY, b"k", encode(_sub(1)), [("intake.not_before", f"{due}".encode())], partition=0)
    assert await r.poll() == 1
    assert r.committed(topic=RETRY) is None and not r.has_status(_sub(1))
    assert Partition(RETRY, 0) in r.consumer.paused()
    r.clock.now = due  # the pause timer fires then
    r.consumer.resume(Partition(RETRY, 0))
    assert await r.poll() == 1
    assert r.committed(topic=RETRY) == 1 and r.status(_sub(1)).state == "eligible"


async def test_a_parked_record_that_fails_again_goes_back_with_the_next_attempt_and_its_first_source() -> None:
    r = await rig(attempts=1, retry_topic=True)
    source = [("intake.source.topic", SUBMISSIONS.encode()), ("intake.source.offset", b"41")]
    for n in (5, 6):
        parked = [("intake.attempt", b"1"), ("intake.not_before", b"0"), *source]
        r.broker.append(RETRY, b"k%d" % n, encode(_sub(n)), parked, partition=0)
    assert await r.poll() == 2
    (again,) = [rec for rec in r.topic(RETRY) if dict(rec.headers)["intake.attempt"] == b"2"]
    headers = dict(again.headers)
    assert headers["intake.attempt"] == b"2" and headers["intake.source.offset"] == b"41"
    assert float(headers["intake.not_before"]) == r.clock.now + 10.0  # the delay doubles
    assert r.committed(topic=RETRY) == 2


async def test_attempts_spent_go_to_the_dead_letter_topic() -> None:
    r = await rig(attempts=2, retry_topic=True)
    r.broker.append(RETRY, b"k", encode(_sub(5)), [("intake.attempt", b"3"), ("intake.not_before", b"0")], partition=0)
    r.broker.append(RETRY, b"j", encode(_sub(6)), [("intake.attempt", b"1"), ("intake.not_before", b"0")], partition=0)
    assert await r.poll() == 2
    assert r.committed(topic=RETRY) == 2
    assert _errors(r.topic(DLQ)) == [b"retries_exhausted:StorageUnavailable"]
    assert r.topic(DLQ)[0].value == encode(_sub(5))
    assert r.status(_sub(6)).state == "eligible"


async def test_a_systemic_outage_parks_nothing() -> None:
    r = await rig(retry_topic=True)
    r.submit(_sub(1), _sub(2))
    r.store.fail_next = 10_000  # storage is down for everyone
    assert await r.poll() == 2
    assert r.topic(RETRY) == [] and r.topic(DLQ) == []
    assert r.committed() is None
    assert await r.consumer.position(Partition(SUBMISSIONS, 0)) == 0


async def test_run_consumes_until_stopped_and_commits_what_finished() -> None:
    r = await rig()
    consumer = Watched(r.broker, GROUP, [SUBMISSIONS, RETRY])
    r.submit(_sub(1), _sub(2))
    stop = asyncio.Event()
    task = asyncio.create_task(r.new_worker(consumer).run(stop))
    async with asyncio.timeout(30):
        while r.committed() != 2:
            consumer.committed_now.clear()
            await consumer.committed_now.wait()
    stop.set()
    await asyncio.wait_for(task, 30)
    assert r.status(_sub(1)).state == "eligible" and r.status(_sub(2)).state == "eligible"
