"""Strimzi ``KafkaTopic`` objects from :func:`intake.topics.topic_specs`, and ``KafkaUser``s with their ACLs.

``intake topics manifest`` prints them; ``deploy/kubernetes/generate.py`` writes them into each overlay from the
overlay's own settings, and a test renders the overlays and compares every topic with ``topic_specs`` again,
so a topic on the cluster cannot drift from the one the code creates locally.
"""

from __future__ import annotations

import json
import re
from typing import Any

from intake.settings import Settings
from intake.topics import topic_names, topic_specs

STRIMZI_API = "kafka.strimzi.io/v1"
_NOT_DNS = re.compile(r"[^a-z0-9.-]+")


def resource_name(topic: str) -> str:
    """A Kubernetes object name for ``topic`` (lowercase DNS subdomain); the topic's own name is ``spec.topicName``."""
    name = _NOT_DNS.sub("-", topic.lower()).strip(".-")
    if not name:
        raise ValueError(f"topic {topic!r} has no usable characters for a Kubernetes name")
    return name[:253]


def kafka_topics(settings: Settings, cluster: str) -> list[dict[str, Any]]:
    """One ``KafkaTopic`` per topic of ``settings``, managed by the Strimzi cluster named ``cluster``."""
    return [
        {
            "apiVersion": STRIMZI_API,
            "kind": "KafkaTopic",
            "metadata": {
                "name": resource_name(spec.name),
                "labels": {"strimzi.io/cluster": cluster, "app.kubernetes.io/part-of": "prakerja-intake"},
            },
            "spec": {
                "topicName": spec.name,
                "partitions": spec.partitions,
                "replicas": spec.replication_factor,
                "config": dict(sorted(spec.config.items())),
            },
        }
        for spec in topic_specs(settings)
    ]


def to_yaml_stream(objects: list[dict[str, Any]]) -> str:
    """``objects`` as a YAML stream (each document is JSON, which is YAML): no YAML library at run time."""
    return "".join(f"---\n{json.dumps(o, indent=2)}\n" for o in objects)


def _acl(kind: str, name: str, *operations: str) -> dict[str, Any]:
    return {"resource": {"type": kind, "name": name, "patternType": "literal"}, "operations": list(operations)}


def kafka_users(settings: Settings, cluster: str) -> list[dict[str, Any]]:
    """One ``KafkaUser`` (TLS client certificate) per component, with the ACLs of the calls it makes and no more.

    * ``intake-api`` appends submissions and audit records (idempotent producer: Write on the topic suffices
      since Kafka 3.0, KIP-679), reads the status topic without a group (its status view) and describes the
      workers' group offsets (the queue watermark, GET /v1/queue).
    * ``intake-consumer`` reads submissions and the retry topic in its group, parks records on the retry topic,
      dead-letters, publishes results, statuses and registration records; its lag sampler describes the topic and the
      group's offsets.
    * ``intake-keda`` (KEDA's Kafka scaler) only describes the submissions topic and the group's offsets.
    * ``intake-ops`` (the ``intake`` command in a Job: dlq list/replay, audit list, waves close, topics
      describe, erase) reads the dead-letter and audit topics without a group, replays to submissions, publishes
      results and statuses (waves close, erase) and (erase) the `erased` registration records.
    """
    names = topic_names(settings)
    group = settings.kafka.group_id
    users = {
        "intake-api": [
            _acl("topic", names.submissions, "Write", "Describe"),
            _acl("topic", names.audit, "Write", "Describe"),
            _acl("topic", names.status, "Read", "Describe"),
            _acl("group", group, "Describe"),
        ],
        "intake-consumer": [
            _acl("topic", names.submissions, "Read", "Describe"),
            _acl("topic", names.retry, "Read", "Write", "Describe"),
            _acl("topic", names.results, "Write", "Describe"),
            _acl("topic", names.registrations, "Write", "Describe"),
            _acl("topic", names.status, "Write", "Describe"),
            _acl("topic", names.dead_letter, "Write", "Describe"),
            _acl("group", group, "Read", "Describe"),
        ],
        "intake-keda": [
            _acl("topic", names.submissions, "Describe"),
            _acl("group", group, "Describe"),
        ],
        "intake-ops": [
            _acl("topic", names.dead_letter, "Read", "Describe", "DescribeConfigs"),
            _acl("topic", names.audit, "Read", "Describe", "DescribeConfigs"),
            _acl("topic", names.submissions, "Write", "Describe", "DescribeConfigs"),
            _acl("topic", names.results, "Write", "Describe", "DescribeConfigs"),
            _acl("topic", names.registrations, "Write", "Describe", "DescribeConfigs"),
            _acl("topic", names.status, "Write", "Describe", "DescribeConfigs"),
            _acl("topic", names.retry, "Describe", "DescribeConfigs"),
        ],
    }
    return [
        {
            "apiVersion": STRIMZI_API,
            "kind": "KafkaUser",
            "metadata": {
                "name": user,
                "labels": {"strimzi.io/cluster": cluster, "app.kubernetes.io/part-of": "prakerja-intake"},
            },
            "spec": {"authentication": {"type": "tls"}, "authorization": {"type": "simple", "acls": acls}},
        }
        for user, acls in users.items()
    ]
