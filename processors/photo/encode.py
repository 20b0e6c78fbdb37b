"""Encode pixels as a metadata-free JPEG.

Only pixels are written (an array is rebuilt into a fresh image; an image has its ``info`` dropped), so nothing
of the upload survives: no EXIF/GPS, XMP, ICC profile, comment, MPF, thumbnails or trailing bytes. Output is
baseline, 4:2:0, non-optimised, so the same pixels always give the same bytes with the same libjpeg.
"""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image


def encode_jpeg(pixels: NDArray[np.uint8] | Image.Image, quality: int) -> bytes:
    """Return a JPEG (JFIF) of an ``(h, w, 3)`` uint8 array or of an ``RGB`` image.

    An image is encoded as it is (no copy to an array and back); any ``info`` it carries is dropped first, so
    the output is the same as for its pixels as an array."""
    if isinstance(pixels, Image.Image):
        if pixels.mode != "RGB":
            raise ValueError(f"expected an RGB image, got {pixels.mode}")
        image = pixels
        if image.info:
            image = image.copy()
            image.info = {}
    else:
        image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), mode="RGB")
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality, subsampling="4:2:0", optimize=False, progressive=False)
    return buf.getvalue()
