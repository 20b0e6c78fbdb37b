"""Fixtures shared by the whole suite.

Integration fixtures read the real stack's settings from the environment (``deploy/local/stack.sh env``, done
by ``./dev test``) and FAIL, never skip, when Kafka or an S3 server is missing.

Storage-touching tests run on every S3 server in :data:`S3_BACKENDS`: their module sets
``pytestmark = ON_EVERY_S3_BACKEND``, which parametrises the session fixture ``s3_backend`` (and so
``live_settings`` and everything built on it); other tests use the stack's first server.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from intake.settings import Settings, SettingsError, load_settings
from intake.storage import MinioStore, build_store

S3_BACKENDS = ("minio", "seaweedfs")
"""The S3 servers the service is tested on (README, 'Object storage'), the stack's default first."""

ON_EVERY_S3_BACKEND = pytest.mark.parametrize("s3_backend", S3_BACKENDS, indirect=True, scope="session")
"""Module mark: run the module's tests once per S3 server (``live_settings`` points at it). Indirect, so the one
``s3_backend`` fixture takes the parameter: a new value tears down ``live_settings`` and everything built on it,
also after an unparametrised module created them (a direct parametrisation would shadow the fixture and leave
those cached, pointed at the first server)."""


def pytest_configure(config: pytest.Config) -> None:
    """No event-loop-lag admission in the APIs the tests start, in process or as children (``INTAKE_MAX_LOOP_LAG_MS``
    unless already set): a test machine's loops run late whenever it is busy, and an upload refused for that would
    fail a test of something else. The gate has tests of its own (``tests/ingest/test_admission.py``)."""
    os.environ.setdefault("INTAKE_MAX_LOOP_LAG_MS", "0")


def primary_s3_backend() -> str:
    """The server the stack's ``INTAKE_S3_ENDPOINT`` points at: the first of ``INTAKE_STACK_S3`` (MinIO by default)."""
    return os.environ.get("INTAKE_STACK_S3", "").replace(",", " ").split(" ")[0] or S3_BACKENDS[0]


def stack_s3_endpoint(backend: str) -> str:
    """``host:port`` of ``backend`` in the running stack (``INTAKE_STACK_S3_ENDPOINTS`` from ``stack.sh env``);
    fails the test when the stack does not run it."""
    listed = os.environ.get("INTAKE_STACK_S3_ENDPOINTS", "")
    endpoints = dict(item.split("=", 1) for item in listed.split(",") if "=" in item)
    if backend not in endpoints:
        pytest.fail(
            f"storage tests run on every S3 server ({', '.join(S3_BACKENDS)}) and the stack does not run {backend}: "
            f"`INTAKE_STACK_S3={','.join(S3_BACKENDS)} deploy/local/stack.sh start` and export "
            "`deploy/local/stack.sh env` (./dev test does both)"
        )
    return endpoints[backend]


def stack_settings(backend: str) -> Settings:
    """The stack's settings from the environment, pointed at ``backend``'s S3 endpoint."""
    try:
        s = load_settings()
    except SettingsError as exc:
        pytest.fail(
            f"integration tests need the real stack: run `./dev test` (or export `deploy/local/stack.sh env`): {exc}"
        )
    if backend == primary_s3_backend():
        return s
    return replace(s, s3=replace(s.s3, endpoint=stack_s3_endpoint(backend)))


@pytest.fixture(scope="session")
def s3_backend(request: pytest.FixtureRequest) -> str:
    """The S3 server under test: the stack's first unless the module runs ``ON_EVERY_S3_BACKEND``."""
    return str(getattr(request, "param", primary_s3_backend()))


@pytest.fixture(scope="session")
def live_settings(s3_backend: str) -> Settings:
    """Settings of the running local stack on ``s3_backend``, with topics, buckets and a consumer group unique to
    this test session (and backend)."""
    s = stack_settings(s3_backend)
    run = uuid.uuid4().hex[:8]
    return replace(
        s,
        kafka=replace(s.kafka, topic_prefix=f"it-{run}", partitions=3, group_id=f"it-{run}-workers"),
        s3=replace(
            s.s3,
            bucket_photos=f"it-{run}-ktp",
            bucket_status=f"it-{run}-status",
            bucket_registrations=f"it-{run}-registrations",
            bucket_keys=f"it-{run}-keys",
        ),
        consumer=replace(s.consumer, pool_workers=2, max_batch=8, storage_retry_max_s=2.0, metrics_port=0),
        # Every test client is 127.0.0.1: per-address limits would throttle the suite (they have unit tests).
        http=replace(
            s.http,
            produce_timeout_s=3.0,
            retry_after_s=2,
            readiness_max_age_s=6.0,
            rate_per_address=1e6,
            burst_per_address=1_000_000,
        ),
    )


@pytest.fixture
async def minio_store(live_settings: Settings) -> AsyncIterator[MinioStore]:
    """The real S3 server under test, with the service's buckets ensured. Fails when it does not answer."""
    store = build_store(live_settings)
    try:
        await asyncio.wait_for(
            store.ensure_buckets(
                [
                    live_settings.s3.bucket_photos,
                    live_settings.s3.bucket_status,
                    live_settings.s3.bucket_registrations,
                    live_settings.s3.bucket_keys,
                ]
            ),
            20,
        )
    except Exception as exc:
        store.close()
        pytest.fail(f"the S3 server at {live_settings.s3.endpoint} is not reachable: {exc!r}")
    yield store
    store.close()
