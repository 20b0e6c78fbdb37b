"""Safe decoding: header checks before any pixel is decoded, then a (possibly reduced-scale) decode to RGB.

Contract of :func:`read_header`: only the container header is parsed; it rejects ``too_many_pixels`` (``w*h``
from the header, against ``PhotoPolicy.max_pixels``, and Pillow's own bomb guard), ``image_too_small`` and
``animated_image`` (PNG/WebP/HEIF with more than one frame; a JPEG with MPO extra images is read as its first
image), and maps any parsing failure to ``image_corrupt``. Pillow is always given an explicit one-format
allow-list and truncated files are never loaded (``LOAD_TRUNCATED_IMAGES`` is not touched).

Contract of :func:`decode`: returns an upright (EXIF orientation applied), 8-bit sRGB ``RGB`` image with no
``info`` metadata, about ``1/scale`` of the source size (JPEG: DCT-domain scaling via ``Image.draft``;
others: box reduction after decode). Any decoder failure becomes ``image_corrupt``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from processors.photo import heif
from processors.photo.colour import to_srgb_rgb
from processors.photo.guard import decoder_errors
from processors.photo.orientation import apply_orientation, read_orientation
from processors.photo.policy import PhotoPolicy
from processors.reasons import Rejected

_JPEG_FAMILY = ("JPEG", "MPO")


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


def decode(data: bytes, header: Header, scale: int) -> Image.Image:
    """Decode ``data`` at about ``1/scale`` (a power of two) to an upright sRGB ``RGB`` image."""
    with decoder_errors():
        if header.format == "HEIF":
            im, icc = heif.decode(data)
            orientation = 1
        else:
            im = _open(data, header.format)
            if scale > 1 and im.format in _JPEG_FAMILY:
                im.draft(None, (max(1, header.width // scale), max(1, header.height // scale)))
            im.load()
            orientation = read_orientation(im)
            raw_icc = im.info.get("icc_profile")
            icc = raw_icc if isinstance(raw_icc, bytes) else None
        rgb = to_srgb_rgb(im, icc)
        residual = scale // max(1, round(header.width / max(1, rgb.width)))
        if residual > 1:
            rgb = rgb.reduce(residual)
        rgb = apply_orientation(rgb, orientation)
        rgb.info = {}
        return rgb
