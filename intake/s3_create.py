"""Conditional creates (``PUT`` with ``If-None-Match: *``) of small objects, on the event loop; and conditional
replaces (``If-Match: <etag>``, :meth:`ConditionalCreates.replace`) the same way.

Why not the MinIO SDK: its ``put_object`` cannot send ``If-None-Match``, and every blocking call goes through a
thread (``loop.run_in_executor``): a presigned URL, urllib3 and the thread hand-off cost the API ~0.55 ms of CPU
per create, about a fifth of what a whole 500 KB upload costs it. A new applicant's upload makes one create (its
data key, :mod:`intake.crypto`), so that cost lands on the front in the minute a wave opens. This client signs the
request itself (:class:`SigV4`, checked against the SDK's signer) and writes it on a kept-alive connection from
the event loop: 0.2-0.4 of the SDK path's CPU per create (``loadtests/bench_keys.py``).

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
  A request in flight when :meth:`close` is called closes its connection when it ends (it is never kept idle
  afterwards, where nobody would close it).
* Cancellation closes the connection of the request in flight.

Who closes: the owner calls :meth:`close` (synchronous; from the loop that used the connections, while it runs).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import ssl
import time
from dataclasses import dataclass

from minio.helpers import quote

_UNRESERVED_PATH = re.compile(r"[A-Za-z0-9_.~/-]*")
"""A path ``quote`` leaves as it is (RFC 3986 unreserved characters and ``/``): a data key's name always is."""

MAX_ANSWER_BYTES = 1 << 20
"""Largest answer body read (an S3 error document is a few hundred bytes); a longer one is a protocol error."""


@dataclass(frozen=True)
class Answer:
    """The server's answer: status, headers (names lower-case) and body."""

    status: int
    headers: dict[str, str]
    body: bytes


class SigV4:
    """AWS Signature Version 4 of one ``PUT`` with a fixed header set, for one endpoint and key pair: the headers
    the request carries, ``Authorization`` included. The same result as the MinIO SDK's ``sign_v4_s3`` (a test
    compares them), without its general canonicalisation (a fifth of a create's CPU): the signing key is derived
    once a day, the canonical request is one string."""

    def __init__(self, host: str, access_key: str, secret_key: str, region: str) -> None:
        self._host, self._access_key, self._region = host, access_key, region
        self._secret = ("AWS4" + secret_key).encode()
        self._day, self._key = "", b""

    def _signing_key(self, day: str) -> bytes:
        if day != self._day:
            key = self._secret
            for part in (day, self._region, "s3", "aws4_request"):
                key = hmac.digest(key, part.encode(), "sha256")
            self._day, self._key = day, key
        return self._key

    def head(self, path: str, content_type: str, data: bytes, condition: tuple[str, str], amz_date: str) -> str:
        """The header lines (each ending in CRLF) of ``PUT path`` with ``data`` at ``amz_date``
        (``YYYYMMDDTHHMMSSZ``). ``path`` is already URI-encoded; header values must be single-line."""
        cond_name, cond_value = condition[0].lower(), condition[1].strip()
        if any("\n" in v or "\r" in v for v in (content_type, cond_value)):
            raise ValueError("header values must be single-line")
        sha = hashlib.sha256(data).hexdigest()
        signed = f"content-length;content-type;host;{cond_name};x-amz-content-sha256;x-amz-date"
        canonical = (
            f"PUT\n{path}\n\ncontent-length:{len(data)}\ncontent-type:{content_type}\nhost:{self._host}\n"
            f"{cond_name}:{cond_value}\nx-amz-content-sha256:{sha}\nx-amz-date:{amz_date}\n\n{signed}\n{sha}"
        )
        scope = f"{amz_date[:8]}/{self._region}/s3/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.digest(self._signing_key(amz_date[:8]), to_sign.encode(), "sha256").hex()
        return (
            f"Host: {self._host}\r\nContent-Length: {len(data)}\r\nContent-Type: {content_type}\r\n"
            f"{condition[0]}: {cond_value}\r\nx-amz-content-sha256: {sha}\r\nx-amz-date: {amz_date}\r\n"
            f"Authorization: AWS4-HMAC-SHA256 Credential={self._access_key}/{scope}, SignedHeaders={signed}, "
            f"Signature={signature}\r\n"
        )


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def close(self) -> None:
        if not self.writer.transport.is_closing():
            self.writer.close()


class ConditionalCreates:
    """Signed conditional ``PUT`` requests (``If-None-Match: *`` to create, ``If-Match`` to replace) to one S3
    endpoint (path-style URLs), over kept-alive connections. See the module docstring for the contract."""

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
        self._ssl = ssl.create_default_context() if secure else None
        self._signer = SigV4(endpoint, access_key, secret_key, region)
        self._connections = connections
        self._connect_timeout_s, self._read_timeout_s = connect_timeout_s, read_timeout_s
        self._idle: list[_Connection] = []
        self._closes = 0
        """How many times :meth:`close` ran: a request keeps its connection idle only if none ran meanwhile."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None

    def close(self) -> None:
        """Close the idle connections (requests in flight close theirs when they end)."""
        self._closes += 1
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
        closes = self._closes
        async with self._slots:
            conn = self._idle.pop() if self._idle else None
            if conn is not None:
                try:
                    return await self._exchange(conn, request, closes)
                except _NoAnswer:
                    pass  # the server closed the idle connection: once more on a fresh one
            conn = await self._open()
            try:
                return await self._exchange(conn, request, closes)
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
        """The whole request (head and body): ``PUT`` of ``data`` with the ``condition`` header, signed."""
        path = _quoted(f"/{bucket}/{key}")
        head = self._signer.head(path, content_type, data, condition, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        return f"PUT {path} HTTP/1.1\r\n{head}\r\n".encode("latin-1") + data

    async def _exchange(self, conn: _Connection, request: bytes, closes: int) -> Answer:
        """Write ``request`` and read the whole answer. Puts ``conn`` back in the idle list when it may be
        reused and :meth:`close` has not run since the request began (``closes``), closes it otherwise. Raises
        :class:`_NoAnswer` when the connection ended before any answer byte, ``OSError`` for any other failure."""
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
            if reuse and closes == self._closes and asyncio.get_running_loop() is self._loop:
                self._idle.append(conn)
            else:
                conn.close()


class _NoAnswer(ConnectionError):
    """The connection ended before the first byte of an answer."""


def _quoted(path: str) -> str:
    """``path`` URI-encoded as the MinIO SDK's ``quote`` does (``/`` kept), without its per-character pass when
    there is nothing to encode."""
    return path if _UNRESERVED_PATH.fullmatch(path) else quote(path)


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """(status, headers with lower-case names) of an answer's head, ending in an empty line. An HTTP/1.0 answer
    without ``Connection: keep-alive`` gets ``connection: close``. Raises ``ConnectionError`` when the status line
    is not HTTP/1.x."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ConnectionError("not an HTTP/1.x answer")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    if parts[0] == b"HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
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
