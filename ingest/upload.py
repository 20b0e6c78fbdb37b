"""Reading an upload: a ``multipart/form-data`` body with a ``registration`` JSON part and a ``ktp_photo`` part.

The declared Content-Length is checked before any byte is read, so a body over ``max_body_bytes`` is refused
unread; a body within it is read whole (it cannot grow past its Content-Length) and split in memory. A chunked
body (no length) is read as it streams and every chunk counted, so it too is refused after at most the limit.
Each part is held to its own limit. The whole read is bounded by a deadline (slow clients). Raises
:class:`UploadError` with a reason code; never returns partial data.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from aiohttp import BodyPartReader, MultipartReader, StreamReader, hdrs, web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.helpers import parse_mimetype
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.streams import EmptyStreamReader
from aiohttp.web_protocol import RequestPayloadError

from ingest.expect import continue_body
from ingest.form_split import PLAIN_DISPOSITION, split_form
from intake.settings import Limits
from processors.photo import PhotoBytes

REGISTRATION_PART = "registration"
PHOTO_PART = "ktp_photo"
_CHUNK = 64 * 1024
_DEFAULT_READ_LIMIT = 2**16
"""aiohttp's read buffer limit of a request stream (``read_bufsize``), for a body that has none (empty)."""
_BROKEN = (ValueError, AssertionError, RuntimeError, RequestPayloadError, HttpProcessingError, ConnectionResetError)
"""What aiohttp raises for a body that cannot be read as a form: broken boundaries or part headers, a body cut
short of its Content-Length, undecodable parts, a client gone mid-body."""


class UploadError(Exception):
    """An upload that cannot be read: ``code`` is a reason code, ``detail`` optional non-personal facts."""

    def __init__(self, code: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail or {}


@dataclass(frozen=True)
class Upload:
    """The parts of an upload as received: parsed registration JSON and the raw photo bytes (a view of the body
    when the body was read whole and split in memory: the photo is not copied out of it)."""

    registration: dict[str, Any]
    photo: PhotoBytes
    body_bytes: int


def part_name(part: BodyPartReader) -> str | None:
    """``part.name``: the same answer, read with one regular expression when the part's Content-Disposition has the
    plain form (:data:`ingest.form_split.PLAIN_DISPOSITION`), else by aiohttp's general parser (RFC 2231/5987
    names, escapes, odd spacing, broken headers).
    That parser costs ~20 µs a call (aiohttp 3.14 rebuilds a 128-character escaping class on every call), and
    ``part.name`` is asked once per part of every upload."""
    header = part.headers.get(hdrs.CONTENT_DISPOSITION)
    plain = PLAIN_DISPOSITION.fullmatch(header) if header is not None else None
    return plain.group(1) if plain is not None else part.name


class _Limit(NamedTuple):
    """A part's size limit, and the reason code of a part past it."""

    size: int
    code: str


class _Form:
    """The parts of one upload as they are read, in order: at most one of each part, each within its limit. What
    the two readers below decide alike."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self.registration: bytes | None = None
        self.photo: PhotoBytes | None = None

    def limit_of(self, name: str | None) -> _Limit:
        """The limit of a part named ``name`` coming next; raises :class:`UploadError` for a part that is not
        expected (unknown, or a second one)."""
        if name == REGISTRATION_PART and self.registration is None:
            return _Limit(self._limits.max_registration_bytes, "body_too_large")
        if name == PHOTO_PART and self.photo is None:
            return _Limit(self._limits.max_photo_bytes, "photo_too_large")
        raise UploadError("malformed_multipart", {"unexpected_part": (name or "")[:64]})

    def put(self, name: str | None, data: bytes | memoryview) -> None:
        if name == REGISTRATION_PART:
            self.registration = bytes(data)  # small; json.loads takes no view
        else:
            self.photo = data

    def upload(self) -> Upload:
        """The upload, once every part was read. Raises :class:`UploadError` for a missing part, an empty photo,
        or a registration that is not a JSON object."""
        if self.registration is None:
            raise UploadError("missing_part", {"part": REGISTRATION_PART})
        if self.photo is None:
            raise UploadError("missing_part", {"part": PHOTO_PART})
        if not self.photo:
            raise UploadError("photo_empty")
        try:
            registration = json.loads(self.registration)
        except (ValueError, RecursionError):  # bad UTF-8, bad JSON, integers past Python's digit limit, deep nesting
            raise UploadError("invalid_json") from None
        if not isinstance(registration, dict):
            raise UploadError("invalid_json")
        return Upload(registration, self.photo, len(self.registration) + len(self.photo))


async def read_upload(request: web.Request, limits: Limits, timeout_s: float) -> Upload:
    """Read and check the upload in ``request``. Blocks until the body is read, at most ``timeout_s``.

    A body of declared length (what browsers send) is read whole (it is at most ``max_body_bytes``), then split by
    :func:`ingest.form_split.split_form`, or, when not in its strict form, read from memory by aiohttp's reader.
    A chunked body is read by aiohttp's reader as it arrives, within the same limits. A client that sent
    ``Expect: 100-continue`` gets the go-ahead here, after the type and the declared length were checked."""
    if request.content_type != "multipart/form-data":
        raise UploadError("unsupported_media_type")
    declared = request.content_length
    if declared is not None and declared > limits.max_body_bytes:
        raise UploadError("body_too_large", {"limit_bytes": limits.max_body_bytes})
    if not await continue_body(request):  # the go-ahead of a client that waits for one (ingest.expect)
        raise UploadError("expectation_failed")
    try:
        async with asyncio.timeout(timeout_s):
            if declared is None:
                return await _read_parts(request, None, limits)
            body = await _read_body(request)
            return _split(request, body, limits) or await _read_parts(request, body, limits)
    except TimeoutError:
        raise UploadError("request_timeout") from None


async def _read_body(request: web.Request) -> bytes:
    """The whole body, as aiohttp received it (no more than its Content-Length), joined once."""
    chunks: list[bytes] = []
    try:
        while chunk := await request.content.readany():
            chunks.append(chunk)
    except _BROKEN as exc:  # e.g. the client closed before its Content-Length
        raise UploadError("malformed_multipart") from exc
    return b"".join(chunks)


def _split(request: web.Request, body: bytes, limits: Limits) -> Upload | None:
    """The upload in ``body`` when it is in :func:`ingest.form_split.split_form`'s strict form, else None."""
    boundary = parse_mimetype(request.headers[hdrs.CONTENT_TYPE]).parameters.get("boundary")
    parts = split_form(body, boundary) if boundary else None
    if parts is None:
        return None
    form = _Form(limits)
    view = memoryview(body)  # the parts are views of the body: a 500 KB photo is not copied out of it
    for part in parts:
        limit = form.limit_of(part.name)
        if part.end - part.start > limit.size:
            raise UploadError(limit.code, {"limit_bytes": limit.size})
        form.put(part.name, view[part.start : part.end])
    return form.upload()


class FromMemory(BaseProtocol):
    """The protocol under a :class:`~aiohttp.StreamReader` fed from memory: there is no transport to pause or
    resume (the benchmarks and tests feed streams this way too)."""

    def pause_reading(self) -> None:
        pass

    def resume_reading(self, resume_parser: bool = True) -> None:
        pass


def _reader_of(request: web.Request, body: bytes) -> MultipartReader:
    """aiohttp's multipart reader over ``body``, made as ``request.multipart()`` makes it over the request."""
    loop = asyncio.get_running_loop()
    content = request.content  # an empty body's stream (aiohttp's EmptyStreamReader) has no buffer: its default then
    limit = _DEFAULT_READ_LIMIT if isinstance(content, EmptyStreamReader) else content.get_read_buffer_limits()[0]
    stream = StreamReader(FromMemory(loop), limit, loop=loop)
    stream.feed_data(body)
    stream.feed_eof()
    protocol = request.protocol
    return MultipartReader(
        request.headers,
        stream,
        client_max_size=request.client_max_size,
        max_field_size=protocol.max_field_size,
        max_headers=protocol.max_headers,
        max_size_error_cls=web.HTTPRequestEntityTooLarge,
    )


async def _read_part(part: BodyPartReader, limit: _Limit, budget: list[int]) -> bytes:
    """The part's bytes: its chunks are kept as read and joined once (one copy of the part, not two)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await part.read_chunk(_CHUNK)
        if not chunk:
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        budget[0] -= len(chunk)
        if budget[0] < 0:
            raise UploadError("body_too_large")
        size += len(chunk)
        if size > limit.size:
            raise UploadError(limit.code, {"limit_bytes": limit.size})
        chunks.append(chunk)


async def _read_parts(request: web.Request, body: bytes | None, limits: Limits) -> Upload:
    """The upload, read by aiohttp's multipart reader: from the request as it streams (``body`` None) or from
    ``body``, read already."""
    budget = [limits.max_body_bytes]
    form = _Form(limits)
    try:
        reader = await request.multipart() if body is None else _reader_of(request, body)
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise UploadError("malformed_multipart")
            name = part_name(part)
            form.put(name, await _read_part(part, form.limit_of(name), budget))
    except _BROKEN as exc:
        raise UploadError("malformed_multipart") from exc
    return form.upload()
