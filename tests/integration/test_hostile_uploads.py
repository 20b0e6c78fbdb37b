"""Every hostile file kind of the photo corpus, sent through the API to the real stack.

What the edge can tell from the header is refused there with a coded 4xx and never queued; the rest is queued
and judged by the worker's full gate, which stores nothing for a rejected photo. The pool workers' peak memory
(VmHWM) stays far below what any of the bombs would take to decode.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestClient

from intake.settings import Settings
from intake.status import photo_prefix
from intake.storage import MinioStore
from processors.photo.precheck import MAX_JPEG_SEGMENTS
from tests.conftest import ON_EVERY_S3_BACKEND
from tests.corpus import ktp
from tests.integration.conftest import Consumers, wait_until
from tests.support import make_registration, multipart

pytestmark = [pytest.mark.integration, ON_EVERY_S3_BACKEND]

WORKER_PEAK_LIMIT_BYTES = 1024 * 1024 * 1024
"""A pool worker may use up to this at its peak (a 12 MP photo needs ~0.3 GiB); the smallest bomb here would
need 12 GiB to decode."""


def _scene(seed: int, fmt: str = "JPEG", **kw: Any) -> bytes:
    return ktp.encode(ktp.scene(ktp.SceneSpec(seed=seed)), fmt, **kw)


def _padded_bomb() -> bytes:
    """A JPEG bomb whose frame header is hidden behind more segments than the edge walks: only the worker sees it."""
    comments = b"".join(b"\xff\xfe\x00\x04ab" for _ in range(MAX_JPEG_SEGMENTS + 10))
    return b"\xff\xd8" + comments + ktp.jpeg_bomb()[2:]


AT_THE_EDGE: dict[str, tuple[bytes, int, str]] = {
    "empty": (b"", 422, "photo_empty"),
    "noise": (ktp.noise(), 422, "not_an_image"),
    "html-named-jpg": (ktp.HTML, 422, "not_an_image"),
    "svg-named-jpg": (ktp.SVG, 422, "not_an_image"),
    "pdf-named-jpg": (ktp.PDF, 422, "not_an_image"),
    "gif-animated": (ktp.animated("GIF"), 422, "unsupported_format"),
    "bmp": (ktp.encode(np.zeros((600, 800, 3), np.uint8), "BMP"), 422, "unsupported_format"),
    "png-gigapixel": (ktp.png_bomb(), 422, "too_many_pixels"),
    "jpeg-gigapixel": (ktp.jpeg_bomb(), 422, "too_many_pixels"),
    "tiny": (ktp.encode(np.full((300, 500, 3), 200, np.uint8)), 422, "image_too_small"),
}
"""name -> (photo, HTTP status, code): refused before anything is queued."""

IN_THE_WORKER: dict[str, tuple[bytes, str, str | None]] = {
    "truncated-jpeg": (ktp.truncated(_scene(60)), "rejected", "image_corrupt"),
    "jpeg-magic-then-noise": (b"\xff\xd8\xff\xe0" + ktp.noise(5000), "rejected", "image_corrupt"),
    "png-magic-then-noise": (b"\x89PNG\r\n\x1a\n" + ktp.noise(5000), "rejected", "image_corrupt"),
    "png-animated": (ktp.animated("PNG"), "rejected", "animated_image"),
    "webp-animated": (ktp.animated("WEBP"), "rejected", "animated_image"),
    "jpeg-gigapixel-behind-padding": (_padded_bomb(), "rejected", "too_many_pixels"),
    "jpeg-with-zip-appended": (ktp.with_zip(_scene(61)), "eligible", None),
    "cmyk-jpeg": (_scene(62, mode="CMYK"), "eligible", None),
    "png-16-bit": (ktp.png16(ktp.scene(ktp.SceneSpec(seed=63))), "eligible", None),
}
"""name -> (photo, final state, reason): queued, then judged by the worker."""


def _pool_peaks() -> dict[int, int]:
    """VmHWM (peak RSS, bytes) of every live child of this process: the consumers' pool workers."""
    me = str(os.getpid())
    peaks: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[1] != me:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks[int(proc.name)] = int(line.split()[1]) * 1024
        except OSError:
            continue  # exited meanwhile
    return peaks


async def test_hostile_files_through_the_api(
    api: TestClient[Any, Any], consumers: Consumers, minio_store: MinioStore, topics_ready: Settings
) -> None:
    for name, (photo, status, code) in AT_THE_EDGE.items():
        resp = await api.post("/v1/registrations", data=multipart(make_registration(), photo, photo_name="ktp.jpg"))
        body = await resp.json()
        assert (resp.status, body["error"]["code"]) == (status, code), name

    queued: dict[str, dict[str, Any]] = {}
    for name, (photo, _, _) in IN_THE_WORKER.items():
        resp = await api.post("/v1/registrations", data=multipart(make_registration(), photo, photo_name="ktp.jpg"))
        assert resp.status == 202, (name, await resp.text())
        queued[name] = await resp.json()
    consumers.start()

    finals: dict[str, dict[str, Any]] = {}

    async def all_final() -> bool:
        for name, accepted in queued.items():
            if name in finals:
                continue
            headers = {"Authorization": f"Bearer {accepted['status_token']}"}
            body = await (await api.get(accepted["status_url"], headers=headers)).json()
            if body["state"] != "received":
                finals[name] = body
        return len(finals) == len(queued)

    await wait_until(all_final, 120, "every queued hostile file to be judged")
    peaks = _pool_peaks()

    for name, (_, state, reason) in IN_THE_WORKER.items():
        body = finals[name]
        assert body["state"] == state, (name, body)
        stored = await minio_store.list_keys(topics_ready.s3.bucket_photos, photo_prefix(body["submission_id"]))
        if reason is None:
            assert body["reason"] is None, (name, body)
            assert len(stored) == 2, name
            for key in stored:
                got = await minio_store.get(topics_ready.s3.bucket_photos, key)
                assert got is not None and b"PK\x03\x04" not in got.data and got.data.endswith(b"\xff\xd9"), name
        else:
            assert body["reason"]["code"] == reason, (name, body)
            assert stored == [], name  # nothing of a rejected photo reaches MinIO

    assert peaks, "no pool worker found"
    assert max(peaks.values()) < WORKER_PEAK_LIMIT_BYTES, {pid: f"{b / 2**20:.0f} MiB" for pid, b in peaks.items()}
