"""Encode pixels as a metadata-free JPEG.

The image is rebuilt from the raw array, so nothing of the upload survives: no EXIF/GPS, XMP, ICC profile,
comment, MPF, thumbnails or trailing bytes. Output is baseline, 4:2:0, non-optimised, so the same pixels
always give the same bytes with the same libjpeg.
"""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image


def encode_jpeg(rgb: NDArray[np.uint8], quality: int) -> bytes:
    """Return a JPEG (JFIF) of the ``(h, w, 3)`` uint8 array ``rgb``."""
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), mode="RGB")
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality, subsampling="4:2:0", optimize=False, progressive=False)
    return buf.getvalue()
