"""Encode pixels as a metadata-free JPEG.

Only pixels are written (an array goes to libjpeg-turbo through OpenCV), so nothing of the upload survives: no
EXIF/GPS, XMP, ICC profile, comment, MPF, thumbnails or trailing bytes. Output is baseline, 4:2:0,
non-optimised, so the same pixels always give the same bytes with the same libjpeg.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray


def encode_jpeg(pixels: NDArray[np.uint8], quality: int) -> bytes:
    """Return a JPEG (JFIF) of an ``(h, w, 3)`` uint8 RGB array at ``quality`` (1..100). Raises ``ValueError``
    for anything else (a programming error, never the upload's)."""
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"expected an (h, w, 3) uint8 array, got {pixels.shape} {pixels.dtype}")
    params = [
        cv2.IMWRITE_JPEG_QUALITY, quality,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
        cv2.IMWRITE_JPEG_OPTIMIZE, 0,
        cv2.IMWRITE_JPEG_PROGRESSIVE, 0,
    ]  # fmt: skip
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), params)
    if not ok:  # pragma: no cover - libjpeg does not fail on a valid array
        raise RuntimeError("JPEG encoding failed")
    return bytes(encoded)
