"""Fixtures shared by the whole suite.

Integration fixtures read the real stack's settings from the environment (``deploy/local/stack.sh env``, done
by ``./dev test``) and FAIL, never skip, when Kafka or MinIO is missing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from intake.settings import Settings, SettingsError, load_settings
from intake.storage import MinioStore, build_store


@pytest.fixture(scope="session")
def live_settings() -> Settings:
    """Settings of the running local stack, with topics and a consumer group unique to this test session."""
    try:
        s = load_settings()
    except SettingsError as exc:
        pytest.fail(
            f"integration tests need the real stack: run `./dev test` (or export `deploy/local/stack.sh env`): {exc}"
        )
    run = uuid.uuid4().hex[:8]
    return replace(
        s,
        kafka=replace(s.kafka, topic_prefix=f"it-{run}", partitions=3, group_id=f"it-{run}-workers"),
        s3=replace(
            s.s3,
            bucket_photos=f"it-{run}-ktp",
            bucket_status=f"it-{run}-status",
            bucket_registrations=f"it-{run}-registrations",
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
    """The real MinIO, with the service's buckets ensured. Fails when MinIO does not answer."""
    store = build_store(live_settings)
    try:
        await asyncio.wait_for(
            store.ensure_buckets(
                [live_settings.s3.bucket_photos, live_settings.s3.bucket_status, live_settings.s3.bucket_registrations]
            ),
            20,
        )
    except Exception as exc:
        store.close()
        pytest.fail(f"MinIO at {live_settings.s3.endpoint} is not reachable: {exc!r}")
    yield store
    store.close()
