"""Fault tests on the real parts, under a steady stream of uploads (bounded in time).

(a) kill -9 a consumer mid-batch and start another; (b) stop and restart the Kafka broker; (c) stop the S3 server
for 20 s, then start it; (d) push the front past its bound until it sheds. Each on every S3 server (MinIO,
SeaweedFS). For each: every submission that got 202 ends in the S3 server exactly once with the right content;
during the fault the front answered 503/429 with Retry-After rather than timing out; the consumers caught up
afterwards. The table is printed and kept in ``reports/faults.md``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from intake.settings import Settings, to_environ
from intake.storage import MinioStore
from tests.conftest import ON_EVERY_S3_BACKEND
from tests.integration.conftest import Consumers, outage, started_api
from tests.integration.faults import HEADER, Audit, Stream, audit, expected_cards
from tests.support import client_key

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600), ON_EVERY_S3_BACKEND]

ROOT = Path(__file__).resolve().parents[2]
RESULTS: list[Audit] = []


@pytest.fixture(scope="module")
def cards(topics_ready: Settings) -> list[str]:
    return expected_cards(topics_ready)


@pytest.fixture(scope="module", autouse=True)
def _table() -> Any:
    yield
    if RESULTS:
        table = "\n".join([HEADER, *(r.row() for r in RESULTS)])
        (ROOT / "reports").mkdir(exist_ok=True)
        (ROOT / "reports" / "faults.md").write_text(table + "\n")
        print("\n" + table)


@pytest.fixture
async def api_url(topics_ready: Settings) -> AsyncIterator[str]:
    client = await started_api(topics_ready)
    yield str(client.make_url("")).rstrip("/")
    await client.close()


def _check(result: Audit, stream: Stream) -> None:
    RESULTS.append(result)
    assert result.lost == 0, result
    assert result.duplicated == 0, result
    assert result.persisted == result.acknowledged > 0, result
    assert stream.given_up == 0, "a submission was never accepted"
    assert stream.shed_without_retry_after == 0
    assert stream.client_errors == 0, "a client timed out or lost its connection instead of getting an answer"


async def test_a_consumer_killed_mid_batch(
    topics_ready: Settings, api_url: str, minio_store: MinioStore, cards: list[str], s3_backend: str
) -> None:
    env = {**os.environ, **to_environ(topics_ready), "INTAKE_CONSUMER_METRICS_PORT": "0"}
    victim = subprocess.Popen(  # noqa: ASYNC220 - started once; the test never waits on it while running
        [sys.executable, "-m", "cli", "consume"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    group = Consumers(topics_ready)
    stream = Stream(api_url, rate=6, key=client_key(topics_ready))

    async def kill() -> None:
        os.killpg(victim.pid, signal.SIGKILL)  # the consumer and its pool, mid-batch, no goodbye
        victim.wait()
        group.start()

    try:
        await stream.during(kill, before_s=6, after_s=4)
        result = await audit(f"consumer kill -9 ({s3_backend})", stream, minio_store, topics_ready, cards)
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
        await group.close()
    _check(result, stream)


async def _under_outage(
    service: str,
    down_s: float,
    after_s: float,
    settings: Settings,
    api_url: str,
    store: MinioStore,
    cards: list[str],
    s3_backend: str,
) -> Stream:
    """Stream uploads while ``service`` (kafka, or the S3 server) is down for ``down_s``; audit and check."""
    group = Consumers(settings)
    group.start()
    stream = Stream(api_url, rate=6, key=client_key(settings))
    try:
        await stream.during(lambda: outage(service, down_s), before_s=3, after_s=after_s)
        result = await audit(f"{service} down {down_s:g} s ({s3_backend})", stream, store, settings, cards)
    finally:
        await group.close()
    _check(result, stream)
    return stream


async def test_b_broker_restart(
    topics_ready: Settings, api_url: str, minio_store: MinioStore, cards: list[str], s3_backend: str
) -> None:
    stream = await _under_outage("kafka", 5, 5, topics_ready, api_url, minio_store, cards, s3_backend)
    assert stream.shed > 0, "the outage should have been answered with 503s"


async def test_c_storage_outage(
    topics_ready: Settings, api_url: str, minio_store: MinioStore, cards: list[str], s3_backend: str
) -> None:
    await _under_outage(s3_backend, 20, 3, topics_ready, api_url, minio_store, cards, s3_backend)


async def test_d_front_pushed_past_its_bound(
    topics_ready: Settings, minio_store: MinioStore, cards: list[str], s3_backend: str
) -> None:
    settings = replace(topics_ready, http=replace(topics_ready.http, max_in_flight=3, retry_after_s=1))
    client = await started_api(settings)
    group = Consumers(settings)
    group.start()
    stream = Stream(str(client.make_url("")).rstrip("/"), rate=400, key=client_key(settings))
    try:
        await stream.burst(60)  # 60 at once against a bound of 3
        result = await audit(f"front past its bound ({s3_backend})", stream, minio_store, settings, cards)
    finally:
        await group.close()
        await client.close()
    _check(result, stream)
    assert stream.shed > 0, "the burst should have been shed"
