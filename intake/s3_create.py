"""Conditional creates (``PUT`` with ``If-None-Match: *``) of small objects, on the event loop; and conditional
replaces (``If-Match: <etag>``, :meth:`ConditionalCreates.replace`) the same way.

Why not the MinIO SDK: its ``put_object`` cannot send ``If-None-Match``, and every blocking call goes through a
thread (``loop.run_in_executor``): a presigned URL, urllib3 and the thread hand-off cost the API ~0.55 ms of CPU
per create, about a fifth of what a whole 500 KB upload costs it. A new applicant's upload makes one create (its
data key, :mod:`intake.crypto`), so that cost lands on the front in the minute a wave opens. This client signs the
request with the SDK's own SigV4 signer and writes it on a kept-alive connection from the event loop: ~0.1 ms
(``loadtests/bench_keys.py``).

Contract of :meth:`ConditionalCreates.create`:

* Answers the server's :class:`Answer` (status, headers, body) for ``2xx`` (created) and for any error status; the
  caller (:meth:`intake.storage.MinioStore.put_if_absent`) reads the S3 error code from the body.
* Raises :class:`OSError` (``ConnectionError``, ``TimeoutError`` after ``connect_timeout_s``/``read_timeout_s``,
  ``asyncio.IncompleteReadError`` is turned into ``ConnectionError``) when there is no complete answer; the
  connection is then closed, never reused. A reused connection the server had closed while idle is retried once
  on a fresh one before any answer byte was read (safe: a create that had landed is answered 412 the second time,
  and the caller reads the stored object).
* At most ``connections`` requests run at once (the others wait for a free connection); idle connections are
  kept for reuse. Connections belong to the event loop that opened them: a call from another loop drops them.
* Cancellation closes the connection of the request in flight.

Who closes: the owner calls :meth:`close` (synchronous; from the loop that used the connections, while it runs).
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from minio.credentials.credentials import Credentials
from minio.helpers import quote
from minio.signer import sign_v4_s3

MAX_ANSWER_BYTES = 1 << 20
"""Largest answer body read (an S3 error document is a few hundred bytes); a longer one is a protocol error."""


@dataclass(frozen=True)
class Answer:
    """The server's answer: status, headers (names lower-case) and body."""

    status: int
    headers: dict[str, str]
    body: bytes


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def close(self) -> None:
        if not self.writer.transport.is_closing():
            self.writer.close()


class ConditionalCreates:
    """Signed ``PUT If-None-Match: *`` requests to one S3 endpoint (path-style URLs), over kept-alive connections.
    See the module docstring for the contract."""

    def __init__(
        self,
        endpoint: str,
        *,
        access_key: str,
        secret_key: str,
        region: str,
        secure: bool,
        connections: int,
        connect_timeout_s: float,
        read_timeout_s: float,
    ) -> None:
        if connections < 1:
            raise ValueError("connections must be at least 1")
        host, _, port = endpoint.rpartition(":")
        if not host:
            host, port = endpoint, ""
        self._host = host
        self._port = int(port) if port else (443 if secure else 80)
        self._authority = endpoint
        self._scheme = "https" if secure else "http"
        self._ssl = ssl.create_default_context() if secure else None
        self._credentials = Credentials(access_key, secret_key)
        self._region = region
        self._connections = connections
        self._connect_timeout_s, self._read_timeout_s = connect_timeout_s, read_timeout_s
        self._idle: list[_Connection] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None

    def close(self) -> None:
        """Close the idle connections (requests in flight close theirs when they end)."""
        idle, self._idle = self._idle, []
        loop = self._loop
        if loop is not None and not loop.is_closed():
            for conn in idle:
                conn.close()

    async def create(self, bucket: str, key: str, data: bytes, content_type: str) -> Answer:
        """Send the conditional create of ``bucket/key``; the server's answer (see the module docstring)."""
        return await self._send(self._request(bucket, key, data, content_type, ("If-None-Match", "*")))

    async def replace(self, bucket: str, key: str, data: bytes, content_type: str, etag: str) -> Answer:
        """Send a replace of ``bucket/key`` conditional on its ETag (``If-Match``), as :meth:`create` (a key
        rotation's rewrap, :meth:`intake.storage.MinioStore.put_if_match`). A request retried on a fresh connection
        after its first copy landed is answered 412: the caller then takes the object as changed meanwhile."""
        return await self._send(self._request(bucket, key, data, content_type, ("If-Match", etag)))

    async def _send(self, request: bytes) -> Answer:
        self._bind_loop()
        assert self._slots is not None
        async with self._slots:
            conn = self._idle.pop() if self._idle else None
            if conn is not None:
                try:
                    return await self._exchange(conn, request)
                except _NoAnswer:
                    pass  # the server closed the idle connection: once more on a fresh one
            conn = await self._open()
            try:
                return await self._exchange(conn, request)
            except _NoAnswer as exc:
                raise ConnectionError("the S3 server closed the connection without answering") from exc

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self.close()
            self._loop, self._slots = loop, asyncio.Semaphore(self._connections)

    async def _open(self) -> _Connection:
        async with asyncio.timeout(self._connect_timeout_s):
            reader, writer = await asyncio.open_connection(
                self._host, self._port, ssl=self._ssl, limit=MAX_ANSWER_BYTES
            )
        return _Connection(reader, writer)

    def _request(self, bucket: str, key: str, data: bytes, content_type: str, condition: tuple[str, str]) -> bytes:
        path = quote(f"/{bucket}/{key}")
        sha = hashlib.sha256(data).hexdigest()
        now = datetime.datetime.now(datetime.UTC)
        headers: dict[str, str | list[str] | tuple[str]] = {
            "Host": self._authority,
            "Content-Length": str(len(data)),
            "Content-Type": content_type,
            condition[0]: condition[1],
            "x-amz-content-sha256": sha,
            "x-amz-date": now.strftime("%Y%m%dT%H%M%SZ"),
        }
        signed = sign_v4_s3(
            method="PUT",
            url=urlsplit(f"{self._scheme}://{self._authority}{path}"),
            region=self._region,
            headers=headers,
            credentials=self._credentials,
            content_sha256=sha,
            date=now,
        )
        head = "".join(f"{name}: {value}\r\n" for name, value in signed.items())
        return f"PUT {path} HTTP/1.1\r\n{head}\r\n".encode("latin-1") + data

    async def _exchange(self, conn: _Connection, request: bytes) -> Answer:
        """Write ``request`` and read the whole answer. Puts ``conn`` back in the idle list when it may be
        reused, closes it otherwise. Raises :class:`_NoAnswer` when the connection ended before any answer byte,
        ``OSError`` for any other failure."""
        reuse = False
        try:
            conn.writer.write(request)
            async with asyncio.timeout(self._read_timeout_s):
                try:
                    head = await conn.reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError as exc:
                    if not exc.partial:
                        raise _NoAnswer from exc
                    raise ConnectionError("the S3 answer ended inside its head") from exc
                except asyncio.LimitOverrunError as exc:
                    raise ConnectionError("the S3 answer's head is too long") from exc
                status, headers = _parse_head(head)
                body, reuse = await _read_body(conn.reader, status, headers)
            return Answer(status, headers, body)
        except ConnectionResetError as exc:
            raise _NoAnswer from exc
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise ConnectionError("the S3 answer ended inside its body or has an over-long line") from exc
        finally:
            if reuse and asyncio.get_running_loop() is self._loop:
                self._idle.append(conn)
            else:
                conn.close()


class _NoAnswer(ConnectionError):
    """The connection ended before the first byte of an answer."""


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ConnectionError("not an HTTP/1.x answer")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if parts[0] == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
        headers.setdefault("connection", "close")
    return int(parts[1]), headers


async def _read_body(reader: asyncio.StreamReader, status: int, headers: dict[str, str]) -> tuple[bytes, bool]:
    """The body and whether the connection may carry another request. Raises ``OSError`` for a malformed or too
    long body."""
    keep = headers.get("connection", "").lower() != "close"
    if status in (204, 304) or 100 <= status < 200:
        return b"", keep
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return await _read_chunked(reader), keep
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit() or int(length) > MAX_ANSWER_BYTES:
            raise ConnectionError("the S3 answer has a bad or too large Content-Length")
        return await reader.readexactly(int(length)), keep
    chunks: list[bytes] = []  # no length: the body ends with the connection
    size = 0
    while chunk := await reader.read(65536):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise ConnectionError("the S3 answer is too long")
        chunks.append(chunk)
    return b"".join(chunks), False


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        digits = line.split(b";", 1)[0].strip()
        try:
            n = int(digits, 16)
        except ValueError:
            raise ConnectionError("the S3 answer has a bad chunk size") from None
        if n == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return b"".join(chunks)
        size += n
        if size > MAX_ANSWER_BYTES:
            raise ConnectionError("the S3 answer is too long")
        chunks.append(await reader.readexactly(n))
        await reader.readexactly(2)
