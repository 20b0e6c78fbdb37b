"""With the broker stopped the API answers 503 with a code and Retry-After, never 202; it recovers after.

Runs last (file name): it stops and restarts the shared local broker.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.corpus.ktp import SceneSpec, encode, scene
from tests.integration.conftest import stack, wait_until
from tests.support import make_registration, multipart

pytestmark = pytest.mark.integration

PHOTO = encode(scene(SceneSpec(seed=5)))


async def test_broker_down_gives_503_never_202(api: TestClient[Any, Any]) -> None:
    stack("stop-kafka")
    try:
        answers = []
        for _ in range(3):
            started = time.monotonic()
            resp = await api.post("/v1/registrations", data=multipart(make_registration(), PHOTO))
            elapsed = time.monotonic() - started
            body = await resp.json()
            answers.append(resp.status)
            assert resp.status == 503, body
            assert body["error"]["code"] == "queue_unavailable"
            assert int(resp.headers["Retry-After"]) > 0
            # Bounded by the produce timeout: the client is answered, never left hanging.
            assert elapsed < 30

        async def not_ready() -> bool:
            return (await api.get("/readyz")).status == 503

        await wait_until(not_ready, 30, "readiness to turn false")
    finally:
        stack("start-kafka")

    async def accepted_again() -> bool:
        resp = await api.post("/v1/registrations", data=multipart(make_registration(), PHOTO))
        return resp.status == 202

    await wait_until(accepted_again, 90, "the API to accept again after the broker restarted")
