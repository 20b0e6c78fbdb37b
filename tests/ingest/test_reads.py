"""Reads sized by admission: small until an upload is admitted, then large (``ingest/reads.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from aiohttp import ClientSession, StreamReader, web
from aiohttp.test_utils import make_mocked_request, unused_port
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ingest.admission import Admission, Admit
from ingest.reads import FirstReads, first_reads, set_read_size, widen_reads
from ingest.server import FirstReadsSite
from intake.metrics import build_metrics
from intake.settings import Settings
from tests.support import unit_settings


class FakeTransport:
    def __init__(self) -> None:
        self.max_size = 256 * 1024

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


class Recorder(asyncio.Protocol):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.calls.append(("made", transport))

    def data_received(self, data: bytes) -> None:
        self.calls.append(("data", data))

    def eof_received(self) -> bool | None:
        self.calls.append(("eof", None))
        return True

    def pause_writing(self) -> None:
        self.calls.append(("pause", None))

    def resume_writing(self) -> None:
        self.calls.append(("resume", None))

    def connection_lost(self, exc: Exception | None) -> None:
        self.calls.append(("lost", exc))


def test_a_new_connection_reads_little_and_every_callback_reaches_the_handler() -> None:
    inner, transport = Recorder(), FakeTransport()
    proto = first_reads(lambda: inner, 16 * 1024)()
    assert isinstance(proto, FirstReads)
    proto.connection_made(transport)  # type: ignore[arg-type]
    assert transport.max_size == 16 * 1024
    proto.data_received(b"POST / HTTP/1.1\r\n")
    assert proto.eof_received() is True
    proto.pause_writing()
    proto.resume_writing()
    proto.connection_lost(None)
    assert [name for name, _ in inner.calls] == ["made", "data", "eof", "pause", "resume", "lost"]
    assert inner.calls[0][1] is transport


def test_transports_without_a_read_size_are_left_alone() -> None:
    assert not set_read_size(None, 1024)
    assert not set_read_size(object(), 1024)
    transport = FakeTransport()
    assert widen_reads(transport, 512 * 1024)
    assert transport.max_size == 512 * 1024


def _admission(settings: Settings) -> Admission:
    return Admission(settings, build_metrics(), client_of=lambda r: "web", admit_of=lambda r: Admit.UPLOAD)


async def _ok(request: web.Request) -> web.StreamResponse:
    return web.Response(status=202)


def _upload(transport: FakeTransport) -> web.Request:
    return make_mocked_request(
        "POST",
        "/v1/registrations",
        headers={"Content-Length": "1000"},
        transport=transport,
        payload=cast(StreamReader, object()),  # any payload but the empty one: the body exists, unread
    )


async def test_the_gate_widens_the_reads_of_an_admitted_upload_only() -> None:
    s = unit_settings()
    settings = replace(s, http=replace(s.http, first_read_bytes=8 * 1024, read_bytes=300 * 1024, max_in_flight=1))
    admission = _admission(settings)
    admitted = FakeTransport()
    admitted.max_size = 8 * 1024
    assert (await admission.gate(_upload(admitted), _ok)).status == 202
    assert admitted.max_size == 300 * 1024

    admission.in_flight = 1  # full: the next upload is refused
    refused = FakeTransport()
    refused.max_size = 8 * 1024
    assert (await admission.gate(_upload(refused), _ok)).status == 503
    assert refused.max_size == 8 * 1024


@contextlib.asynccontextmanager
async def _size_site(port: int, **site: Any) -> AsyncIterator[FirstReadsSite]:
    """A started :class:`FirstReadsSite` on ``port`` whose ``GET /size`` answers its connection's read size."""

    async def size(request: web.Request) -> web.StreamResponse:
        return web.Response(text=str(getattr(request.transport, "max_size", None)))

    app = web.Application()
    app.router.add_get("/size", size)
    runner = web.AppRunner(app)
    await runner.setup()
    started = FirstReadsSite(runner, "127.0.0.1", port, first_read_bytes=4096, **site)
    await started.start()
    try:
        yield started
    finally:
        await runner.cleanup()


async def test_the_site_starts_every_connection_with_the_first_read_size() -> None:
    port = unused_port()
    async with (
        _size_site(port, backlog=16),
        ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/size") as resp,
    ):
        assert await resp.text() == "4096"


async def test_the_site_keeps_what_aiohttps_site_does_its_port_and_tls(tmp_path: Path) -> None:
    """The site wraps the protocol factory only: an ephemeral port is reported and TLS is served."""
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    async with _size_site(0, ssl_context=server_tls) as site:
        assert site.port != 0 and site.name == f"https://127.0.0.1:{site.port}"
        async with ClientSession() as session, session.get(f"{site.name}/size", ssl=client_tls) as resp:
            assert resp.status == 200


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key (PEM files in ``folder``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path
