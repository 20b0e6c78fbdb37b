"""Kafka client connection settings: plaintext by default, TLS with a client certificate when configured
(the Strimzi KafkaUsers of deploy/kubernetes authenticate by certificate)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from intake.kafka import confluent_config, connection_config, consumer_config, producer_config
from intake.settings import SettingsError, load_settings
from tests.support import SECRET_ENV

BASE = {
    **SECRET_ENV,
    "INTAKE_KAFKA_BOOTSTRAP": "kafka:9093",
}


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and its key (openssl, as on every machine the stack runs on)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl not found")
    folder = tmp_path_factory.mktemp("pem")
    cert, key = folder / "user.crt", folder / "user.key"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=intake-test"]
    subprocess.run(
        [openssl, *request, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_plaintext_by_default() -> None:
    s = load_settings(BASE)
    assert connection_config(s) == {"bootstrap_servers": "kafka:9093"}
    assert "security_protocol" not in producer_config(s) and "security_protocol" not in consumer_config(s)
    assert "security.protocol" not in confluent_config(s)


def test_tls_with_a_client_certificate(pem: tuple[Path, Path]) -> None:
    cert, key = pem
    s = load_settings(
        {
            **BASE,
            "INTAKE_KAFKA_SSL_CAFILE": str(cert),
            "INTAKE_KAFKA_SSL_CERTFILE": str(cert),
            "INTAKE_KAFKA_SSL_KEYFILE": str(key),
        }
    )
    for config in (connection_config(s), producer_config(s), consumer_config(s)):
        assert config["security_protocol"] == "SSL"
        context = config["ssl_context"]
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert context.cert_store_stats()["x509_ca"] == 1
    librdkafka = confluent_config(s)  # the librdkafka producers (rdkafka, the default, and confluent) speak TLS too
    assert librdkafka["security.protocol"] == "ssl"
    assert (librdkafka["ssl.ca.location"], librdkafka["ssl.certificate.location"]) == (str(cert), str(cert))
    assert librdkafka["ssl.key.location"] == str(key)


def test_tls_without_a_client_certificate(pem: tuple[Path, Path]) -> None:
    s = load_settings({**BASE, "INTAKE_KAFKA_SSL_CAFILE": str(pem[0])})
    assert connection_config(s)["security_protocol"] == "SSL"
    assert confluent_config(s)["security.protocol"] == "ssl" and "ssl.certificate.location" not in confluent_config(s)


def test_an_unreadable_ca_file_fails_before_connecting(tmp_path: Path) -> None:
    s = load_settings({**BASE, "INTAKE_KAFKA_SSL_CAFILE": str(tmp_path / "missing.crt")})
    with pytest.raises(OSError):
        connection_config(s)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"INTAKE_KAFKA_SSL_CERTFILE": "user.crt"}, "set together"),
        ({"INTAKE_KAFKA_SSL_KEYFILE": "user.key"}, "set together"),
        ({"INTAKE_KAFKA_SSL_CERTFILE": "user.crt", "INTAKE_KAFKA_SSL_KEYFILE": "user.key"}, "needs"),
    ],
)
def test_inconsistent_tls_settings_are_refused(extra: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({**BASE, **extra})
