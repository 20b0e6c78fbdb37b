"""The service's Kafka clients over TLS with a client certificate, against a real broker that requires one
(as the Strimzi listener of deploy/kubernetes does): admin, producer, consumer group and lag sampler work with
the right certificate; another CA's certificate and plaintext are refused.

The broker is a second single-node Kafka from the local stack's jars (``stack.sh kafka-libs``) on free ports,
with certificates made by openssl for this module; it fails, never skips, when Java, the jars or openssl are
missing.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaError

from intake.kafka import build_consumer, build_producer, connection_config, describe_topics, ensure_topics
from intake.offsets import KafkaOffsetSource
from intake.settings import Settings, load_settings
from intake.topics import topic_names
from loadtests.procs import free_port
from tests.support import SECRET_ENV

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "deploy" / "local" / "stack.sh"
BASE = {
    **SECRET_ENV,
    "INTAKE_TOPIC_PREFIX": "tls",
    "INTAKE_TOPIC_PARTITIONS": "1",
    "INTAKE_CONSUMER_GROUP": "tls-workers",
    "INTAKE_KAFKA_REQUEST_TIMEOUT_MS": "5000",
}


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        pytest.fail("openssl not found")
    subprocess.run([exe, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _certificates(folder: Path) -> None:
    """A CA, the broker's certificate (for 127.0.0.1), a client signed by the CA, a stranger signed by another."""
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={ca}",
                 "-keyout", f"{ca}.key", "-out", f"{ca}.crt", cwd=folder)  # fmt: skip
    for name, ca, extra in (
        ("broker", "ca", ["-extfile", "san.cnf"]),
        ("user", "ca", []),
        ("stranger", "other-ca", []),
    ):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.rsa",
                 "-out", f"{name}.csr", cwd=folder)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
                 "-CAcreateserial", "-days", "1", "-out", f"{name}.crt", *extra, cwd=folder)  # fmt: skip
        _openssl("pkcs8", "-topk8", "-nocrypt", "-in", f"{name}.rsa", "-out", f"{name}.key", cwd=folder)
    (folder / "broker.pem").write_text((folder / "broker.key").read_text() + (folder / "broker.crt").read_text())


def _wait_for_port(port: int, process: subprocess.Popen[bytes], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the TLS broker exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)  # polling a child's port until it listens; nothing to wait on instead
    pytest.fail("the TLS broker did not listen in time")


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    folder = tmp_path_factory.mktemp("kafka-tls")
    _certificates(folder)
    libs = subprocess.run([str(STACK), "kafka-libs"], check=True, capture_output=True, text=True).stdout.strip()
    port, controller = free_port(), free_port()
    (folder / "server.properties").write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller}",
                f"listeners=SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
                f"advertised.listeners=SSL://127.0.0.1:{port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,SSL:SSL",
                "inter.broker.listener.name=SSL",
                f"log.dirs={folder / 'data'}",
                "auto.create.topics.enable=false",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "ssl.keystore.type=PEM",
                f"ssl.keystore.location={folder / 'broker.pem'}",
                "ssl.truststore.type=PEM",
                f"ssl.truststore.location={folder / 'ca.crt'}",
                "ssl.client.auth=required",
                "",
            ]
        )
    )
    java = ["java", "-Xmx384m", "-cp", f"{libs}/*"]
    cluster = subprocess.run(
        [*java, "kafka.tools.StorageTool", "random-uuid"], check=True, capture_output=True, text=True
    ).stdout.split()[-1]
    subprocess.run(
        [*java, "kafka.tools.StorageTool", "format", "-t", cluster, "-c", str(folder / "server.properties")],
        check=True,
        capture_output=True,
    )
    with (folder / "kafka.log").open("wb") as out:
        process = subprocess.Popen([*java, "kafka.Kafka", str(folder / "server.properties")], stdout=out, stderr=out)
    try:
        _wait_for_port(port, process, 90)
        yield folder, port
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _settings(tls_broker: tuple[Path, int], cert: str | None, ca: bool = True) -> Settings:
    folder, port = tls_broker
    env = {**BASE, "INTAKE_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}"}
    if ca:
        env["INTAKE_KAFKA_SSL_CAFILE"] = str(folder / "ca.crt")
    if cert:
        env["INTAKE_KAFKA_SSL_CERTFILE"] = str(folder / f"{cert}.crt")
        env["INTAKE_KAFKA_SSL_KEYFILE"] = str(folder / f"{cert}.key")
    return load_settings(env)


async def test_every_client_works_over_tls_with_a_client_certificate(tls_broker: tuple[Path, int]) -> None:
    settings = _settings(tls_broker, "user")
    topic = topic_names(settings).submissions
    deadline = time.monotonic() + 60
    while True:  # the broker listens before its metadata is ready
        try:
            await ensure_topics(settings)
            break
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)
    assert topic in {t["topic"] for t in await describe_topics(settings)}
    producer = build_producer(settings)
    await producer.start()
    try:
        delivered = await producer.send_and_wait(topic, b"value", key=b"key")
    finally:
        await producer.stop()
    consumer = build_consumer(settings, topic)
    await consumer.start()
    try:
        records: list[Any] = []
        while not records and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=2000)
            records = [r for rs in batch.values() for r in rs]
        assert [r.value for r in records] == [b"value"]
        await consumer.commit()
    finally:
        await consumer.stop()
    source = KafkaOffsetSource(partial(connection_config, settings), "tls-lag", settings.kafka.request_timeout_ms)
    try:
        (offsets,) = await source.read(settings.kafka.group_id, topic)
    finally:
        await source.close()
    assert offsets.end == offsets.committed == delivered.offset + 1


@pytest.mark.parametrize(("cert", "ca"), [("stranger", True), (None, False)], ids=["other_ca", "plaintext"])
async def test_a_client_without_the_clusters_certificate_is_refused(
    tls_broker: tuple[Path, int], cert: str | None, ca: bool
) -> None:
    settings = _settings(tls_broker, cert, ca)
    with pytest.raises((KafkaError, TimeoutError)):
        await asyncio.wait_for(describe_topics(settings), 20)
