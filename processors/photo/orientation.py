"""EXIF orientation: read it tolerantly, apply it exactly as ``PIL.ImageOps.exif_transpose`` does."""

from __future__ import annotations

from PIL import Image

_ORIENTATION_TAG = 0x0112

_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def read_orientation(im: Image.Image) -> int:
    """Return the EXIF orientation (1..8) of ``im``; 1 when absent, malformed or out of range.

    A broken EXIF block is not a reason to reject a photo whose pixels are fine, so errors are swallowed.
    """
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
        orientation = int(value)
    except Exception:  # hostile EXIF: ignore it, the pixels decide
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def swaps_axes(orientation: int) -> bool:
    """True when applying ``orientation`` swaps width and height (values 5..8)."""
    return orientation >= 5


def apply_orientation(im: Image.Image, orientation: int) -> Image.Image:
    """Return ``im`` turned upright for ``orientation`` (the same table as ``ImageOps.exif_transpose``)."""
    method = _TRANSPOSE.get(orientation)
    return im if method is None else im.transpose(method)
