"""The conditional-create client against scripted HTTP servers (the real S3 servers: test_storage_contract.py)."""

from __future__ import annotations

import asyncio
import hashlib
import random
import string
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from minio.credentials.credentials import Credentials
from minio.helpers import quote
from minio.signer import sign_v4_s3

from intake.s3_create import MAX_ANSWER_BYTES, ConditionalCreates, SigV4, _parse_head, _quoted

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]
"""Serves one connection; the int is the connection's number (0, 1, ...)."""

CREATED = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """(head, body) of one request (bodies have a Content-Length here)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    return head, await reader.readexactly(length)


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[int]:
    """A server on an ephemeral port running ``handler`` for each connection; yields the port."""
    count = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        n, count = count, count + 1
        try:
            await handler(reader, writer, n)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
        await srv.wait_closed()


def client(port: int, read_timeout_s: float = 5.0, connections: int = 2) -> ConditionalCreates:
    return ConditionalCreates(
        f"127.0.0.1:{port}",
        access_key="AKIDEXAMPLE",
        secret_key="secret",
        region="us-east-1",
        secure=False,
        connections=connections,
        connect_timeout_s=5.0,
        read_timeout_s=read_timeout_s,
    )


async def test_a_signed_conditional_put_on_one_kept_alive_connection() -> None:
    connections: list[int] = []
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        connections.append(n)
        while True:
            head, body = await read_request(reader)
            heads.append(head)
            assert body == b'{"k": 1}'
            writer.write(CREATED)

    async with server(handler) as port:
        creates = client(port)
        try:
            for _ in range(3):
                answer = await creates.create("bucket", "keys/ab cd.json", b'{"k": 1}', "application/json")
                assert answer.status == 200
        finally:
            creates.close()
    assert connections == [0]  # one connection carried all three
    head = heads[0].decode()
    assert head.startswith("PUT /bucket/keys/ab%20cd.json HTTP/1.1\r\n")
    assert "If-None-Match: *\r\n" in head
    assert "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/" in head
    assert "if-none-match" in head.split("SignedHeaders=", 1)[1].split(",", 1)[0]  # the condition is signed


async def test_a_conditional_replace_sends_the_etag_signed() -> None:
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        head, _ = await read_request(reader)
        heads.append(head)
        writer.write(CREATED)

    async with server(handler) as port:
        creates = client(port)
        try:
            answer = await creates.replace("bucket", "keys/a.json", b"{}", "application/json", '"abc123"')
        finally:
            creates.close()
    head = heads[0].decode()
    assert answer.status == 200 and 'If-Match: "abc123"\r\n' in head and "If-None-Match" not in head
    assert "if-match" in head.split("SignedHeaders=", 1)[1].split(",", 1)[0]


async def test_an_error_answer_is_returned_whole_even_chunked() -> None:
    xml = b"<Error><Code>PreconditionFailed</Code></Error>"

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 412 Precondition Failed\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, xml[:10], len(xml) - 10, xml[10:]))

    async with server(handler) as port:
        creates = client(port)
        try:
            answer = await creates.create("b", "k", b"x", "text/plain")
        finally:
            creates.close()
    assert (answer.status, answer.body) == (412, xml)


async def test_an_idle_connection_the_server_closed_is_replaced_once() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(CREATED)  # keep-alive answer, then the server drops the connection while it is idle
        await writer.drain()

    async with server(handler) as port:
        creates = client(port)
        try:
            assert (await creates.create("b", "k1", b"x", "text/plain")).status == 200
            await asyncio.sleep(0.05)  # let the close arrive (the outcome is the same if it has not yet)
            assert (await creates.create("b", "k2", b"x", "text/plain")).status == 200
        finally:
            creates.close()


async def test_connection_close_answers_are_not_reused_and_unframed_bodies_end_with_the_connection() -> None:
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        connections.append(n)
        await read_request(reader)
        writer.write(b"HTTP/1.1 503 Slow Down\r\nConnection: close\r\n\r\n<Error><Code>SlowDown</Code></Error>")

    async with server(handler) as port:
        creates = client(port)
        try:
            for _ in range(2):
                answer = await creates.create("b", "k", b"x", "text/plain")
                assert (answer.status, answer.body) == (503, b"<Error><Code>SlowDown</Code></Error>")
        finally:
            creates.close()
    assert connections == [0, 1]


@pytest.mark.parametrize(
    "reply",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",  # not HTTP
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # the body ends early
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_ANSWER_BYTES + 1),  # too long
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # a bad chunk size
        b"HTTP/1.1 200",  # the head ends early
        b"",  # closed without a byte, twice (the retry on a fresh connection gets the same)
    ],
)
async def test_a_broken_answer_raises_connection_error(reply: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(reply)
        await writer.drain()

    async with server(handler) as port:
        creates = client(port)
        try:
            with pytest.raises(ConnectionError):
                await creates.create("b", "k", b"x", "text/plain")
        finally:
            creates.close()


async def test_a_server_that_never_answers_times_out_and_its_connection_is_dropped() -> None:
    connections: list[int] = []
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        connections.append(n)
        await read_request(reader)
        if n == 0:
            await release.wait()
        else:
            writer.write(CREATED)

    async with server(handler) as port:
        creates = client(port, read_timeout_s=0.2)
        try:
            with pytest.raises(TimeoutError):
                await creates.create("b", "k", b"x", "text/plain")
            assert (await creates.create("b", "k", b"x", "text/plain")).status == 200
        finally:
            release.set()
            creates.close()
    assert connections == [0, 1]  # the stalled connection was not reused


async def test_at_most_connections_requests_at_once() -> None:
    in_flight, peak = 0, 0
    go, two_in = asyncio.Event(), asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        nonlocal in_flight, peak
        while True:
            await read_request(reader)
            in_flight += 1
            peak = max(peak, in_flight)
            if in_flight == 2:
                two_in.set()
            await go.wait()
            in_flight -= 1
            writer.write(CREATED)

    async with server(handler) as port:
        creates = client(port)
        try:
            calls = [asyncio.ensure_future(creates.create("b", f"k{i}", b"x", "text/plain")) for i in range(5)]
            await two_in.wait()
            await asyncio.sleep(0.1)  # time for a third request to arrive, were the bound broken
            go.set()
            answers = await asyncio.gather(*calls)
        finally:
            creates.close()
    assert [a.status for a in answers] == [200] * 5
    assert peak == 2


def test_at_least_one_connection() -> None:
    with pytest.raises(ValueError, match="connections"):
        client(1, connections=0)


@pytest.mark.parametrize("condition", [("If-None-Match", "*"), ("If-Match", '"5d41402abc4b2a76b9719d911017c592"')])
def test_the_signature_is_the_sdks(condition: tuple[str, str]) -> None:
    when = datetime(2026, 12, 1, 4, 5, 6, tzinfo=UTC)
    data, path = b'{"v": 1}', quote("/intake-keys/keys/ab cd.json")
    ours = SigV4("127.0.0.1:9000", "AKIDEXAMPLE", "secret/key", "id-jakarta-1").head(
        path, "application/json", data, condition, when.strftime("%Y%m%dT%H%M%SZ")
    )
    sha = hashlib.sha256(data).hexdigest()
    theirs = sign_v4_s3(
        method="PUT",
        url=urlsplit(f"http://127.0.0.1:9000{path}"),
        region="id-jakarta-1",
        headers={
            "Host": "127.0.0.1:9000",
            "Content-Length": str(len(data)),
            "Content-Type": "application/json",
            condition[0]: condition[1],
            "x-amz-content-sha256": sha,
            "x-amz-date": when.strftime("%Y%m%dT%H%M%SZ"),
        },
        credentials=Credentials("AKIDEXAMPLE", "secret/key"),
        content_sha256=sha,
        date=when,
    )
    assert ours == "".join(f"{name}: {value}\r\n" for name, value in theirs.items())


def test_a_header_value_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="single-line"):
        SigV4("h:1", "a", "s", "r").head(
            "/b/k", "text/plain\r\nX-Evil: 1", b"", ("If-None-Match", "*"), "20261201T000000Z"
        )


async def test_a_request_in_flight_at_close_closes_its_connection_when_it_ends() -> None:
    received, answer, ended = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        received.set()
        await answer.wait()
        writer.write(CREATED)  # a keep-alive answer: the client would keep the connection for reuse
        await writer.drain()
        assert await reader.read() == b""  # the client closes it: no second request, no connection left open
        ended.set()

    async with server(handler) as port:
        creates = client(port)
        call = asyncio.ensure_future(creates.create("b", "k", b"x", "text/plain"))
        await received.wait()
        creates.close()  # the owner closes while the create is under way
        answer.set()
        assert (await call).status == 200
        async with asyncio.timeout(5):
            await ended.wait()
        creates.close()


def test_a_path_is_quoted_as_the_sdk_quotes_it() -> None:
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "_.~/-" + " %+?#&=:@!$'()*,;é\u00a0\n"
    paths = ["/intake-keys/keys/" + "ab" * 32 + ".json", "/b/keys/ab cd.json", "/b/~x", "/b/%7E"]
    paths += ["/" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    for path in paths:
        assert _quoted(path) == quote(path), path


def test_an_answer_head_is_parsed_to_its_status_and_lower_case_headers() -> None:
    head = b"HTTP/1.1 412 Precondition Failed\r\nContent-Length: 12\r\nX-Amz-Request-Id:  ab \r\nbogus\r\n\r\n"
    assert _parse_head(head) == (412, {"content-length": "12", "x-amz-request-id": "ab"})
    assert _parse_head(b"HTTP/1.0 200 OK\r\n\r\n") == (200, {"connection": "close"})
    assert _parse_head(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n") == (200, {"connection": "Keep-Alive"})
    for bad in (b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 2\xb2 OK\r\n\r\n", b"HTTP/2 200\r\n\r\n", b"HTTP/1.1\r\n\r\n"):
        with pytest.raises(ConnectionError):
            _parse_head(bad)
