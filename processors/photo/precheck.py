"""The photo checks cheap enough for the ingest edge: bytes, magic, and the dimensions a header declares.

:func:`precheck` runs on the event loop of the API before a record is queued, so it must be bounded and never
decode a pixel: it reads the length, the first 64 bytes (:func:`~processors.photo.sniff.sniff_format`) and, for
JPEG, PNG and WebP, the declared width and height (:func:`declared_size`: fixed offsets, or for JPEG a walk
over at most :data:`MAX_JPEG_SEGMENTS` segment headers, each a jump by its length). So what can be refused at
once (empty, too large, not an image, a format we do not take, a gigapixel or tiny header) is refused with its
code before it costs a Kafka record and a worker; everything else (truncated data, corrupt scans, animation,
HEIF dimensions) is judged by the full pipeline in the worker, which checks all of this again.
"""

from __future__ import annotations

from processors.photo import PhotoBytes, heif
from processors.photo.decode import check_size
from processors.photo.policy import PhotoPolicy
from processors.photo.sniff import sniff_format
from processors.reasons import Rejected

MAX_JPEG_SEGMENTS = 256
"""JPEG segment headers walked at most while looking for the frame header (SOF)."""

_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def _jpeg_size(data: PhotoBytes) -> tuple[int, int] | None:
    pos = 2
    for _ in range(MAX_JPEG_SEGMENTS):
        while pos < len(data) and data[pos] == 0xFF and pos + 1 < len(data) and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 4 > len(data) or data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _SOF:
            if length < 7 or pos + 9 > len(data):
                return None
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            return width, height
        if length < 2:
            return None
        pos += 2 + length
    return None


def _webp_size(data: PhotoBytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


def declared_size(data: PhotoBytes, fmt: str) -> tuple[int, int] | None:
    """(width, height) as the header of a ``fmt`` file declares it, or ``None`` when not read here."""
    if fmt == "PNG" and data[12:16] == b"IHDR" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if fmt == "JPEG":
        return _jpeg_size(data)
    if fmt == "WEBP":
        return _webp_size(data)
    return None


def check_container(data: PhotoBytes, policy: PhotoPolicy) -> str:
    """The format of ``data`` by its magic bytes, or ``Rejected``: ``photo_empty``, ``photo_too_large``,
    ``not_an_image``, ``unsupported_format``. Constant work (the length and the first 64 bytes)."""
    if not data:
        raise Rejected("photo_empty", measured=0)
    if len(data) > policy.max_bytes:
        raise Rejected("photo_too_large", measured=len(data), threshold=policy.max_bytes)
    fmt = sniff_format(data)
    if fmt is None:
        raise Rejected("not_an_image")
    if fmt not in policy.allowed_formats or (fmt == "HEIF" and not heif.available()):
        raise Rejected("unsupported_format", measured=fmt, threshold=",".join(policy.allowed_formats))
    return fmt


def precheck(data: PhotoBytes, policy: PhotoPolicy) -> str:
    """Return the format of ``data`` or raise ``Rejected`` with the first failed cheap check.

    Codes: ``photo_empty``, ``photo_too_large``, ``not_an_image``, ``unsupported_format``, ``too_many_pixels``,
    ``image_too_small``, ``image_corrupt`` (a zero dimension). Never blocks for long: constant work, plus at
    most :data:`MAX_JPEG_SEGMENTS` jumps.
    """
    fmt = check_container(data, policy)
    size = declared_size(data, fmt)
    if size is not None:
        check_size(*size, policy)
    return fmt
