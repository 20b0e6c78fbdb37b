"""A real S3 server that cannot encrypt: the service refuses to start on it (API and consumer, both buckets).

Each server of the stack is started a second time without its key (``INTAKE_STACK_S3_SSE=off``), in a folder of
its own, on the stack's S3 port + 100 (MinIO; SeaweedFS on + 102). What they really do, shown here:

* MinIO without a KMS key refuses to make SSE-S3 a bucket's default (``NotImplemented``);
* SeaweedFS without ``WEED_S3_SSE_KEY`` accepts the default, then answers every write into that bucket with
  ``500 InternalError`` (it never stores such an object in plaintext).

Either way ``ensure_buckets`` + the probe raise :class:`StoreUnfit`, and neither the API nor a consumer starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from consumers.runner import run_consumer
from ingest.app import create_app
from intake.metrics import build_metrics
from intake.settings import Settings
from intake.storage import StoreUnfit, build_store
from intake.store_probe import probe_store
from tests.conftest import S3_BACKENDS
from tests.integration.conftest import STACK
from tests.support import FakeSink

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def plain_stack(live_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Every S3 server of the stack, without encryption keys; yields the ``stack.sh env`` of that stack."""
    port = int(live_settings.s3.endpoint.rsplit(":", 1)[1]) + 100
    env = {
        **os.environ,
        "INTAKE_STACK_DIR": str(tmp_path_factory.mktemp("plain-s3")),
        "INTAKE_STACK_S3": ",".join(S3_BACKENDS),
        "INTAKE_STACK_S3_PORT": str(port),
        "INTAKE_STACK_MINIO_PORT": str(port),
        "INTAKE_STACK_MINIO_CONSOLE_PORT": str(port + 1),
        "INTAKE_STACK_S3_SSE": "off",
    }
    env.pop("INTAKE_STACK_SEAWEEDFS_INTERNAL_PORT", None)
    try:
        start = [str(STACK), "start-s3"]
        started = subprocess.run(start, check=False, env=env, capture_output=True, text=True, timeout=180)
        if started.returncode:
            pytest.fail(f"could not start the S3 servers without keys on port {port}: {started.stderr[-2000:]}")
        printed = subprocess.run([str(STACK), "env"], env=env, check=True, capture_output=True, text=True).stdout
        yield dict(line.removeprefix("export ").split("=", 1) for line in printed.splitlines() if "=" in line)
    finally:  # throwaway servers and data: no graceful stop (SeaweedFS takes 10 s or more for one)
        for backend in S3_BACKENDS:
            pidfile = Path(env["INTAKE_STACK_DIR"]) / backend / "pid"
            with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
        subprocess.run([str(STACK), "stop-s3"], env=env, check=False, capture_output=True, timeout=180)


def _on(plain: dict[str, str], backend: str, settings: Settings) -> Settings:
    endpoints = dict(item.split("=", 1) for item in plain["INTAKE_STACK_S3_ENDPOINTS"].split(","))
    s3 = replace(
        settings.s3,
        endpoint=endpoints[backend],
        access_key=plain["INTAKE_S3_ACCESS_KEY"],
        secret_key=plain["INTAKE_S3_SECRET_KEY"],
    )
    return replace(settings, s3=s3, consumer=replace(settings.consumer, pool_workers=1, metrics_port=0))


@pytest.mark.parametrize("backend", S3_BACKENDS)
async def test_the_service_refuses_a_server_that_cannot_encrypt(
    plain_stack: dict[str, str], live_settings: Settings, backend: str
) -> None:
    settings = _on(plain_stack, backend, live_settings)
    buckets = [settings.s3.bucket_photos, settings.s3.bucket_status]
    store = build_store(settings)
    try:
        with pytest.raises(StoreUnfit, match="KMS key"):
            await store.ensure_buckets(buckets)
            await probe_store(store, buckets, encrypt=True)
    finally:
        store.close()

    api = TestClient(TestServer(create_app(settings, sink=FakeSink(), metrics=build_metrics())))
    with pytest.raises(StoreUnfit):
        await api.start_server()
    await api.close()

    with pytest.raises(StoreUnfit):
        await asyncio.wait_for(run_consumer(settings, asyncio.Event()), 60)


def test_the_plain_servers_listen_where_documented(plain_stack: dict[str, str], live_settings: Settings) -> None:
    port = int(live_settings.s3.endpoint.rsplit(":", 1)[1]) + 100
    assert plain_stack["INTAKE_STACK_S3_ENDPOINTS"] == f"minio=127.0.0.1:{port},seaweedfs=127.0.0.1:{port + 2}"
    assert Path(plain_stack["INTAKE_STACK_DIR"]).is_dir()
