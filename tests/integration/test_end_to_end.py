"""The whole path on the real parts: API -> Kafka (acks=all) -> consumer -> MinIO -> status."""

from __future__ import annotations

import io
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from PIL import Image

from intake.settings import Settings
from intake.status import photo_key, photo_prefix
from intake.storage import MinioStore
from tests.conftest import ON_EVERY_S3_BACKEND
from tests.corpus.ktp import SceneSpec, encode, scene
from tests.integration.conftest import Consumers, read_status, wait_until
from tests.support import make_registration, multipart

pytestmark = [pytest.mark.integration, ON_EVERY_S3_BACKEND]

GOOD = encode(scene(SceneSpec(seed=3)))
BLURRY = encode(scene(SceneSpec(seed=4, blur_sigma=9.0)))


async def _submit(api: TestClient[Any, Any], photo: bytes, **headers: str) -> dict[str, Any]:
    resp = await api.post("/v1/registrations", data=multipart(make_registration(), photo), headers=headers)
    assert resp.status == 202, await resp.text()
    return dict(await resp.json())


async def _final_status(api: TestClient[Any, Any], accepted: dict[str, Any], timeout_s: float = 90) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {accepted['status_token']}"}
    seen: dict[str, Any] = {}

    async def done() -> bool:
        resp = await api.get(accepted["status_url"], headers=auth)
        assert resp.status == 200
        seen.update(await resp.json())
        return bool(seen["state"] != "received")

    await wait_until(done, timeout_s, "the submission to be processed")
    return seen


async def test_upload_becomes_a_normalised_object(
    api: TestClient[Any, Any], consumers: Consumers, minio_store: MinioStore, topics_ready: Settings
) -> None:
    good = await _submit(api, GOOD)
    blurry = await _submit(api, BLURRY)
    consumers.start()
    status = await _final_status(api, good)
    assert status["state"] == "eligible", status
    assert status["objects"]["card"] == photo_key(good["submission_id"], "card")
    card = await minio_store.get(topics_ready.s3.bucket_photos, status["objects"]["card"])
    assert card is not None and card.content_type == "image/jpeg"
    img = Image.open(io.BytesIO(card.data))
    assert img.format == "JPEG"
    assert img.size == topics_ready.photo.card_output
    assert not img.getexif() and "icc_profile" not in img.info
    rejected = await _final_status(api, blurry)
    assert rejected["state"] == "rejected"
    assert rejected["reason"]["code"] == "blurry"
    assert rejected["reason"]["measured"] < rejected["reason"]["threshold"]


async def test_photo_at_the_limit_goes_end_to_end(
    api: TestClient[Any, Any], consumers: Consumers, topics_ready: Settings
) -> None:
    limit = topics_ready.limits.max_photo_bytes
    at_limit = GOOD + b"\x00" * (limit - len(GOOD))  # trailing bytes: dropped by normalisation
    assert len(at_limit) == limit
    accepted = await _submit(api, at_limit)
    over = await api.post("/v1/registrations", data=multipart(make_registration(), at_limit + b"\x00"))
    assert over.status == 413
    assert (await over.json())["error"]["code"] == "photo_too_large"
    consumers.start()
    status = await _final_status(api, accepted)
    assert status["state"] == "eligible", status


async def test_consumer_crash_mid_stream_loses_and_duplicates_nothing(
    api: TestClient[Any, Any], consumers: Consumers, minio_store: MinioStore, topics_ready: Settings
) -> None:
    n = 24
    accepted = [await _submit(api, GOOD) for _ in range(n)]
    first = consumers.start()

    async def some_done() -> bool:
        return await read_status(minio_store, topics_ready, accepted[0]["submission_id"]) is not None or any(
            [await read_status(minio_store, topics_ready, a["submission_id"]) is not None for a in accepted[:6]]
        )

    await wait_until(some_done, 90, "the first results")
    await consumers.crash(first)
    done_at_crash = sum(
        [await read_status(minio_store, topics_ready, a["submission_id"]) is not None for a in accepted]
    )
    assert done_at_crash < n, "the crash came after the stream ended; nothing was tested"
    consumers.start()

    async def all_done() -> bool:
        for a in accepted:
            if await read_status(minio_store, topics_ready, a["submission_id"]) is None:
                return False
        return True

    await wait_until(all_done, 180, "every submission to be processed after the crash")
    for a in accepted:
        sid = a["submission_id"]
        record = await read_status(minio_store, topics_ready, sid)
        assert record is not None and record.state == "eligible"
        keys = await minio_store.list_keys(topics_ready.s3.bucket_photos, photo_prefix(sid))
        assert keys == [photo_key(sid, "card"), photo_key(sid, "frame")]
