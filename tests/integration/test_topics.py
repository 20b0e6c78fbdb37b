"""Topics exist on the real broker with the partitions and size limit the settings define."""

from __future__ import annotations

import pytest

from intake.kafka import describe_topics, ensure_topics
from intake.settings import Settings
from intake.topics import topic_names, topic_specs

pytestmark = pytest.mark.integration


async def test_topics_match_their_specs(topics_ready: Settings) -> None:
    assert await ensure_topics(topics_ready) == []  # idempotent: all exist already
    described = {t["topic"]: t for t in await describe_topics(topics_ready)}
    for spec in topic_specs(topics_ready):
        got = described[spec.name]
        assert got["error_code"] == 0
        assert got["partitions"] == spec.partitions
        assert got["replication_factor"] == spec.replication_factor
        assert int(got["config"]["max.message.bytes"]) == topics_ready.limits.max_message_bytes
        assert got["config"]["retention.ms"] == spec.config["retention.ms"]
        assert got["config"]["cleanup.policy"] == spec.config["cleanup.policy"]  # the registrations topic: compact
    assert described[topic_names(topics_ready).status]["config"]["cleanup.policy"] == "compact"
