"""Safe decoding: header checks before any pixel is decoded, then a (possibly reduced-scale) decode to RGB.

Contract of :func:`read_header`: only the container header is parsed; it rejects ``too_many_pixels`` (``w*h``
from the header, against ``PhotoPolicy.max_pixels``, and Pillow's own bomb guard), ``image_too_small`` and
``animated_image`` (PNG/WebP/HEIF with more than one frame; a JPEG with MPO extra images is read as its first
image), and maps any parsing failure to ``image_corrupt``. Pillow is always given an explicit one-format
allow-list and truncated files are never loaded (``LOAD_TRUNCATED_IMAGES`` is not touched).

Contract of :func:`decode`: returns an upright (EXIF orientation applied), 8-bit sRGB ``(h, w, 3)`` RGB array
(pixels only: no metadata can follow it), about ``1/scale`` of the source size (JPEG: DCT-domain scaling;
others: box reduction after decode). Any decoder failure becomes ``image_corrupt``.

Two decoders, one result. A JPEG whose pixels need no colour conversion (YCbCr, RGB or grey components, and no
ICC profile other than sRGB) is decoded by OpenCV straight into an RGB array at the reduced scale
(``IMREAD_REDUCED_*``): the same libjpeg-turbo output as Pillow's ``draft`` (a test holds them equal), without
Pillow's 4-byte pixel storage and the copy out of it. OpenCV refuses truncated data as Pillow does; whatever it
refuses is handed to Pillow, whose verdict stands. Everything else (CMYK, wide-gamut profiles, PNG, WebP, HEIF)
goes through Pillow and LittleCMS. Either way the header has been read and its limits applied first, and the
decoded size must match the header's.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageCms

from processors.photo import heif
from processors.photo.colour import source_profile, to_srgb_rgb
from processors.photo.guard import decoder_errors
from processors.photo.orientation import apply_orientation, read_orientation
from processors.photo.policy import PhotoPolicy
from processors.reasons import Rejected

_JPEG_FAMILY = ("JPEG", "MPO")
_OPENCV_MODES = ("RGB", "L")
"""Pillow modes of a JPEG that OpenCV decodes to the same RGB pixels (no CMYK/YCCK conversion needed)."""
_OPENCV_FLAGS = {
    1: cv2.IMREAD_COLOR_RGB,
    2: (cv2.IMREAD_REDUCED_COLOR_2 & ~cv2.IMREAD_COLOR) | cv2.IMREAD_COLOR_RGB,
    4: (cv2.IMREAD_REDUCED_COLOR_4 & ~cv2.IMREAD_COLOR) | cv2.IMREAD_COLOR_RGB,
    8: (cv2.IMREAD_REDUCED_COLOR_8 & ~cv2.IMREAD_COLOR) | cv2.IMREAD_COLOR_RGB,
}
"""``imdecode`` flags per scale: RGB order (not BGR), DCT scaling; orientation is applied by us, as for Pillow."""


@dataclass(frozen=True, slots=True)
class Header:
    """What the header says: format (as sniffed) and stored pixel size (before orientation)."""

    format: str
    width: int
    height: int

    @property
    def long_side(self) -> int:
        """The longer of width and height."""
        return max(self.width, self.height)


def _open(data: bytes, fmt: str) -> Image.Image:
    im = Image.open(io.BytesIO(data), formats=[fmt])
    if im.format not in ((fmt,) if fmt != "JPEG" else _JPEG_FAMILY):
        raise OSError(f"decoder returned {im.format}")
    return im


def check_size(width: int, height: int, policy: PhotoPolicy) -> None:
    """Reject dimensions out of the policy (zero, too many pixels, too small). Pure arithmetic."""
    if width <= 0 or height <= 0:
        raise Rejected("image_corrupt", measured=f"{width}x{height}")
    if width * height > policy.max_pixels:
        raise Rejected("too_many_pixels", measured=width * height, threshold=policy.max_pixels)
    if max(width, height) < policy.min_long_side or min(width, height) < policy.min_short_side:
        raise Rejected(
            "image_too_small",
            measured=f"{width}x{height}",
            threshold=f"{policy.min_long_side}x{policy.min_short_side}",
        )


def read_header(data: bytes, fmt: str, policy: PhotoPolicy) -> Header:
    """Parse the header of ``data`` (already sniffed as ``fmt``) and apply the pre-decode limits."""
    with decoder_errors(max_pixels=policy.max_pixels):
        if fmt == "HEIF":
            width, height, frames = heif.read_size(data)
        else:
            im = _open(data, fmt)
            width, height = im.size
            frames = 1 if im.format == "MPO" else int(getattr(im, "n_frames", 1))
        check_size(width, height, policy)
        if frames > 1:
            raise Rejected("animated_image", measured=frames, threshold=1)
        return Header(fmt, width, height)


def _scaled(size: int, scale: int) -> int:
    return -(-size // scale)  # libjpeg's scaled size: ceil(size / scale)


def _opencv_jpeg(data: bytes, header: Header, scale: int) -> NDArray[np.uint8] | None:
    """The JPEG decoded by OpenCV at ``1/scale``, or ``None`` when OpenCV refuses it (Pillow then decides)."""
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _OPENCV_FLAGS[scale] | cv2.IMREAD_IGNORE_ORIENTATION)
    if pixels is None:
        return None
    if pixels.shape != (_scaled(header.height, scale), _scaled(header.width, scale), 3):
        raise OSError(f"decoded {pixels.shape[:2]}, header says {header.height}x{header.width} at 1/{scale}")
    return np.asarray(pixels, dtype=np.uint8)


def _pillow(im: Image.Image, header: Header, scale: int, profile: ImageCms.ImageCmsProfile | None) -> NDArray[np.uint8]:
    if scale > 1 and im.format in _JPEG_FAMILY:
        im.draft(None, (max(1, header.width // scale), max(1, header.height // scale)))
    im.load()
    rgb = to_srgb_rgb(im, profile)
    residual = scale // max(1, round(header.width / max(1, rgb.width)))
    if residual > 1:
        rgb = rgb.reduce(residual)
    return np.asarray(rgb, dtype=np.uint8)


def decode(data: bytes, header: Header, scale: int) -> NDArray[np.uint8]:
    """Decode ``data`` at about ``1/scale`` (1, 2, 4 or 8) to an upright sRGB ``(h, w, 3)`` RGB array."""
    with decoder_errors():
        if header.format == "HEIF":
            image, icc = heif.decode(data)  # upright already
            rgb = to_srgb_rgb(image, source_profile(icc))
            if scale > 1:
                rgb = rgb.reduce(scale)
            return np.asarray(rgb, dtype=np.uint8)
        im = _open(data, header.format)
        orientation = read_orientation(im)
        raw_icc = im.info.get("icc_profile")
        profile = source_profile(raw_icc if isinstance(raw_icc, bytes) else None)
        pixels = None
        if im.format in _JPEG_FAMILY and im.mode in _OPENCV_MODES and profile is None:
            pixels = _opencv_jpeg(data, header, scale)
        if pixels is None:
            pixels = _pillow(im, header, scale, profile)
        return apply_orientation(pixels, orientation)
