"""Deterministic, seeded generator of synthetic KTP-like photos and hostile uploads, all in memory.

A card is light blue with a dark header, text-like dark stripes on the left and a portrait photo box on the
right (the side a real KTP has its photo on), rendered at 1011 x 638 (ID-1 at 300 dpi). :func:`scene` places
it in a textured, darker scene with rotation and perspective, then applies blur, glare and exposure effects.
:func:`encode` writes any format, optionally with an EXIF orientation (the stored pixels are turned so that
applying the tag gives the upright scene back) and with privacy-relevant metadata (GPS, XMP, ICC, comment).
The ``hostile_*`` and ``*_bomb`` functions craft malicious or malformed files without allocating big images.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageCms, ImageDraw

CARD_SIZE = (1011, 638)
CARD_BG = (188, 214, 236)
ID1_ASPECT = 85.60 / 53.98
PHOTO_BOX = (0.70, 0.24, 0.93, 0.80)
"""Photo box of the card as fractions (x0, y0, x1, y1): on the right."""

Array = NDArray[np.uint8]


def render_card(seed: int = 0) -> Array:
    """The upright card (638 x 1011 x 3), its text stripes varying with ``seed``."""
    rng = np.random.default_rng(seed)
    w, h = CARD_SIZE
    img = Image.new("RGB", (w, h), CARD_BG)
    draw = ImageDraw.Draw(img)
    for y in range(0, h, 6):  # faint guilloche-like bands
        shade = int(6 * math.sin(y / 23.0))
        draw.line([(0, y), (w, y)], fill=(CARD_BG[0] + shade, CARD_BG[1] + shade, CARD_BG[2]), width=2)
    dark = (35, 35, 45)
    draw.rectangle([int(0.25 * w), int(0.04 * h), int(0.75 * w), int(0.09 * h)], fill=dark)
    draw.rectangle([int(0.32 * w), int(0.11 * h), int(0.68 * w), int(0.15 * h)], fill=dark)
    draw.rectangle([int(0.04 * w), int(0.19 * h), int(0.55 * w), int(0.24 * h)], fill=dark)  # NIK row
    row = 0.29
    while row < 0.88:
        end = 0.04 + float(rng.uniform(0.25, 0.58))
        draw.rectangle([int(0.04 * w), int(row * h), int(end * w), int((row + 0.026) * h)], fill=dark)
        row += 0.052
    x0, y0, x1, y1 = (int(PHOTO_BOX[0] * w), int(PHOTO_BOX[1] * h), int(PHOTO_BOX[2] * w), int(PHOTO_BOX[3] * h))
    draw.rectangle([x0, y0, x1, y1], fill=(196, 40, 44))
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    draw.ellipse([cx - 55, cy - 95, cx + 55, cy + 25], fill=(170, 125, 100))
    draw.rectangle([cx - 95, cy + 45, cx + 95, y1], fill=(30, 30, 40))
    draw.line([(x0, int(0.88 * h)), (x1, int(0.9 * h))], fill=dark, width=4)
    return np.asarray(img, dtype=np.uint8).copy()


def render_back(seed: int = 0) -> Array:
    """The back of the card (638 x 1011 x 3): the same light-blue stock and guilloche bands, no print (an e-KTP's
    back carries nothing an applicant is asked for)."""
    rng = np.random.default_rng(seed)
    w, h = CARD_SIZE
    img = Image.new("RGB", (w, h), CARD_BG)
    draw = ImageDraw.Draw(img)
    phase = float(rng.uniform(0, 6))
    for y in range(0, h, 6):
        shade = int(6 * math.sin(y / 23.0 + phase))
        draw.line([(0, y), (w, y)], fill=(CARD_BG[0] + shade, CARD_BG[1] + shade, CARD_BG[2]), width=2)
    return np.asarray(img, dtype=np.uint8).copy()


@dataclass(frozen=True)
class SceneSpec:
    """How to photograph the card. Lengths are fractions of the scene width unless stated."""

    width: int = 1600
    height: int = 1200
    card_fraction: float = 0.7
    angle_deg: float = 0.0
    tilt: float = 0.0
    """Keystone: the card's top edge is shortened by this fraction (camera tilted)."""
    shift: tuple[float, float] = (0.0, 0.0)
    """Card centre offset from the scene centre, as fractions of width and height."""
    blur_sigma: float = 0.0
    """Gaussian blur sigma in scene pixels."""
    glare: float = 0.0
    """Radius of a saturated glare blob, as a fraction of the card width (0 = none)."""
    exposure: float = 1.0
    """Multiplier on all pixel values (<1 darker, >1 overexposed)."""
    background: str = "wood"
    """``wood`` (textured, darker than the card), ``white`` (paper) or ``none`` (no card in the scene)."""
    seed: int = 0
    noise: float = 2.0
    """Sigma of the Gaussian sensor noise added last, in 8-bit levels."""
    side: str = "front"
    """``front`` (the printed side) or ``back``."""
    glare_centre: tuple[float, float] | None = None
    """Centre of the glare blob in card coordinates (0..1 across, 0..1 down); None: left of the card's centre."""


def _background(spec: SceneSpec, rng: np.random.Generator) -> NDArray[np.float32]:
    h, w = spec.height, spec.width
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    if spec.background == "white":
        base = np.full((h, w, 3), (232.0, 230.0, 226.0), dtype=np.float32)
    else:
        grain = 18.0 * np.sin(xs / 37.0 + 3.0 * np.sin(ys / 120.0)) + 8.0 * np.sin(ys / 9.0 + xs / 300.0)
        base = np.stack([95.0 + grain, 70.0 + grain * 0.8, 52.0 + grain * 0.6], axis=2).astype(np.float32)
    small = rng.normal(0.0, 10.0, (h // 8 + 1, w // 8 + 1, 1)).astype(np.float32)
    blotches = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.asarray(base + blotches[:, :, None] if blotches.ndim == 2 else base + blotches, dtype=np.float32)


def card_quad(spec: SceneSpec) -> NDArray[np.float32]:
    """Where the card's corners (tl, tr, br, bl) land in the scene."""
    cw = spec.card_fraction * spec.width
    ch = cw / ID1_ASPECT
    top_half = cw / 2 * (1 - spec.tilt)
    local = np.array([[-top_half, -ch / 2], [top_half, -ch / 2], [cw / 2, ch / 2], [-cw / 2, ch / 2]])
    a = math.radians(spec.angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    centre = np.array([spec.width * (0.5 + spec.shift[0]), spec.height * (0.5 + spec.shift[1])])
    return np.asarray(local @ rot.T + centre, dtype=np.float32)


def _rounded_mask() -> NDArray[np.float32]:
    w, h = CARD_SIZE
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).rounded_rectangle([0, 0, w - 1, h - 1], radius=38, fill=255)
    return np.asarray(mask, dtype=np.float32) / 255.0


def paste_card(out: NDArray[np.float32], card: Array, quad: NDArray[np.float32]) -> NDArray[np.float32]:
    """``out`` (float RGB) with ``card`` (any size, ID-1 shaped, rounded corners) warped onto ``quad`` (tl, tr,
    br, bl in ``out``'s pixels; corners may lie outside it: the card is then cut by the frame)."""
    h, w = card.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    size = (out.shape[1], out.shape[0])
    warped = cv2.warpPerspective(card.astype(np.float32), matrix, size, flags=cv2.INTER_AREA)
    mask = _rounded_mask() if (w, h) == CARD_SIZE else cv2.resize(_rounded_mask(), (w, h))
    alpha = cv2.warpPerspective(mask, matrix, size, flags=cv2.INTER_LINEAR)[:, :, None]
    return np.asarray(out * (1 - alpha) + warped * alpha, dtype=np.float32)


def glare_blob(out: NDArray[np.float32], centre: NDArray[np.float64], radius: float) -> NDArray[np.float32]:
    """``out`` with a saturating flash highlight of ``radius`` pixels around ``centre`` (x, y)."""
    yy, xx = np.mgrid[0 : out.shape[0], 0 : out.shape[1]].astype(np.float32)
    d2 = ((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / radius**2
    return np.asarray(out + 400.0 * np.exp(-d2 * 1.5)[:, :, None], dtype=np.float32)


def scene(spec: SceneSpec) -> Array:
    """Render the photographed scene (H x W x 3 uint8) for ``spec``."""
    rng = np.random.default_rng(spec.seed)
    out = _background(spec, rng)
    if spec.background != "none":
        card = render_card(spec.seed) if spec.side == "front" else render_back(spec.seed)
        quad = card_quad(spec)
        out = paste_card(out, card, quad)
        if spec.glare > 0:
            radius = spec.glare * spec.card_fraction * spec.width
            if spec.glare_centre is None:
                centre = quad.mean(axis=0).astype(np.float64) - np.array([radius * 0.8, 0.0])
            else:
                u, v = spec.glare_centre
                top = quad[0] + u * (quad[1] - quad[0])
                bottom = quad[3] + u * (quad[2] - quad[3])
                centre = (top + v * (bottom - top)).astype(np.float64)
            out = glare_blob(out, centre, radius)
    if spec.blur_sigma > 0:
        out = np.asarray(cv2.GaussianBlur(out, (0, 0), spec.blur_sigma), dtype=np.float32)
    out = out * spec.exposure + rng.normal(0.0, spec.noise, out.shape).astype(np.float32)
    return np.clip(out, 0, 255).round().astype(np.uint8)


# --- encoding -------------------------------------------------------------------------------------------

_INVERSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
"""For each EXIF orientation, the transpose that turns an upright image into what the camera stores."""

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><GPSLatitude>6.2</GPSLatitude></rdf:RDF></x:xmpmeta>'


def _exif(orientation: int | None, private: bool) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if private:
        exif[0x010F] = "SecretPhoneMaker"
        gps = exif.get_ifd(0x8825)
        gps[1] = "S"
        gps[2] = (6.0, 12.0, 30.0)
    return exif.tobytes()


def srgb_icc() -> bytes:
    """An sRGB ICC profile (to check that profiles are stripped)."""
    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def encode(
    rgb: Array,
    fmt: str = "JPEG",
    *,
    quality: int = 92,
    orientation: int | None = None,
    private: bool = False,
    mode: str | None = None,
) -> bytes:
    """Encode the upright ``rgb`` as ``fmt``, stored turned for ``orientation``, optionally with metadata.

    ``mode`` converts before saving (``L``, ``P``, ``RGBA``, ``CMYK``). ``private`` adds EXIF maker + GPS, XMP,
    an ICC profile and a comment, all of which must not survive normalisation.
    """
    img = Image.fromarray(rgb)
    if orientation in _INVERSE:
        img = img.transpose(_INVERSE[orientation])
    if mode == "P":
        img = img.convert("P", palette=Image.Palette.ADAPTIVE, colors=128)
    elif mode is not None:
        img = img.convert(mode)
    buf = io.BytesIO()
    params: dict[str, object] = {}
    if orientation is not None or private:
        params["exif"] = _exif(orientation, private)
    if private:
        params["icc_profile"] = srgb_icc()
        if fmt == "JPEG":
            params["comment"] = b"applicant NIK 3171234567890001"
            params["xmp"] = XMP
    if fmt == "JPEG":
        params["quality"] = quality
    if fmt == "WEBP":
        params["quality"] = quality
    if fmt == "HEIF":
        import pillow_heif

        heif = pillow_heif.from_pillow(img)
        heif.save(buf, quality=quality)
        return buf.getvalue()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def png16(rgb: Array, grey: bool = False) -> bytes:
    """A 16-bit-per-channel PNG (RGB, or grey) of ``rgb``."""
    wide = rgb.astype(np.uint16) * 257
    if grey:
        wide = (cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.uint16)) * 257
        ok, buf = cv2.imencode(".png", wide)
    else:
        ok, buf = cv2.imencode(".png", wide[:, :, ::-1])
    assert ok
    return bytes(buf.tobytes())


def animated(fmt: str, frames: int = 3, size: tuple[int, int] = (800, 600)) -> bytes:
    """An animated GIF, PNG (APNG) or WebP with ``frames`` frames."""
    images = [Image.new("RGB", size, (40 * i, 100, 200 - 40 * i)) for i in range(frames)]
    buf = io.BytesIO()
    images[0].save(buf, format=fmt, save_all=True, append_images=images[1:], duration=100, loop=0)
    return buf.getvalue()


# --- hostile files ----------------------------------------------------------------------------------------

HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="4000" height="3000"><rect/></svg>'
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def noise(n: int = 50_000, seed: int = 0) -> bytes:
    """Random bytes."""
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    """The first ``keep`` share of ``data``."""
    return data[: int(len(data) * keep)]


def with_zip(data: bytes) -> bytes:
    """``data`` with a ZIP archive appended (a JPEG+ZIP polyglot)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("payload.txt", "not for you")
    return data + buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header claims ``width x height`` RGB pixels; a few hundred bytes long."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def jpeg_bomb(width: int = 65_000, height: int = 65_000) -> bytes:
    """A small real JPEG whose SOF header is patched to claim ``width x height`` pixels."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (128, 128, 128)).save(buf, format="JPEG", quality=50)
    data = bytearray(buf.getvalue())
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(marker)
        if at >= 0:
            data[at + 5 : at + 9] = struct.pack(">HH", height, width)
            return bytes(data)
    raise AssertionError("no SOF marker")
