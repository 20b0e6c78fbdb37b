"""Convert any decoded mode to 8-bit sRGB ``RGB``.

16-bit grey is scaled (not clipped) to 8 bits, palettes are expanded, alpha is flattened onto white, CMYK and
grey become RGB. An embedded ICC profile is honoured (converted to sRGB with LittleCMS) when it parses and
matches the pixel mode; a broken or mismatched profile is ignored rather than rejected.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image, ImageCms

_MAX_ICC_BYTES = 4 * 1024 * 1024
_SIXTEEN_BIT = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})


@lru_cache(maxsize=1)
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _flatten(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _to_base_mode(im: Image.Image) -> Image.Image:
    """Reduce ``im`` to ``L``, ``RGB`` or ``CMYK`` (8 bits per channel)."""
    mode = im.mode
    if mode in ("L", "RGB", "CMYK"):
        return im
    if mode in _SIXTEEN_BIT:
        arr = np.asarray(im).astype(np.int64)
        return Image.fromarray((np.clip(arr, 0, 65535) >> 8).astype(np.uint8))
    if mode == "F":
        return Image.fromarray(np.clip(np.asarray(im), 0, 255).astype(np.uint8))
    if mode == "P":
        return _flatten(im) if "transparency" in im.info else im.convert("RGB")
    if mode in ("LA", "La", "PA", "RGBA", "RGBa") or "transparency" in im.info:
        return _flatten(im)
    return im.convert("RGB")


def source_profile(icc: bytes | None) -> ImageCms.ImageCmsProfile | None:
    """The embedded profile to convert from, or ``None`` when the pixels are taken as sRGB already: no profile,
    one over ``_MAX_ICC_BYTES``, one that does not parse (ignored, not rejected), or one describing sRGB."""
    if not icc or len(icc) > _MAX_ICC_BYTES:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in ImageCms.getProfileDescription(profile).lower():
            return None
    except Exception:  # broken profile: the pixels are kept as they are
        return None
    return profile


def _icc_to_srgb(im: Image.Image, profile: ImageCms.ImageCmsProfile) -> Image.Image:
    try:
        out = ImageCms.profileToProfile(im, profile, _srgb(), outputMode="RGB")
    except Exception:  # a profile that does not match the pixel mode: the pixels are kept as they are
        return im
    return out if out is not None else im


def to_srgb_rgb(im: Image.Image, profile: ImageCms.ImageCmsProfile | None) -> Image.Image:
    """Return an 8-bit sRGB ``RGB`` image for ``im``; ``profile`` is :func:`source_profile` of the file's ICC."""
    base = _to_base_mode(im)
    if profile is not None:
        base = _icc_to_srgb(base, profile)
    return base if base.mode == "RGB" else base.convert("RGB")
