"""HEIF/HEIC support through pillow-heif, without registering a Pillow plugin (no global side effects).

libheif applies the container's rotation/mirror properties while decoding and pillow-heif neutralises the
EXIF orientation accordingly, so HEIF pixels come out upright. libheif's own security limits stay enabled.
If pillow-heif is not importable, :func:`available` is False and HEIF is treated as unsupported.
"""

from __future__ import annotations

import io
from types import ModuleType
from typing import Any

from PIL import Image

_pillow_heif: ModuleType | None
try:
    import pillow_heif as _pillow_heif
except ImportError:  # pragma: no cover - depends on the installation
    _pillow_heif = None


def available() -> bool:
    """True when HEIF can be decoded in this process."""
    return _pillow_heif is not None


def _open(data: bytes) -> Any:
    if _pillow_heif is None:  # pragma: no cover - depends on the installation
        raise OSError("pillow-heif is not installed")
    return _pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)


def read_size(data: bytes) -> tuple[int, int, int]:
    """Return ``(width, height, top_level_image_count)`` from the container, decoding no pixels."""
    heif_file = _open(data)
    width, height = heif_file.size
    return int(width), int(height), len(heif_file)


def decode(data: bytes) -> tuple[Image.Image, bytes | None]:
    """Decode the primary image; return it (upright) with its ICC profile, if any."""
    heif_file = _open(data)
    image: Image.Image = heif_file.to_pillow()
    icc = heif_file.info.get("icc_profile")
    return image, icc if isinstance(icc, bytes) else None
