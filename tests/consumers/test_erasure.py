"""Erasure on the in-memory store: every trace of the applicant goes; other applicants stay."""

from __future__ import annotations

from consumers.erasure import erase_applicant
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
