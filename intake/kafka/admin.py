"""The admin client (built in one place, :func:`build_admin`) and what the service asks it: create the topics,
describe them, list a topic's partitions."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    TopicAlreadyExistsError,
)

from intake.kafka.config import connection_config
from intake.kafka.starting import start_client
from intake.settings import Settings
from intake.topics import TopicSpec, topic_specs


def build_admin(
    connection: Mapping[str, Any], request_timeout_ms: int, client_id: str | None = None
) -> AIOKafkaAdminClient:
    """A new, unstarted admin client for ``connection`` (:func:`~intake.kafka.config.connection_config`): the one
    place one is built. The caller starts and closes it."""
    options: dict[str, Any] = {**connection, "request_timeout_ms": request_timeout_ms}
    if client_id is not None:
        options["client_id"] = client_id
    return AIOKafkaAdminClient(**options)


@contextlib.asynccontextmanager
async def started_admin(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    """An admin client for ``settings``, started; closed on exit. Raises what ``start()`` raises (Kafka down)."""
    admin = build_admin(connection_config(settings), settings.kafka.request_timeout_ms)
    try:
        await start_client(admin.start(), admin.close, settle_s=settings.kafka.request_timeout_s)
        yield admin
    finally:
        await admin.close()


async def ensure_topics(settings: Settings, specs: list[TopicSpec] | None = None) -> list[str]:
    """Create the project's topics if absent (idempotent). Returns the names created now."""
    specs = topic_specs(settings) if specs is None else specs
    async with started_admin(settings) as admin:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.config)
            for s in specs
            if s.name not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process created it meanwhile
                await admin.create_topics(new)
        return [t.name for t in new]


async def describe_topics(settings: Settings) -> list[dict[str, Any]]:
    """Partitions and configuration of the project's topics, as the broker reports them."""
    names = [s.name for s in topic_specs(settings)]
    async with started_admin(settings) as admin:
        described = await admin.describe_topics(names)
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    out: list[dict[str, Any]] = []
    conf_by_name: dict[str, dict[str, str]] = {}
    for resp in configs:
        for res in resp.resources:
            _err, _msg, _rtype, rname, entries = res[:5]
            conf_by_name[rname] = {
                e[0]: e[1]
                for e in entries
                if e[0] in ("max.message.bytes", "retention.ms", "min.insync.replicas", "cleanup.policy")
            }
    for t in described:
        out.append(
            {
                "topic": t["topic"],
                "partitions": len(t["partitions"]),
                "replication_factor": min((len(p["replicas"]) for p in t["partitions"]), default=0),
                "error_code": t["error_code"],
                "config": conf_by_name.get(t["topic"], {}),
            }
        )
    return out


async def topic_partitions(settings: Settings, topic: str) -> list[int]:
    """The partition numbers of ``topic`` as the cluster describes it (empty when it does not exist)."""
    async with started_admin(settings) as admin:
        described = await admin.describe_topics([topic])
    return sorted(
        p["partition"] for t in described if t["topic"] == topic and not t["error_code"] for p in t["partitions"]
    )
