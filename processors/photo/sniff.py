"""Identify an upload's format from its magic bytes only (never its name or declared content type)."""

from __future__ import annotations

from processors.photo import PhotoBytes

_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})

_SIMPLE: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"8BPS", "PSD"),
    (b"\xff\x0a", "JXL"),
    (b"\x00\x00\x00\x0cJXL ", "JXL"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG2000"),
    (b"\xff\x4f\xff\x51", "JPEG2000"),
    (b"qoif", "QOI"),
)


def sniff_format(data: PhotoBytes) -> str | None:
    """Return the format name for ``data`` or ``None`` if it does not start like any known image.

    Accepted-format names match Pillow's (``JPEG``, ``PNG``, ``WEBP``) plus ``HEIF``. Other recognised image
    formats (``GIF``, ``BMP``, ``TIFF``, ``AVIF``, ...) are named so that the caller can answer
    ``unsupported_format`` rather than ``not_an_image``. Only the first 64 bytes are looked at.
    """
    head = bytes(data[:64])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp" and len(head) >= 12:
        box_len = int.from_bytes(head[:4], "big")
        brands = {head[8:12]}
        end = min(max(box_len, 16), len(head))
        brands.update(head[i : i + 4] for i in range(16, end - 3, 4))
        if head[8:12] in _AVIF_BRANDS or (brands & _AVIF_BRANDS and not brands & (_HEIF_BRANDS - {b"mif1", b"msf1"})):
            return "AVIF"
        if brands & _HEIF_BRANDS:
            return "HEIF"
        return None
    for magic, name in _SIMPLE:
        if head.startswith(magic):
            return name
    return None
