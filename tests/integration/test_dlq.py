"""A record that is not an envelope goes to the dead-letter topic, never blocks its partition, and can be
listed and replayed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from consumers.dlq import read_dead_letters, replay
from intake.kafka import KeptRecordSink, running_sink
from intake.settings import Settings
from intake.topics import topic_names
from tests.corpus.ktp import SceneSpec, encode, scene
from tests.integration.conftest import Consumers, wait_until
from tests.support import make_registration, multipart

pytestmark = pytest.mark.integration


async def test_garbage_is_dead_lettered_and_replayable(
    topics_ready: Settings, api: TestClient[Any, Any], consumers: Consumers
) -> None:
    async with running_sink(replace(topics_ready, http=replace(topics_ready.http, produce_timeout_s=10.0))) as sink:
        await wait_until(lambda: _started(sink), 30, "the producer")
        garbage = b"<html>not an envelope</html>"
        await sink.send(topic_names(topics_ready).submissions, b"k-garbage", garbage)
        # A good submission behind it on any partition is still processed.
        resp = await api.post("/v1/registrations", data=multipart(make_registration(), encode(scene(SceneSpec()))))
        good = await resp.json()
        assert resp.status == 202, good
        consumers.start()

        async def good_done() -> bool:
            r = await api.get(good["status_url"], headers={"Authorization": f"Bearer {good['status_token']}"})
            body = await r.json()
            assert r.status == 200, body
            return bool(body["state"] != "received")

        await wait_until(good_done, 90, "the good submission")

        async def dead_lettered() -> bool:
            return any([d.value == garbage async for d in read_dead_letters(topics_ready)])

        await wait_until(dead_lettered, 60, "the garbage record in the dead-letter topic")
        letters = [d async for d in read_dead_letters(topics_ready) if d.value == garbage]
        assert letters[0].error == "envelope_invalid"
        assert letters[0].source.startswith(topic_names(topics_ready).submissions), letters[0].source
        assert await replay(topics_ready, sink, letters[:1]) == 1

        async def twice() -> bool:
            return len([d async for d in read_dead_letters(topics_ready) if d.value == garbage]) >= 2

        await wait_until(twice, 60, "the replayed record to be dead-lettered again")


async def _started(sink: KeptRecordSink) -> bool:
    return sink.ready()
