"""Erasure on the in-memory store: every trace of the applicant goes; other applicants stay."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.erasure import erase_applicant
from intake.kafka import Delivery, QueueUnavailable
from intake.status import StatusRecord, status_key
from intake.storage import MemoryStore
from tests.consumers.test_worker import _sub, rig
from tests.support import FakeSink, unit_settings


async def test_erases_every_submission_of_the_applicant() -> None:
    r = await rig()
    store = r.store
    mine = [_sub(1, applicant=7), _sub(2, applicant=7), _sub(7, applicant=7)]  # eligible, duplicate, blurry
    other = _sub(3)
    r.submit(*mine, other)
    assert await r.poll() == 4
    published = FakeSink()
    report = await erase_applicant(unit_settings(), store, mine[0].nik_hash, published)
    assert sorted(report.submissions) == sorted(s.submission_id for s in mine)
    assert report.images_deleted == 2 and report.claims_deleted == 1
    assert not [k for _, k in store.objects if mine[0].nik_hash in k]  # no marker, no claim
    left = sorted(k for _, k in store.objects if any(s.submission_id in k for s in mine))
    assert left == sorted(status_key(s.submission_id) for s in mine)  # only the tombstones
    for s in mine:
        assert StatusRecord.from_json(store.objects[("intake-status", status_key(s.submission_id))].data).state == (
            "erased"
        )
    assert _state(store, other.submission_id) == "eligible"
    # Each tombstone reaches the status topic, so the APIs' in-memory views forget the old status too.
    tombstones = {
        k.decode(): StatusRecord.from_json(v).state for t, k, v, _ in published.records if t == "intake.status.v1"
    }
    assert tombstones == {s.submission_id: "erased" for s in mine}
    # ... and an `erased` registration record replaces the submission's records on the registrations topic.
    erased = {k.decode() for t, k, _, _ in published.records if t == "intake.registrations.v1"}
    assert erased == {s.submission_id for s in mine}
    assert {t for t, *_ in published.records} == {"intake.status.v1", "intake.registrations.v1"}
    again = await erase_applicant(unit_settings(), store, mine[0].nik_hash, FakeSink())
    assert again.submissions == []


def _state(store: MemoryStore, sid: str) -> str:
    return StatusRecord.from_json(store.objects[("intake-status", status_key(sid))].data).state


class StatusTopicDownOnce(FakeSink):
    """Kafka refuses the first status tombstone (after the tombstone was stored), then answers."""

    refused = False

    async def send(self, topic: str, key: bytes, value: bytes, headers: Any = ()) -> Delivery:
        if topic == "intake.status.v1" and not self.refused:
            self.refused = True
            raise QueueUnavailable("fake broker down")
        return await super().send(topic, key, value, headers)


async def test_an_erasure_that_failed_midway_is_finished_by_running_it_again() -> None:
    """The first run stores a tombstone and then Kafka fails; the re-run still finds the applicant's claim (its
    wave was read before any status became a tombstone) and leaves nothing of the applicant."""
    r = await rig()
    mine = _sub(1, applicant=7)
    r.submit(mine)
    assert await r.poll() == 1
    with pytest.raises(QueueUnavailable):
        await erase_applicant(unit_settings(), r.store, mine.nik_hash, StatusTopicDownOnce())
    again = await erase_applicant(unit_settings(), r.store, mine.nik_hash, FakeSink())
    assert again.submissions == [mine.submission_id]
    assert not [k for _, k in r.store.objects if mine.nik_hash in k]  # no claim, no index entry
    assert _state(r.store, mine.submission_id) == "erased"
