"""deploy/kubernetes checked offline: validate.sh (kustomize + kubeconform -strict) and the rendered objects
against the code they deploy (settings, routes, topics, ACLs, the measured drain rate, observability files).

validate.sh installs its tools and schemas on first use (go install, go mod download, mvn; cached), so these
tests need Go, Maven and a JDK 21+ like the rest of the project's installs; they fail, never skip, without them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from consumers.runner import pool_size
from ingest.app import create_app
from intake.kafka import consumer_config
from intake.metrics import build_metrics
from intake.metrics_http import metrics_app
from intake.settings import Settings, documented, load_settings
from intake.topic_manifest import kafka_users, resource_name
from intake.topics import topic_names, topic_specs
from loadtests.capacity import WAVE_MIX
from loadtests.capacity_model import Rates, size_fleet
from loadtests.capacity_model import Wave as CapacityWave
from tests.support import SECRET_ENV

pytestmark = pytest.mark.timeout(1500)  # the first run builds kubeconform, kustomize and helm (go install)

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "kubernetes"
VALIDATE = K8S / "validate.sh"
OVERLAYS = ("staging", "production")
KUBE_VERSIONS = ("1.33.0", "1.37.0")
"""validate.sh's default: the oldest Kubernetes targeted and the newest kubernetes-validate ships."""
MiB = 1024 * 1024
API_BASE_MEMORY = 192 * MiB
STATUS_VIEW_ENTRY_BYTES = 300
"""A status in an API's in-memory view (ingest/status_view.py's docstring; loadtests/bench_status.py measures it)."""
"""Memory an API process needs besides the bodies in flight (interpreter, producer buffers, nonce and rate
tables); the same figure is written beside the Deployment's resources."""
SECRETS = SECRET_ENV
"""Stand-ins for the Secret intake-secrets, which is not in git."""


def run_validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VALIDATE), *args], capture_output=True, text=True, timeout=1400, check=False, cwd=REPO)


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    run = run_validate("render", overlay)
    assert run.returncode == 0, f"validate.sh render {overlay} failed:\n{run.stderr}"
    return tuple(d for d in yaml.safe_load_all(run.stdout) if d)


def objects(overlay: str, kind: str) -> list[dict[str, Any]]:
    return [o for o in rendered(overlay) if o["kind"] == kind]


def one(overlay: str, kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects(overlay, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{overlay}: expected one {kind} {name}, found {len(found)}"
    return found[0]


def settings_config_map(overlay: str) -> dict[str, str]:
    found = [o for o in objects(overlay, "ConfigMap") if o["metadata"]["name"].startswith("intake-settings-")]
    assert len(found) == 1
    data: dict[str, str] = found[0]["data"]
    return data


def cpu_cores(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def memory_bytes(quantity: str) -> int:
    units = {"Ki": 1024, "Mi": MiB, "Gi": 1024 * MiB}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(quantity[: -len(suffix)]) * factor
    return int(quantity)


def containers(overlay: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for d in objects(overlay, "Deployment"):
        for c in d["spec"]["template"]["spec"]["containers"]:
            yield d["metadata"]["name"], c


def pod_environment(overlay: str, container: dict[str, Any]) -> dict[str, str]:
    """The INTAKE_* environment ``container`` gets: ConfigMap, Secret stand-ins, CPU limit for resourceFieldRef."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, f"{container['name']}: only the settings ConfigMap is envFrom"
        assert source["configMapRef"]["name"].startswith("intake-settings-")
        env.update(settings_config_map(overlay))
    for var in container.get("env", []):
        ref = var["valueFrom"]
        if "secretKeyRef" in ref:
            assert ref["secretKeyRef"] == {"name": "intake-secrets", "key": var["name"]}
            env[var["name"]] = SECRETS[var["name"]]
        elif "resourceFieldRef" in ref:
            field = ref["resourceFieldRef"]
            assert field["resource"] == "limits.cpu" and field["containerName"] == container["name"]
            env[var["name"]] = str(math.ceil(cpu_cores(container["resources"]["limits"]["cpu"])))
        else:
            raise AssertionError(f"{var['name']}: neither a Secret nor the CPU limit: {ref}")
    return env


def overlay_settings(overlay: str, deployment: str) -> Settings:
    found = [c for name, c in containers(overlay) if name == deployment]
    assert len(found) == 1
    return load_settings(pod_environment(overlay, found[0]))


def test_validate_sh_accepts_every_overlay() -> None:
    run = run_validate()
    assert run.returncode == 0, f"validate.sh failed:\n{run.stdout}\n{run.stderr}"
    for overlay in (*OVERLAYS, "seaweedfs"):
        assert f"overlay {overlay}" in run.stderr
    for kube in KUBE_VERSIONS:
        assert f"Kubernetes {kube}" in run.stderr
    summaries = re.findall(r"Valid: (\d+), Invalid: (\d+), Errors: (\d+), Skipped: (\d+)", run.stdout)
    # the overlays, the SeaweedFS chart and its NetworkPolicy, each against every Kubernetes version
    assert len(summaries) == (len(OVERLAYS) + 2) * len(KUBE_VERSIONS)
    assert all(
        int(valid) > 0 and (invalid, errors, skipped) == ("0", "0", "0")
        for valid, invalid, errors, skipped in summaries
    )


BROKEN = {
    "wrong_type": ("spec:\n  replicas: three\n", "/spec/replicas"),
    "unknown_field": ("spec:\n  replicas: 1\n  replicaCount: 1\n", "replicaCount"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_validate_sh_rejects_a_broken_manifest(case: str, tmp_path: Path) -> None:
    deployment = one("staging", "Deployment", "intake-api")
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(deployment))
    assert run_validate("files", str(good)).returncode == 0, "the unbroken control must pass"
    patch, needle = BROKEN[case]
    broken = {**deployment, "spec": {**deployment["spec"], **yaml.safe_load(patch)["spec"]}}
    path = tmp_path / f"{case}.yaml"
    path.write_text(yaml.safe_dump(broken))
    run = run_validate("files", str(path))
    assert run.returncode != 0
    assert needle in run.stdout


def test_validate_sh_fails_when_there_is_nothing_to_validate(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# no object\n")
    run = run_validate("files", str(path))
    assert run.returncode != 0 and "nothing to validate" in run.stderr


def test_validate_sh_rejects_an_unknown_field_in_a_strimzi_topic(tmp_path: Path) -> None:
    submissions = topic_names(overlay_settings("staging", "intake-api")).submissions
    topic = one("staging", "KafkaTopic", resource_name(submissions))
    broken = {**topic, "spec": {**topic["spec"], "replicationFactor": 3}}
    path = tmp_path / "topic.yaml"
    path.write_text(yaml.safe_dump(broken))
    run = run_validate("files", str(path))
    assert run.returncode != 0 and "replicationFactor" in run.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_setting_is_a_documented_intake_variable_and_secrets_come_from_the_secret(overlay: str) -> None:
    docs = {d.env for d in documented()}
    secret_names = {f.metadata["env"] for f in _setting_fields(load_settings(SECRETS)) if f.metadata.get("secret")}
    assert secret_names == set(SECRETS)
    assert not objects(overlay, "Secret"), "no secret value in git: Secrets are created on the cluster"
    data = settings_config_map(overlay)
    assert set(data) <= docs, f"unknown settings in the ConfigMap: {sorted(set(data) - docs)}"
    assert not set(data) & secret_names, "a secret in the ConfigMap"
    for _, container in containers(overlay):
        names = {v["name"] for v in container.get("env", [])}
        assert names <= docs, f"unknown settings: {sorted(names - docs)}"
        secret_refs = {v["name"] for v in container["env"] if "secretKeyRef" in v["valueFrom"]}
        assert secret_refs == secret_names
        load_settings(pod_environment(overlay, container))  # every required setting present, every value valid


def _setting_fields(section: Any) -> Iterator[dataclasses.Field[Any]]:
    """Every field of the settings tree that names an environment variable."""
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if "env" in f.metadata:
            yield f
        elif dataclasses.is_dataclass(value):
            yield from _setting_fields(value)


def _routes(app: Any) -> set[str]:
    return {r.canonical for r in app.router.resources()}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_probes_ports_and_shutdown_follow_the_app(overlay: str) -> None:
    settings = overlay_settings(overlay, "intake-api")
    (api,) = [c for name, c in containers(overlay) if name == "intake-api"]
    routes = _routes(create_app(settings, metrics=build_metrics()))
    ports = {p["name"]: p["containerPort"] for p in api["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        get = api[probe]["httpGet"]
        assert get["path"] in routes
        assert ports[get["port"]] == settings.http.port
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    service = one(overlay, "Service", "intake-api")
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports)

    pod = one(overlay, "Deployment", "intake-api")["spec"]["template"]["spec"]
    h = settings.http
    pre_stop = api["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop >= h.drain_delay_s
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + h.drain_delay_s + h.body_read_timeout_s + (
        h.produce_timeout_s + 10
    )
    cores = cpu_cores(api["resources"]["limits"]["cpu"])
    assert cores == int(cores) >= 1 and h.processes == cores, "one process per whole core"
    assert api["resources"]["requests"]["cpu"] == api["resources"]["limits"]["cpu"]
    memory = memory_bytes(api["resources"]["limits"]["memory"])
    view = settings.status.view_max_entries * STATUS_VIEW_ENTRY_BYTES
    assert memory >= h.processes * (h.max_in_flight_bytes + API_BASE_MEMORY + view)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_consumer_probe_port_and_pool_follow_the_app(overlay: str) -> None:
    settings = overlay_settings(overlay, "intake-consumer")
    (consumer,) = [c for name, c in containers(overlay) if name == "intake-consumer"]
    ports = {p["name"]: p["containerPort"] for p in consumer["ports"]}
    get = consumer["livenessProbe"]["httpGet"]
    assert get["path"] in _routes(metrics_app(build_metrics()))
    assert ports[get["port"]] == settings.consumer.metrics_port
    assert settings.http.host == "0.0.0.0"  # the metrics port listens on INTAKE_HTTP_HOST
    assert pool_size(settings) == cpu_cores(consumer["resources"]["limits"]["cpu"])
    for monitor, port in (("intake-api", "http"), ("intake-consumer", "metrics")):
        (endpoint,) = one(overlay, "PodMonitor", monitor)["spec"]["podMetricsEndpoints"]
        assert endpoint["port"] == port and endpoint["path"] == "/metrics"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_topics_and_users_equal_what_the_code_creates(overlay: str) -> None:
    settings = overlay_settings(overlay, "intake-consumer")
    api = overlay_settings(overlay, "intake-api")
    assert (settings.kafka, settings.limits) == (api.kafka, api.limits)  # one ConfigMap for both
    topics = {t["spec"]["topicName"]: t for t in objects(overlay, "KafkaTopic")}
    specs = topic_specs(settings)
    assert set(topics) == {s.name for s in specs}
    for spec in specs:
        t = topics[spec.name]
        assert t["metadata"]["labels"]["strimzi.io/cluster"] == "intake-kafka"
        assert t["spec"]["partitions"] == spec.partitions
        assert t["spec"]["replicas"] == spec.replication_factor == 3
        assert t["spec"]["config"] == spec.config
        assert t["spec"]["config"]["min.insync.replicas"] == "2"
    users = {u["metadata"]["name"]: u["spec"] for u in objects(overlay, "KafkaUser")}
    assert users == {u["metadata"]["name"]: u["spec"] for u in kafka_users(settings, "intake-kafka")}
    api_acls = users["intake-api"]["authorization"]["acls"]
    names = topic_names(settings)
    writes = {a["resource"]["name"] for a in api_acls if "Write" in a["operations"]}
    reads = {a["resource"]["name"] for a in api_acls if "Read" in a["operations"]}
    assert writes == {names.submissions, names.audit}
    assert reads == {names.status}, "the API produces, and reads only the status topic (its status view)"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_cluster_is_replicated(overlay: str) -> None:
    kafka = one(overlay, "Kafka", "intake-kafka")["spec"]["kafka"]
    assert kafka["config"]["min.insync.replicas"] == 2
    assert kafka["config"]["default.replication.factor"] == 3
    assert kafka["config"]["unclean.leader.election.enable"] is False
    pools = {p["metadata"]["name"]: p["spec"] for p in objects(overlay, "KafkaNodePool")}
    assert pools["controllers"]["roles"] == ["controller"] and pools["controllers"]["replicas"] == 3
    assert pools["brokers"]["roles"] == ["broker"] and pools["brokers"]["replicas"] >= 3
    for pool in pools.values():
        assert pool["storage"]["type"] == "jbod"
        assert all(v["type"] == "persistent-claim" and v["deleteClaim"] is False for v in pool["storage"]["volumes"])
    if overlay == "production":
        assert kafka["rack"]["topologyKey"] == "topology.kubernetes.io/zone"


def measured_drain_rates() -> list[float]:
    """The 2-worker (2-core) drain rates of loadtests/README.md, every figure of the row."""
    text = (REPO / "loadtests" / "README.md").read_text()
    row = re.search(r"^\| 2 \| ([0-9., ]+) \| ([0-9., ]+) \|", text, re.MULTILINE)
    assert row, "the drain-rate table of loadtests/README.md has no 2-worker row"
    return [float(x) for group in row.groups() for x in group.split(",")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_scales_on_lag_as_derived(overlay: str) -> None:
    settings = overlay_settings(overlay, "intake-consumer")
    scaled = one(overlay, "ScaledObject", "intake-consumer")
    annotations = scaled["metadata"]["annotations"]
    rate = float(annotations["intake.prakerja.id/drain-rate-per-pod"])
    target_s = int(annotations["intake.prakerja.id/target-drain-seconds"])
    assert rate == min(measured_drain_rates()), "the slowest measured figure at the pod's 2 cores"
    (consumer,) = [c for name, c in containers(overlay) if name == "intake-consumer"]
    assert cpu_cores(consumer["resources"]["limits"]["cpu"]) == 2, "the rate was measured with 2 cores"
    (trigger,) = scaled["spec"]["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "kafka"
    assert int(meta["lagThreshold"]) == math.floor(rate * target_s)
    plaintext = dataclasses.replace(settings.kafka, ssl_cafile="", ssl_certfile="", ssl_keyfile="")  # no PEM here
    assert (
        meta["offsetResetPolicy"]
        == consumer_config(dataclasses.replace(settings, kafka=plaintext))["auto_offset_reset"]
    )
    assert meta["topic"] == topic_names(settings).submissions
    assert meta["consumerGroup"] == settings.kafka.group_id
    assert meta["bootstrapServers"] == settings.kafka.bootstrap
    assert scaled["spec"]["maxReplicaCount"] <= settings.kafka.partitions
    assert scaled["spec"]["scaleTargetRef"]["name"] == "intake-consumer"
    assert one(overlay, "PodDisruptionBudget", "intake-consumer")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_observability_is_generated_from_deploy_observability(overlay: str) -> None:
    obs = REPO / "deploy" / "observability"
    rule = one(overlay, "PrometheusRule", "intake")
    assert rule["spec"]["groups"] == yaml.safe_load((obs / "rules.yml").read_text())["groups"]
    dashboard = one(overlay, "ConfigMap", "intake-grafana-dashboard")
    assert dashboard["data"]["intake.json"] == (obs / "grafana-dashboard.json").read_text()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_api_is_reachable_and_only_the_app_reaches_kafka(overlay: str) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in objects(overlay, "NetworkPolicy")}
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    (api_in,) = policies["intake-api"]["ingress"]
    assert "from" not in api_in and api_in["ports"] == [{"port": "http", "protocol": "TCP"}]
    (consumer_in,) = policies["intake-consumer"]["ingress"]
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    assert consumer_in["from"] == [monitoring]
    (listener,) = one(overlay, "Kafka", "intake-kafka")["spec"]["kafka"]["listeners"]
    peers = [
        p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
        for p in listener["networkPolicyPeers"]
    ]
    assert set(peers) == {"intake-api", "intake-consumer", "intake-ops", None}  # None: KEDA's namespace
    assert listener["authentication"]["type"] == "tls"


def mounted_secret_key(overlay: str, deployment: str, path: str) -> tuple[str, str]:
    """The (Secret, key) that file ``path`` of ``deployment``'s container is projected from."""
    pod = one(overlay, "Deployment", deployment)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        folder = mount["mountPath"].rstrip("/") + "/"
        if not path.startswith(folder):
            continue
        for source in volumes[mount["name"]]["projected"]["sources"]:
            for item in source["secret"]["items"]:
                if folder + item["path"] == path:
                    return source["secret"]["name"], item["key"]
    raise AssertionError(f"{deployment}: {path} is not mounted")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_component_talks_to_kafka_with_its_own_kafka_user_certificate(overlay: str) -> None:
    users = {u["metadata"]["name"] for u in objects(overlay, "KafkaUser")}
    for deployment in ("intake-api", "intake-consumer"):
        k = overlay_settings(overlay, deployment).kafka
        assert mounted_secret_key(overlay, deployment, k.ssl_cafile) == ("intake-kafka-cluster-ca-cert", "ca.crt")
        assert mounted_secret_key(overlay, deployment, k.ssl_certfile) == (deployment, "user.crt")
        assert mounted_secret_key(overlay, deployment, k.ssl_keyfile) == (deployment, "user.key")
        assert deployment in users
    (listener,) = one(overlay, "Kafka", "intake-kafka")["spec"]["kafka"]["listeners"]
    assert listener["tls"] is True and int(k.bootstrap.rsplit(":", 1)[1]) == listener["port"]


def test_seaweedfs_chart_is_replicated_encrypted_and_authenticated() -> None:
    chart = rendered("seaweedfs")
    text = yaml.safe_dump_all(list(chart))
    assert "-encryptVolumeData" in text
    assert "-defaultReplication=010" in text and "-defaultReplicaPlacement=010" in text
    racks = set(re.findall(r"-rack=([a-z0-9-]+)", text))
    assert len(racks) >= 2, "replication 010 needs a second rack"
    (s3,) = [d for d in chart if d["kind"] == "Deployment" and d["metadata"]["name"] == "seaweedfs-s3"]
    pod = s3["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["WEED_S3_SSE_KEK"]["valueFrom"] == {"secretKeyRef": {"name": "intake-seaweedfs-sse", "key": "kek"}}
    assert any(v.get("secret", {}).get("secretName") == "intake-seaweedfs-s3" for v in pod["volumes"])
    settings = overlay_settings("production", "intake-api")
    host, port = settings.s3.endpoint.rsplit(":", 1)
    name, namespace, _ = host.split(".", 2)
    (service,) = [d for d in chart if d["kind"] == "Service" and d["metadata"]["name"] == name]
    assert namespace == "intake-storage" and int(port) in {p["port"] for p in service["spec"]["ports"]}
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "s3"
    assert settings.s3.encrypt


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaled_deployments_leave_the_replica_count_to_their_autoscaler(overlay: str) -> None:
    hpa = one(overlay, "HorizontalPodAutoscaler", "intake-api")["spec"]
    assert hpa["scaleTargetRef"]["name"] == "intake-api" and 2 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    for name in ("intake-api", "intake-consumer"):
        deployment = one(overlay, "Deployment", name)
        assert "replicas" not in deployment["spec"]
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert one(overlay, "PodDisruptionBudget", name)["spec"]["maxUnavailable"] == 1
        zones = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert {z["topologyKey"] for z in zones} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def test_the_readme_states_the_thresholds_the_overlays_use() -> None:
    readme = (K8S / "README.md").read_text()
    thresholds = []
    for overlay in OVERLAYS:
        scaled = one(overlay, "ScaledObject", "intake-consumer")
        (trigger,) = scaled["spec"]["triggers"]
        seconds = scaled["metadata"]["annotations"]["intake.prakerja.id/target-drain-seconds"]
        thresholds.append(f"{overlay} {trigger['metadata']['lagThreshold']}")
        assert f"{overlay} {seconds} s" in readme
    assert f"**`lagThreshold = floor(r · T)`**: {', '.join(thresholds)}." in readme
    assert f"**{min(measured_drain_rates())} photos/s per pod**" in readme


def test_production_fits_the_capacity_model_for_a_wave() -> None:
    """Production is sized for one wave of 600,000 applicants by the capacity model (loadtests/capacity_model.py)
    from the per-core rates measured on the reference machine (deploy/kubernetes/capacity-rates.json, written by
    ``loadtests.capacity measure``): at its minimum the API takes the peak minute (the autoscaler is slower than a
    wave's opening), at its maximum the consumers give every applicant a status within the hour, and the
    partitions and brokers are the model's at least."""
    rates = Rates(**json.loads((K8S / "capacity-rates.json").read_text()))
    (consumer,) = [c for name, c in containers("production") if name == "intake-consumer"]
    cores_per_consumer = int(cpu_cores(consumer["resources"]["limits"]["cpu"]))
    fleet = size_fleet(rates, CapacityWave(600_000, WAVE_MIX), cores_per_consumer=cores_per_consumer)
    api = overlay_settings("production", "intake-api")
    hpa = one("production", "HorizontalPodAutoscaler", "intake-api")["spec"]
    assert hpa["minReplicas"] * api.http.processes >= fleet.api_processes
    scaled = one("production", "ScaledObject", "intake-consumer")["spec"]
    assert scaled["maxReplicaCount"] * cores_per_consumer >= fleet.consumer_cores
    assert api.kafka.partitions >= max(fleet.partitions, scaled["maxReplicaCount"])
    brokers = one("production", "KafkaNodePool", "brokers")["spec"]["replicas"]
    assert brokers >= fleet.brokers
