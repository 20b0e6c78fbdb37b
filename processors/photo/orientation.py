"""EXIF orientation: read it tolerantly, apply it to pixels exactly as ``PIL.ImageOps.exif_transpose`` does."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

_ORIENTATION_TAG = 0x0112

Pixels = NDArray[np.uint8]


def _transverse(pixels: Pixels) -> Pixels:
    return np.asarray(cv2.rotate(cv2.transpose(pixels), cv2.ROTATE_180), dtype=np.uint8)


_TRANSFORMS: dict[int, Callable[[Pixels], Pixels]] = {
    2: lambda p: np.asarray(cv2.flip(p, 1), dtype=np.uint8),  # Pillow FLIP_LEFT_RIGHT
    3: lambda p: np.asarray(cv2.rotate(p, cv2.ROTATE_180), dtype=np.uint8),  # ROTATE_180
    4: lambda p: np.asarray(cv2.flip(p, 0), dtype=np.uint8),  # FLIP_TOP_BOTTOM
    5: lambda p: np.asarray(cv2.transpose(p), dtype=np.uint8),  # TRANSPOSE
    6: lambda p: np.asarray(cv2.rotate(p, cv2.ROTATE_90_CLOCKWISE), dtype=np.uint8),  # ROTATE_270
    7: _transverse,  # TRANSVERSE
    8: lambda p: np.asarray(cv2.rotate(p, cv2.ROTATE_90_COUNTERCLOCKWISE), dtype=np.uint8),  # ROTATE_90
}


def read_orientation(im: Image.Image) -> int:
    """Return the EXIF orientation (1..8) of ``im``; 1 when absent, malformed or out of range.

    Reads the header only (no pixels are decoded). A broken EXIF block is not a reason to reject a photo whose
    pixels are fine, so errors are swallowed.
    """
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
        orientation = int(value)
    except Exception:  # hostile EXIF: ignore it, the pixels decide
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def apply_orientation(pixels: Pixels, orientation: int) -> Pixels:
    """Return ``pixels`` (``(h, w, c)``) turned upright for ``orientation``: the table of
    ``ImageOps.exif_transpose``. Orientation 1 (or unknown) returns the array itself; others a new C-contiguous one."""
    transform = _TRANSFORMS.get(orientation)
    return pixels if transform is None else transform(pixels)
