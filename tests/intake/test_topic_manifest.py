"""``intake topics manifest``: the topics as Strimzi KafkaTopics (and KafkaUsers), equal to ``topic_specs``."""

from __future__ import annotations

import pytest
import yaml

from cli.main import main
from intake.settings import load_settings
from intake.topic_manifest import kafka_topics, kafka_users, resource_name
from intake.topics import topic_names, topic_specs
from tests.support import SECRET_ENV

ENV = {
    **SECRET_ENV,
    "INTAKE_TOPIC_PREFIX": "Staging_Intake",
    "INTAKE_TOPIC_PARTITIONS": "9",
    "INTAKE_TOPIC_REPLICATION": "3",
}


def test_cli_prints_every_topic_as_its_spec(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert main(["topics", "manifest", "--cluster", "c1"]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    specs = topic_specs(load_settings(ENV))
    assert [d["spec"]["topicName"] for d in docs] == [s.name for s in specs]
    for doc, spec in zip(docs, specs, strict=True):
        assert doc["apiVersion"] == "kafka.strimzi.io/v1" and doc["kind"] == "KafkaTopic"
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "c1"
        assert doc["metadata"]["name"] == resource_name(spec.name)
        assert doc["spec"]["partitions"] == spec.partitions
        assert doc["spec"]["replicas"] == spec.replication_factor
        assert doc["spec"]["config"] == spec.config


def test_cli_users_flag_adds_the_kafka_users(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert main(["topics", "manifest", "--users"]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    settings = load_settings(ENV)
    assert docs == kafka_topics(settings, "intake-kafka") + kafka_users(settings, "intake-kafka")


def test_resource_names_are_kubernetes_names() -> None:
    assert resource_name("Staging_Intake.dead-letter.v1") == "staging-intake.dead-letter.v1"
    with pytest.raises(ValueError):
        resource_name("__")


def test_acls_name_only_the_topics_each_component_uses() -> None:
    settings = load_settings(ENV)
    names = topic_names(settings)
    users = {u["metadata"]["name"]: u["spec"]["authorization"]["acls"] for u in kafka_users(settings, "k")}
    grants = {
        user: {(a["resource"]["type"], a["resource"]["name"], op) for a in acls for op in a["operations"]}
        for user, acls in users.items()
    }
    assert {name for kind, name, op in grants["intake-api"] if op == "Write"} == {names.submissions, names.audit}
    assert not {op for _, _, op in grants["intake-api"]} & {"Delete", "Alter"}
    consumer_reads = {name for kind, name, op in grants["intake-consumer"] if op == "Read" and kind == "topic"}
    assert consumer_reads == {names.submissions, names.retry}
    consumer_writes = {name for kind, name, op in grants["intake-consumer"] if op == "Write"}
    assert consumer_writes == {names.retry, names.results, names.registrations, names.status, names.dead_letter}
    api_reads = {name for kind, name, op in grants["intake-api"] if op == "Read"}
    assert api_reads == {names.status}  # the status view, without a group
    assert ("topic", names.registrations, "Write") in grants["intake-ops"]  # erase publishes `erased` records
    assert ("group", settings.kafka.group_id, "Read") in grants["intake-consumer"]
    assert {op for _, _, op in grants["intake-keda"]} == {"Describe"}
    assert all(a["resource"]["patternType"] == "literal" for acls in users.values() for a in acls)
