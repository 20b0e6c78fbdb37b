"""Personal data sealed in Kafka, and erasure that reaches Kafka (crypto-shredding), on the real stack.

Two applicants upload through the real API; the consumers process them. Then one is erased with ``intake erase``,
and a copy of their submissions record is appended again (as ``intake dlq replay`` does). The test reads Kafka
twice, each with Kafka's own tools rather than ours: every topic of the session dumped with Kafka's console
consumer (``stack.sh kafka-libs``), and the raw log segment files in the stack's Kafka data folder (records are not
compressed, so plaintext would show there). Neither applicant's NIK, name, email or phone appears in any topic but
the programme's hand-off topic (``registrations.v1``, plaintext by design: the control that the scan finds what
is there), nor in any object but their own registration record; the erased applicant's key and registration
record are gone, their records cannot be opened, and the replayed copy is dead-lettered ``erased``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import string
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from intake.crypto import KeyDestroyed, key_object
from intake.envelope import Sealed, decode
from intake.kafka import read_topic, running_sink
from intake.registration_record import registration_key
from intake.settings import Settings, to_environ
from intake.storage import MinioStore
from intake.topics import topic_names
from processors.screening import nik_hash_hex
from tests.corpus.ktp import SceneSpec, encode, scene
from tests.integration.conftest import STACK, Consumers, started_api, wait_until
from tests.support import key_store, make_registration, multipart

pytestmark = pytest.mark.integration

PERSONAL = ("nik", "full_name", "email", "phone", "ktp_address")


def _applicant() -> dict[str, Any]:
    """A synthetic applicant whose name, email and phone are their own (so a hit names the applicant)."""
    tag = "".join(random.choice(string.ascii_lowercase) for _ in range(10))
    digits = "".join(random.choice(string.digits) for _ in range(8))
    return {
        **make_registration(),
        "full_name": f"Siti {tag.capitalize()}",
        "email": f"siti.{tag}@example.co.id",
        "phone": f"0812{digits}",
        "ktp_address": f"Jl. {tag.capitalize()} No. 7, Jakarta",
    }


def _needles(reg: dict[str, Any]) -> dict[str, bytes]:
    return {name: str(reg[name]).encode() for name in PERSONAL}


async def _accept(api: TestClient[Any, Any], reg: dict[str, Any], seed: int) -> dict[str, Any]:
    resp = await api.post("/v1/registrations", data=multipart(reg, encode(scene(SceneSpec(seed=seed)))))
    body: dict[str, Any] = await resp.json()
    assert resp.status == 202, body
    return body


async def _state(api: TestClient[Any, Any], accepted: dict[str, Any]) -> str:
    auth = {"Authorization": f"Bearer {accepted['status_token']}"}
    return str((await (await api.get(accepted["status_url"], headers=auth)).json())["state"])


def _cli(settings: Settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **to_environ(settings)}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _console_dump(settings: Settings, topics: list[str]) -> bytes:
    """Every record (keys, values, headers) of ``topics`` from the beginning, as Kafka's console consumer prints
    them. Fails the test when the tool does not run."""
    libs = subprocess.run([str(STACK), "kafka-libs"], check=True, capture_output=True, text=True).stdout.strip()
    pattern = "|".join(t.replace(".", "\\.") for t in topics)
    argv = ["java", "-Xmx256m", "-cp", f"{libs}/*", "org.apache.kafka.tools.consumer.ConsoleConsumer",
            "--bootstrap-server", settings.kafka.bootstrap, "--include", f"({pattern})", "--from-beginning",
            "--timeout-ms", "8000", "--property", "print.key=true", "--property", "print.headers=true"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, timeout=120, check=False)
    if b"Processed a total of" not in done.stderr:
        pytest.fail(f"Kafka's console consumer did not run: {done.stderr.decode(errors='replace')[-1500:]}")
    return done.stdout


def _segments(topics: list[str]) -> dict[str, bytes]:
    """The raw bytes of every log segment of ``topics`` in the local stack's Kafka data folder, by topic."""
    state = os.environ.get("INTAKE_STACK_DIR")
    if not state:
        pytest.fail("INTAKE_STACK_DIR is not set: export the stack's env (deploy/local/stack.sh env)")
    data = Path(state) / "kafka" / "data"
    out: dict[str, bytes] = {}
    for topic in topics:
        folders = sorted(data.glob(f"{topic}-*"))
        if not folders:
            pytest.fail(f"no log folder of {topic} under {data}")
        out[topic] = b"".join(seg.read_bytes() for folder in folders for seg in sorted(folder.glob("*.log")))
    return out


async def _objects(store: MinioStore, bucket: str) -> dict[str, bytes]:
    out = {}
    for key in await store.list_keys(bucket):
        stored = await store.get(bucket, key)
        if stored is not None:
            out[key] = stored.data
    return out


async def test_personal_data_is_sealed_in_kafka_and_erasure_shreds_it(
    api: TestClient[Any, Any], consumers: Consumers, minio_store: MinioStore, topics_ready: Settings
) -> None:
    settings, names, s3 = topics_ready, topic_names(topics_ready), topics_ready.s3
    gone_reg, kept_reg = _applicant(), _applicant()
    gone, kept = await _accept(api, gone_reg, 21), await _accept(api, kept_reg, 22)
    consumers.start()

    async def decided() -> bool:
        return {await _state(api, gone), await _state(api, kept)} == {"eligible"}

    await wait_until(decided, 120, "both submissions to be processed")
    digest = nik_hash_hex(gone_reg["nik"], settings.security.nik_pepper.encode())
    assert await minio_store.get(s3.bucket_keys, key_object(digest)) is not None

    erased = await asyncio.to_thread(_cli, settings, "erase", stdin=gone_reg["nik"] + "\n")
    assert erased.returncode == 0, erased.stderr
    report = json.loads(erased.stdout)
    assert report["key_destroyed"] is True and report["submissions"] == [gone["submission_id"]]
    assert gone_reg["nik"] not in erased.stdout + erased.stderr
    assert await minio_store.get(s3.bucket_keys, key_object(digest)) is None
    assert await minio_store.get(s3.bucket_registrations, registration_key(gone["submission_id"])) is None

    # Every copy of the erased applicant's submission in Kafka is now unreadable ...
    originals = [r async for r in read_topic(settings, names.submissions) if r.key == digest.encode()]
    assert len(originals) == 1 and originals[0].value is not None
    sealed = decode(originals[0].value)
    assert isinstance(sealed, Sealed)
    with pytest.raises(KeyDestroyed):
        await key_store(minio_store, settings).require(digest)
    # ... and a replayed copy is dead-lettered `erased` by the running consumer, which goes on.
    async with running_sink(settings, probe_interval_s=1.0) as sink:

        async def connected() -> bool:
            return sink.ready()

        await wait_until(connected, 30, "the producer to connect")
        await sink.send(names.submissions, digest.encode(), originals[0].value, [("intake.replayed.from", b"0:0")])

    async def dead_lettered() -> bool:
        letters = [r async for r in read_topic(settings, names.dead_letter)]
        return any(dict(r.headers).get("intake.error") == b"erased" and r.key == digest.encode() for r in letters)

    await wait_until(dead_lettered, 90, "the replayed record of the erased applicant to be dead-lettered")
    assert await _state(api, kept) == "eligible" and await _state(api, gone) == "erased"
    listed = await asyncio.to_thread(_cli, settings, "dlq", "list")
    assert listed.returncode == 0 and "erased" in listed.stdout, listed.stderr
    for needle in _needles(gone_reg).values():
        assert needle.decode() not in listed.stdout

    # Kafka's own view: no personal datum of either applicant in any topic but the programme's hand-off topic.
    sealed_topics = [names.submissions, names.retry, names.dead_letter, names.results, names.status, names.audit]
    dump = await asyncio.to_thread(_console_dump, settings, sealed_topics)
    assert gone["submission_id"].encode() in dump and kept["submission_id"].encode() in dump  # the dump has them
    segments = await asyncio.to_thread(_segments, [names.submissions, names.dead_letter, names.registrations])
    for reg in (gone_reg, kept_reg):
        for name, needle in _needles(reg).items():
            assert needle not in dump, f"{name} in a topic dump"
            assert needle not in segments[names.submissions] and needle not in segments[names.dead_letter], name
    # The control: the hand-off topic carries the kept applicant's registration in clear, and the scan sees it.
    assert _needles(kept_reg)["nik"] in segments[names.registrations]
    assert _needles(kept_reg)["nik"] in await asyncio.to_thread(_console_dump, settings, [names.registrations])

    # Objects: the kept applicant's fields only in their own registration record; the erased one's nowhere.
    for bucket in (s3.bucket_photos, s3.bucket_status, s3.bucket_keys, s3.bucket_registrations):
        for key, data in (await _objects(minio_store, bucket)).items():
            for name, needle in _needles(gone_reg).items():
                assert needle not in data and needle.decode() not in key, (bucket, key, name)
            if (bucket, key) != (s3.bucket_registrations, registration_key(kept["submission_id"])):
                for name, needle in _needles(kept_reg).items():
                    assert needle not in data and needle.decode() not in key, (bucket, key, name)


async def test_a_record_queued_at_the_erasure_is_dead_lettered_erased_after_the_applicant_uploads_again(
    topics_ready: Settings, consumers: Consumers, minio_store: MinioStore
) -> None:
    """Erased while their submission waits in the queue, the applicant uploads again before a consumer reaches it
    (the API holds no key in memory, so the new upload gets a fresh key): the queued record names the destroyed key,
    so it is dead-lettered ``erased`` with its status the tombstone, never ``envelope_invalid`` and ``received`` for
    ever; the new upload is processed."""
    security = replace(topics_ready.security, data_key_cache_entries=0)
    settings = replace(topics_ready, security=security)
    api = await started_api(settings)
    try:
        reg = _applicant()
        queued = await _accept(api, reg, 31)
        erased = await asyncio.to_thread(_cli, settings, "erase", stdin=reg["nik"] + "\n")
        assert erased.returncode == 0, erased.stderr
        assert json.loads(erased.stdout)["key_destroyed"] is True
        again = await _accept(api, reg, 32)
        consumers.start()

        async def decided() -> bool:
            return (await _state(api, queued), await _state(api, again)) == ("erased", "eligible")

        await wait_until(decided, 120, "the queued record erased and the new one processed")
        letters = [r async for r in read_topic(settings, topic_names(settings).dead_letter)]
        errors = {
            dict(r.headers).get("intake.error") for r in letters if queued["submission_id"].encode() in (r.value or b"")
        }
        assert errors == {b"erased"}
        kept = await minio_store.get(settings.s3.bucket_registrations, registration_key(again["submission_id"]))
        assert kept is not None and reg["nik"].encode() in kept.data
        gone = await minio_store.get(settings.s3.bucket_registrations, registration_key(queued["submission_id"]))
        assert gone is None
    finally:
        await api.close()
