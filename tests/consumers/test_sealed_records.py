"""Sealed submissions records in the consumer: opened with the applicant's data key before the pipeline, and, once
an erasure destroyed that key, dead-lettered as ``erased`` (never a crash, never a retry loop)."""

from __future__ import annotations

from dataclasses import replace

from consumers.dlq import DeadLetter
from consumers.erasure import erase_applicant
from consumers.photo_task import PhotoVerdict
from intake.crypto import new_kek_entry
from intake.envelope import Submission, encode_sealed
from intake.registration_record import RegistrationRecord, registration_key
from intake.status import status_key
from tests.consumers.test_worker import DLQ, SUBMISSIONS, Rig, _accept, _errors, _sub, rig
from tests.support import FakeSink, key_store, unit_settings


async def _submit_sealed(r: Rig, *subs: Submission, partition: int = 0) -> None:
    """Append ``subs`` as the API does: sealed under each applicant's data key (created on first use)."""
    keys = key_store(r.store)
    for s in subs:
        dek = await keys.get_or_create(s.nik_hash)
        r.broker.append(SUBMISSIONS, s.nik_hash.encode(), encode_sealed(s, dek), partition=partition)


def _with_registration(n: int, applicant: int | None = None) -> Submission:
    sub = _sub(n, applicant)
    return replace(sub, registration={**sub.registration, "full_name": f"Siti Nurhaliza {n}"})


async def test_a_sealed_record_is_opened_and_processed() -> None:
    r = await rig()
    sub = _with_registration(1)
    await _submit_sealed(r, sub)
    value = r.topic(SUBMISSIONS)[0].value or b""
    assert b"Siti Nurhaliza" not in value and sub.photo not in value  # sealed in Kafka
    assert await r.poll() == 1
    assert r.committed() == 1 and r.status(sub).state == "eligible"
    stored = r.store.objects[("intake-registrations", registration_key(sub.submission_id))]
    assert RegistrationRecord.from_json(stored.data).registration == sub.registration  # decrypted before the steps
    assert not r.topic(DLQ)


async def test_after_erasure_every_sealed_copy_is_dead_lettered_erased() -> None:
    r = await rig()
    first, queued, other = _with_registration(1, applicant=4), _with_registration(2, applicant=4), _sub(3)
    await _submit_sealed(r, first)
    assert await r.poll() == 1
    old_key = await key_store(r.store).require(first.nik_hash)
    report = await erase_applicant(unit_settings(), r.store, first.nik_hash, FakeSink())
    assert report.key_destroyed and report.submissions == [first.submission_id]
    assert not [k for b, k in r.store.objects if b == "intake-keys"]  # the wrapped key itself is gone
    # A redelivered copy of the first record, one still queued at the erasure (or sealed by an API process that
    # had cached the key), and another applicant's record.
    r.broker.append(SUBMISSIONS, first.nik_hash.encode(), r.topic(SUBMISSIONS)[0].value, partition=0)
    r.broker.append(SUBMISSIONS, queued.nik_hash.encode(), encode_sealed(queued, old_key), partition=0)
    await _submit_sealed(r, other)
    assert await r.poll() == 3
    assert r.committed() == 4  # nothing blocks the partition, nothing is retried
    assert _errors(r.topic(DLQ)) == [b"erased", b"erased"]
    assert r.status(other).state == "eligible"
    # Their status is the erasure's tombstone, with no data: never `received` for ever.
    assert (r.status(first).state, r.status(queued).state) == ("erased", "erased")
    assert r.status(queued).facts == {} and r.status(queued).objects == {}
    assert [k for b, k in r.store.objects if b == "intake-registrations"] == [registration_key(other.submission_id)]
    # A replay of the dead letters is dead-lettered again, as erased: the data can never be read.
    letters = [DeadLetter(0, rec.offset, "erased", "?", rec.key or b"", rec.value or b"") for rec in r.topic(DLQ)]
    for letter in letters:
        r.broker.append(SUBMISSIONS, letter.key, letter.value, partition=0)
    assert await r.poll() == 2
    assert _errors(r.topic(DLQ)) == [b"erased"] * 4


async def test_a_new_upload_after_erasure_gets_a_fresh_key() -> None:
    r = await rig()
    before = _with_registration(1, applicant=6)
    await _submit_sealed(r, before)
    await r.poll()
    await erase_applicant(unit_settings(), r.store, before.nik_hash, FakeSink())
    after = _with_registration(2, applicant=6)
    await _submit_sealed(r, after)
    assert await r.poll() == 1
    assert r.status(after).state == "eligible" and not r.topic(DLQ)


async def test_a_tampered_sealed_record_is_dead_lettered_invalid() -> None:
    r = await rig()
    sub = _with_registration(1)
    await _submit_sealed(r, sub)
    value = bytearray(r.broker.records(SUBMISSIONS)[0].value or b"")
    value[-1] ^= 1  # one bit of the sealed photo
    r.broker.append(SUBMISSIONS, sub.nik_hash.encode(), bytes(value), partition=0)
    assert await r.poll() == 2
    assert _errors(r.topic(DLQ)) == [b"envelope_invalid"]
    assert r.committed() == 2


async def test_a_record_sealed_under_an_unknown_kek_is_dead_lettered_invalid() -> None:
    """The key store holds a key wrapped by a KEK this consumer does not list (a misconfiguration): dead-lettered
    with the error, to be replayed once the KEK is listed, never a crash."""
    r = await rig()
    sub = _with_registration(1)
    foreign = replace(unit_settings(), security=replace(unit_settings().security, data_keks=new_kek_entry("zz")))
    dek = await key_store(r.store, foreign).get_or_create(sub.nik_hash)
    r.broker.append(SUBMISSIONS, sub.nik_hash.encode(), encode_sealed(sub, dek), partition=0)
    assert await r.poll() == 1
    assert _errors(r.topic(DLQ)) == [b"envelope_invalid"]


async def test_a_key_store_outage_is_retried_not_dead_lettered() -> None:
    r = await rig(attempts=3)
    sub = _with_registration(1)
    await _submit_sealed(r, sub)
    r.store.fail_next = 1  # the key read fails once
    assert await r.poll() == 1
    assert r.status(sub).state == "eligible" and not r.topic(DLQ)


async def test_an_erasure_landing_while_a_record_is_processed_leaves_nothing_behind() -> None:
    """``intake erase`` runs after the consumer opened the record and before it wrote its results: the erasure
    finds nothing yet, so the consumer sees the key gone when it is done and erases what it wrote itself (images,
    registration record, claim, index), leaves the tombstone, publishes the ``erased`` registration record after
    its own, and dead-letters the record ``erased``."""
    sub, other = _with_registration(1, applicant=5), _with_registration(2)
    holder: list[Rig] = []

    async def erased_meanwhile(photo: bytes) -> PhotoVerdict:
        r = holder[0]
        if photo == sub.photo:
            await erase_applicant(unit_settings(), r.store, sub.nik_hash, r.sink)
        return await _accept(photo)

    r = await rig(photos=erased_meanwhile)
    holder.append(r)
    await _submit_sealed(r, sub, other)
    assert await r.poll() == 2
    assert _errors(r.topic(DLQ)) == [b"erased"] and r.committed() == 2
    assert r.status(sub).state == "erased" and r.status(other).state == "eligible"
    left = [(b, k) for b, k in r.store.objects if sub.submission_id in k or sub.nik_hash in k]
    assert left == [("intake-status", status_key(sub.submission_id))]  # the tombstone only
    published = [RegistrationRecord.from_json(rec.value or b"") for rec in r.topic("intake.registrations.v1")]
    assert [p.state for p in published if p.submission_id == sub.submission_id][-1] == "erased"
    assert [p.state for p in published if p.submission_id == other.submission_id] == ["eligible"]


async def test_a_record_queued_at_the_erasure_stays_erased_after_the_applicant_uploads_again() -> None:
    """Erased while a submission is still queued, the applicant uploads again (a fresh key) before the consumer
    reaches the old record: the old record names the destroyed key, so it is dead-lettered ``erased`` (not
    ``envelope_invalid``) and its status is the tombstone (not ``received`` for ever); the new one is processed."""
    r = await rig()
    queued, again = _with_registration(1, applicant=9), _with_registration(2, applicant=9)
    await _submit_sealed(r, queued)
    report = await erase_applicant(unit_settings(), r.store, queued.nik_hash, FakeSink())
    assert report.key_destroyed and report.submissions == []  # not processed yet: nothing indexed
    await _submit_sealed(r, again)  # a fresh key
    assert await r.poll() == 2
    assert _errors(r.topic(DLQ)) == [b"erased"]
    assert (r.status(queued).state, r.status(again).state) == ("erased", "eligible")
    assert [k for b, k in r.store.objects if b == "intake-registrations"] == [registration_key(again.submission_id)]


async def test_a_record_naming_another_key_never_erases_a_processed_submission() -> None:
    """The clear header is not authenticated until a key opens the record: a record that names the applicant's
    submission and a key id that is not their key's is dead-lettered, and the processed submission is untouched."""
    r = await rig()
    sub = _with_registration(1)
    await _submit_sealed(r, sub)
    assert await r.poll() == 1
    forged = encode_sealed(sub, b"\7" * 32)  # sealed under some other key
    r.broker.append(SUBMISSIONS, sub.nik_hash.encode(), forged, partition=0)
    assert await r.poll() == 1
    assert _errors(r.topic(DLQ)) == [b"erased"]
    assert r.status(sub).state == "eligible"
    assert ("intake-registrations", registration_key(sub.submission_id)) in r.store.objects
