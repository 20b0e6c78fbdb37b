"""Fixtures of the API's unit tests: a fake Kafka sink and an in-memory object store with the service's buckets."""

from __future__ import annotations

import pytest

from intake.storage import MemoryStore
from tests.support import FakeSink


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
async def store() -> MemoryStore:
    s = MemoryStore()
    await s.ensure_buckets(["intake-ktp", "intake-status"])
    return s
