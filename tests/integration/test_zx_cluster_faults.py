"""Broker failures on a 3-node KRaft cluster (replication 3, min ISR 2) under a steady stream of uploads.

The module starts its own cluster with ``deploy/local/stack.sh`` (``INTAKE_STACK_BROKERS=3``) in
``$INTAKE_STACK_DIR/cluster3`` (wiped first), on ports derived from the suite's stack: ``INTAKE_STACK_KAFKA_PORT``
+ 100 and ``INTAKE_STACK_KAFKA_CONTROLLER_PORT`` + 100 (then 10 apart per node, the stack's rule), with the suite's
MinIO; it stops the cluster at the end. One API and two consumers run through every step, never restarted:

1. the leader of the submissions partitions is killed (SIGKILL);
2. it is restarted;
3. the active controller (the KRaft quorum's leader) is killed, then restarted;
4. two of the three nodes are killed for 15 s, then restored: no write can reach two replicas, so the API must
   answer 503 ``queue_unavailable`` with Retry-After and never 202.

Each step is a row of the table (``reports/cluster-faults.md``): every submission that got 202 ends in MinIO
exactly once with the right content and its applicant registered once (``eligible``, never
``duplicate_registration``, though a record whose produce timed out may be in the log twice), 0 lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from intake.envelope import decode
from intake.kafka import describe_topics, ensure_topics, read_topic
from intake.settings import Settings
from intake.storage import MinioStore
from intake.topics import topic_names
from tests.integration.conftest import STACK, Consumers, started_api
from tests.integration.faults import HEADER, Audit, Stream, audit, expected_cards
from tests.support import client_key

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
NODES = (1, 2, 3)
PORT_OFFSET = 100
"""The test cluster's ports: the suite stack's Kafka ports + 100 (so nodes at K+100, K+110, K+120)."""


@dataclass
class Cluster:
    """The test's 3-node cluster: its folder, the environment ``stack.sh`` runs with, its bootstrap addresses."""

    folder: Path
    env: dict[str, str]
    bootstrap: str

    def stack(self, action: str) -> None:
        """``stack.sh ACTION`` on this cluster (``start-kafka`` starts the nodes that are down and waits)."""
        subprocess.run([str(STACK), action], env=self.env, check=True, capture_output=True, timeout=240)

    def pid(self, node: int) -> int:
        return int((self.folder / f"kafka-{node}" / "pid").read_text())

    def alive(self, node: int) -> bool:
        try:
            os.kill(self.pid(node), 0)
        except (ProcessLookupError, FileNotFoundError):
            return False
        return True

    def kill(self, node: int) -> None:
        """SIGKILL the node's JVM (no shutdown, no goodbye) and wait until it is gone."""
        pid = self.pid(node)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self.alive(node) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not self.alive(node), f"node {node} (pid {pid}) survived SIGKILL"

    def controller(self) -> int:
        """The KRaft quorum's leader, as the live nodes' ``quorum-state`` files name it (the latest epoch)."""
        best = (-1, -1)
        for node in NODES:
            if not self.alive(node):
                continue
            path = self.folder / f"kafka-{node}" / "data" / "__cluster_metadata-0" / "quorum-state"
            state = json.loads(path.read_text())
            if state.get("leaderId", -1) >= 0:
                best = max(best, (int(state["leaderEpoch"]), int(state["leaderId"])))
        assert best[1] in NODES, "no live node knows the quorum's leader"
        return best[1]


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default)) + PORT_OFFSET


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Starts the 3-node cluster (fails, never skips, when it cannot); stops it after the module."""
    base = Path(os.environ.get("INTAKE_STACK_DIR") or ROOT / ".stack")
    folder = base / "cluster3"
    shutil.rmtree(folder, ignore_errors=True)
    kafka_port = _port("INTAKE_STACK_KAFKA_PORT", 19092)
    controller_port = _port("INTAKE_STACK_KAFKA_CONTROLLER_PORT", 19093)
    env = {
        **os.environ,
        "INTAKE_STACK_BROKERS": "3",
        "INTAKE_STACK_DIR": str(folder),
        "INTAKE_STACK_KAFKA_PORT": str(kafka_port),
        "INTAKE_STACK_KAFKA_CONTROLLER_PORT": str(controller_port),
    }
    c = Cluster(folder, env, ",".join(f"127.0.0.1:{kafka_port + 10 * (n - 1)}" for n in NODES))
    try:
        c.stack("start-kafka")
    except subprocess.CalledProcessError as exc:
        logs = "".join(
            f"\n{log.name}: ...{log.read_text(errors='replace')[-1500:]}" for log in sorted(folder.glob("logs/*.log"))
        )
        with contextlib.suppress(subprocess.SubprocessError):  # the nodes that did start must not outlive the run
            c.stack("stop-kafka")
        pytest.fail(f"the 3-node cluster did not start: {exc.stderr.decode(errors='replace')[-2000:]}{logs}")
    try:
        yield c
    finally:
        c.stack("stop-kafka")


@pytest.fixture(scope="module")
def cluster_settings(cluster: Cluster, live_settings: Settings) -> Settings:
    """The session's settings pointed at the cluster, topics at replication 3, two consumers of one image process."""
    s = replace(
        live_settings,
        kafka=replace(live_settings.kafka, bootstrap=cluster.bootstrap, replication_factor=3),
        consumer=replace(live_settings.consumer, pool_workers=1),
    )
    asyncio.run(asyncio.wait_for(ensure_topics(s), 60))
    return s


async def _replicas(settings: Settings, topic: str) -> list[dict[str, Any]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [p for t in described if t["topic"] == topic for p in t["partitions"]]


def test_stack_env_and_topics_create_give_replication_3(cluster: Cluster, live_settings: Settings) -> None:
    """``stack.sh env`` lists the three nodes; ``intake topics create`` with it creates RF 3, min ISR 2 topics."""
    printed = subprocess.run(
        [str(STACK), "env"], env=cluster.env, check=True, capture_output=True, text=True, timeout=30
    ).stdout
    exported = dict(
        line.removeprefix("export ").split("=", 1) for line in printed.splitlines() if line.startswith("export ")
    )
    assert exported["INTAKE_KAFKA_BOOTSTRAP"] == cluster.bootstrap
    assert exported["INTAKE_TOPIC_REPLICATION"] == "3"
    status = subprocess.run(
        [str(STACK), "status"], env=cluster.env, check=False, capture_output=True, text=True, timeout=60
    ).stdout
    for node, address in enumerate(cluster.bootstrap.split(","), start=1):
        assert f"kafka node {node}: healthy ({address})" in status, status
    prefix = f"{live_settings.kafka.topic_prefix}-cli"
    env = {
        **os.environ,
        "INTAKE_KAFKA_BOOTSTRAP": exported["INTAKE_KAFKA_BOOTSTRAP"],
        "INTAKE_TOPIC_REPLICATION": exported["INTAKE_TOPIC_REPLICATION"],
        "INTAKE_TOPIC_PREFIX": prefix,
    }
    subprocess.run([str(ROOT / ".venv" / "bin" / "intake"), "topics", "create"], env=env, check=True, timeout=120)
    settings = replace(
        live_settings, kafka=replace(live_settings.kafka, bootstrap=cluster.bootstrap, topic_prefix=prefix)
    )
    for described in asyncio.run(describe_topics(settings)):
        assert described["error_code"] == 0, described
        assert described["replication_factor"] == 3, described
        assert described["config"]["min.insync.replicas"] == "2", described


def test_stack_refuses_ports_that_collide(cluster: Cluster) -> None:
    """Node 2's client port would be node 1's controller port: refused before anything starts."""
    kafka_port = int(cluster.env["INTAKE_STACK_KAFKA_PORT"])
    env = {**cluster.env, "INTAKE_STACK_KAFKA_CONTROLLER_PORT": str(kafka_port + 10)}
    done = subprocess.run([str(STACK), "start-kafka"], check=False, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"port {kafka_port + 10} is used twice" in done.stderr


def test_single_node_stays_the_default(cluster: Cluster) -> None:
    """Without INTAKE_STACK_BROKERS the same folder and ports describe today's single node."""
    env = {k: v for k, v in cluster.env.items() if k != "INTAKE_STACK_BROKERS"}
    printed = subprocess.run([str(STACK), "env"], env=env, check=True, capture_output=True, text=True).stdout
    assert f"export INTAKE_KAFKA_BOOTSTRAP=127.0.0.1:{env['INTAKE_STACK_KAFKA_PORT']}\n" in printed
    assert "INTAKE_TOPIC_REPLICATION" not in printed


RESULTS: list[Audit] = []
NOTES: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _table() -> Iterator[None]:
    yield
    if RESULTS:
        table = "\n".join([HEADER, *(r.row() for r in RESULTS), "", *NOTES])
        (ROOT / "reports").mkdir(exist_ok=True)
        (ROOT / "reports" / "cluster-faults.md").write_text(table + "\n")
        print("\n" + table)


async def _leader_of_submissions(settings: Settings) -> int:
    """The node leading the most partitions of the submissions topic."""
    leaders = [int(p["leader"]) for p in await _replicas(settings, topic_names(settings).submissions)]
    return max(set(leaders), key=leaders.count)


async def test_broker_failures_under_load(
    cluster: Cluster, cluster_settings: Settings, minio_store: MinioStore
) -> None:
    settings = cluster_settings
    cards = expected_cards(settings)
    client = await started_api(settings)
    url = str(client.make_url("")).rstrip("/")
    group = Consumers(settings)
    group.start()
    group.start()
    streams: list[Stream] = []

    async def step(fault: str, action: Callable[[], Awaitable[None]], before_s: float, after_s: float) -> Stream:
        stream = Stream(url, rate=6, key=client_key(settings))
        await stream.during(action, before_s, after_s)
        result = await audit(fault, stream, minio_store, settings, cards, timeout_s=180)
        RESULTS.append(result)
        streams.append(stream)
        assert result.lost == 0, result
        assert result.duplicated == 0, result
        assert result.persisted == result.acknowledged > 0, result
        assert stream.given_up == 0, "a submission was never accepted"
        assert stream.shed_without_retry_after == 0
        assert stream.client_errors == 0, "a client timed out or lost its connection instead of getting an answer"
        return stream

    async def restart() -> None:
        await asyncio.to_thread(cluster.stack, "start-kafka")

    try:
        leader = await _leader_of_submissions(settings)

        async def kill_leader() -> None:
            await asyncio.to_thread(cluster.kill, leader)

        await step(f"submissions leader {leader} kill -9", kill_leader, before_s=4, after_s=8)
        await step(f"node {leader} restarted", restart, before_s=2, after_s=4)

        controller = await asyncio.to_thread(cluster.controller)

        async def kill_controller() -> None:
            await asyncio.to_thread(cluster.kill, controller)
            await asyncio.sleep(8)
            await restart()

        await step(f"controller {controller} kill -9+restart", kill_controller, before_s=3, after_s=4)

        victims = [controller, *(n for n in NODES if n != controller)][:2]
        window: list[float] = []

        async def kill_two() -> None:
            for node in victims:
                await asyncio.to_thread(cluster.kill, node)
            window.append(time.monotonic())
            await asyncio.sleep(15)
            window.append(time.monotonic())
            await restart()

        two = await step(f"nodes {victims[0]}+{victims[1]} kill -9 15 s", kill_two, before_s=3, after_s=6)
        down, up = window
        during = [(status, code) for sent, answered, status, code in two.answers if sent >= down and answered < up]
        assert during, "no request was answered while two nodes were down"
        assert all(status != 202 for status, _ in during), "a 202 while two of three replicas were down"
        assert "queue_unavailable" in {code for _, code in during}, during

        # The API and both consumers ran through every step without a restart.
        assert all(not task.done() for task, _ in group.members), "a consumer stopped"
        assert (await client.get("/healthz")).status == 200

        acked = {sid for s in streams for sid in s.acked}
        in_log: list[str] = []
        async for record in read_topic(settings, topic_names(settings).submissions):
            in_log.append(decode(record.value).submission_id)
        distinct = set(in_log)
        assert acked <= distinct, "an acknowledged submission is not in the log"
        NOTES.append(
            f"submissions log: {len(in_log)} records, {len(distinct)} distinct submission ids, "
            f"{len(acked)} acknowledged; {len(during)} answers while two nodes were down, none 202"
        )
    finally:
        await group.close()
        await client.close()
