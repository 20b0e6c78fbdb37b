"""The labelled corpus of uploads applicants really make, each with the verdict an e-KYC reviewer would give.

Every case is generated here, deterministically, in memory (nothing is downloaded): flatbed scans and gallery
crops where the card touches or fills the frame, portrait photos, rotations, photocopies, single-channel and HEIC
files, heavy compression, low light, a phone screen showing the card, a card in a hand, two cards, the back of the
card, a selfie without a card, and the ways a photo fails (cut off, too small, glare, blur, exposure).

The expected verdict and reason of each case were written down before the gate was tuned on this corpus, by the
rule a reviewer applies: *accept* when the whole front of one KTP is in the picture and every printed field could
be read; otherwise *reject* with the one instruction that would make the applicant's next photo good. Judgement
calls, decided once and recorded in ``why``:

* A photocopy or a photo of a phone screen is accepted when it is whole and legible: this gate judges whether the
  card can be read, not whether the original was photographed (authenticity is checked against Dukcapil by the
  back office, which sees the stored image). A copy of a copy that smears the print is ``blurry``.
* A card whose frame border runs through its blank margin (tight crop, scan cropped to the card, a rounded corner
  clipped) is whole; one whose print runs off the frame is ``card_cut_off``.
* A fingertip over the card's blank margin hides nothing and is accepted.

:data:`CASES` is the corpus; :func:`photo` builds (and caches) one case's bytes; :data:`FAMILIES` groups reason
codes by what the applicant must change, for the report's family check.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
from numpy.typing import NDArray

from tests.corpus.ktp import (
    CARD_SIZE,
    ID1_ASPECT,
    Array,
    SceneSpec,
    card_quad,
    encode,
    paste_card,
    render_back,
    render_card,
    scene,
)

ACCEPT = "accept"
REJECT = "reject"


@dataclass(frozen=True)
class Case:
    """One upload: how it is made, the verdict (``accept``/``reject``), the reason code of a rejection, and why."""

    name: str
    kind: str
    """What it stands for: ``scan``, ``crop``, ``photo``, ``format``, ``copy``, ``screen``, ``hand``, ``fail``."""
    make: Callable[[], bytes]
    verdict: str
    reason: str | None
    why: str


FAMILIES: dict[str, str] = {
    "too_dark": "exposure",
    "too_bright": "exposure",
    "glare": "glare",
    "blurry": "focus",
    "card_too_small": "framing",
    "card_cut_off": "framing",
    "card_not_found": "no_card",
    "card_back_side": "no_card",
    "multiple_cards": "no_card",
}
"""Reason code → what the applicant must change (light, flash, focus, framing, the card itself)."""


def family(code: str | None) -> str:
    """The family of a reason code (``accept`` for no code; other codes are their own family)."""
    return "accept" if code is None else FAMILIES.get(code, code)


# --- building blocks ------------------------------------------------------------------------------------

_PAPER = (243.0, 242.0, 238.0)


def _noisy(out: NDArray[np.float32], sigma: float, seed: int) -> Array:
    rng = np.random.default_rng(seed)
    return np.clip(out + rng.normal(0.0, sigma, out.shape).astype(np.float32), 0, 255).round().astype(np.uint8)


def _card_at(width: int, seed: int, back: bool = False) -> Array:
    card = render_back(seed) if back else render_card(seed)
    height = round(width / ID1_ASPECT)
    interpolation = cv2.INTER_AREA if width < CARD_SIZE[0] else cv2.INTER_CUBIC
    return np.asarray(cv2.resize(card, (width, height), interpolation=interpolation), dtype=np.uint8)


def _rect(x: float, y: float, w: float, h: float, angle_deg: float = 0.0) -> NDArray[np.float32]:
    """Corners (tl, tr, br, bl) of a ``w`` x ``h`` rectangle whose top-left is at ``(x, y)`` before turning
    ``angle_deg`` about its centre."""
    local = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return np.asarray(local @ rot.T + np.array([x + w / 2, y + h / 2]), dtype=np.float32)


def scan(
    page: tuple[int, int], card_width: int, at: tuple[float, float], angle_deg: float = 0.0, seed: int = 0
) -> Array:
    """A flatbed scan: white page of ``page`` (w, h) pixels, the card ``card_width`` px wide with its top-left at
    ``at``, scanner noise and the slight softness of a scanner's optics."""
    out = np.empty((page[1], page[0], 3), np.float32)
    out[:] = _PAPER
    card = _card_at(card_width, seed)
    quad = _rect(at[0], at[1], card_width, card_width / ID1_ASPECT, angle_deg)
    out = paste_card(out, card, quad)
    out = np.asarray(cv2.GaussianBlur(out, (0, 0), 0.6), dtype=np.float32)
    return _noisy(out, 1.5, seed)


def crop(rgb: Array, box: tuple[float, float, float, float]) -> Array:
    """``rgb`` cropped to ``box`` = (x0, y0, x1, y1) in pixels (as a gallery app crops)."""
    x0, y0, x1, y1 = (round(v) for v in box)
    return np.ascontiguousarray(rgb[max(0, y0) : y1, max(0, x0) : x1])


def card_bounds(spec: SceneSpec) -> tuple[float, float, float, float]:
    """Bounding box (x0, y0, x1, y1) of the card in ``scene(spec)``."""
    quad = card_quad(spec)
    return float(quad[:, 0].min()), float(quad[:, 1].min()), float(quad[:, 0].max()), float(quad[:, 1].max())


def photocopy(card: Array, generations: int, seed: int) -> Array:
    """``card`` as a greyscale photocopy, copied again ``generations - 1`` times: the card's edge shows as a grey
    line (as on real copies), each copy blurs the print, changes the contrast and adds toner specks."""
    rng = np.random.default_rng(seed)
    grey = cv2.cvtColor(card, cv2.COLOR_RGB2GRAY).astype(np.float32)
    h, w = grey.shape
    edge = np.zeros((h, w), np.uint8)  # a copier renders the card's edge (its thickness, in shadow) as a line
    cv2.rectangle(edge, (1, 1), (w - 2, h - 2), 255, max(2, w // 300))
    grey[edge > 0] = 95.0
    for g in range(generations):
        grey = np.asarray(cv2.GaussianBlur(grey, (0, 0), 0.7 if g == 0 else 2.6), dtype=np.float32)
        grey = np.clip((grey - 110.0) * (1.5 if g == 0 else 0.7) + (86.0 if g == 0 else 140.0), 0, 255)
        specks = rng.random(grey.shape) < 0.002
        grey[specks] = 40.0
    return np.repeat(grey.astype(np.uint8)[:, :, None], 3, axis=2)


def copy_on_paper(card: Array, size: tuple[int, int], card_width: int, seed: int) -> Array:
    """A photocopied ``card`` (already copied) on a sheet of copier paper, photographed flat, slightly turned."""
    w, h = size
    out = np.empty((h, w, 3), np.float32)
    out[:] = (236.0, 236.0, 236.0)
    height = card_width / ID1_ASPECT
    quad = _rect((w - card_width) / 2, (h - height) / 2, card_width, height, 2.0)
    out = paste_card(out, card, quad)
    return _noisy(out, 2.0, seed)


def screen_photo(seed: int) -> Array:
    """The card shown full-width on a phone screen, photographed: dark bezel, backlit, pixel grid and moiré."""
    w, h = 1280, 960
    rng = np.random.default_rng(seed)
    out = np.empty((h, w, 3), np.float32)
    out[:] = (70.0, 62.0, 55.0)
    out += cv2.resize(rng.normal(0, 6, (h // 16, w // 16)).astype(np.float32), (w, h))[:, :, None]
    phone = _rect(110, 150, 1060, 660, 3.0)
    cv2.fillConvexPoly(out, np.round(phone).astype(np.int32), (18.0, 18.0, 20.0), cv2.LINE_AA)
    card = render_card(seed).astype(np.float32) * 1.05 + 8.0  # backlit
    yy, xx = np.mgrid[0 : card.shape[0], 0 : card.shape[1]].astype(np.float32)
    moire = 1.0 + 0.07 * np.sin(0.9 * xx + 0.35 * yy) * np.sin(0.05 * xx - 0.08 * yy)
    grid = np.ones_like(card)
    for c in range(3):
        grid[:, c::3, c] = 1.08  # RGB sub-pixel stripes
    card = np.clip(card * moire[:, :, None] * grid, 0, 255).astype(np.uint8)
    quad = _rect(150, 190, 960, 960 / ID1_ASPECT, 3.0)
    out = paste_card(out, card, quad)
    out = np.asarray(cv2.GaussianBlur(out, (0, 0), 0.8), dtype=np.float32)
    return _noisy(out, 3.0, seed)


def in_hand(seed: int) -> Array:
    """The card held up in a hand before a wall: a thumb over the blank margin of its left edge and fingertips
    over its lower right edge's margin."""
    w, h = 1280, 960
    out = np.empty((h, w, 3), np.float32)
    out[:] = (150.0, 160.0, 150.0)
    yy = np.arange(h, dtype=np.float32)[:, None, None]
    out = np.asarray(out + (yy / h * 30.0), dtype=np.float32)
    spec = SceneSpec(width=w, height=h, card_fraction=0.66, angle_deg=-4.0, seed=seed)
    quad = card_quad(spec)
    out = paste_card(out, render_card(seed), quad)
    skin = (196.0, 146.0, 118.0)
    card_w = float(np.hypot(*(quad[1] - quad[0])))
    margin = 0.025 * card_w
    left_mid = (quad[0] + quad[3]) / 2
    cv2.ellipse(out, (round(left_mid[0] - 90), round(left_mid[1])), (90 + round(margin), 40), -4, 0, 360, skin, -1)
    cv2.rectangle(out, (0, round(left_mid[1]) - 60), (round(left_mid[0] - 120), round(left_mid[1]) + 80), skin, -1)
    bottom = quad[2] + 0.25 * (quad[3] - quad[2])
    for k in range(3):
        cx, cy = round(bottom[0] - 70 * k), round(bottom[1] + 60)
        cv2.ellipse(out, (cx, cy), (32, 60 + round(margin)), -4, 0, 360, skin, -1)
    cv2.rectangle(out, (round(bottom[0]) - 200, round(bottom[1]) + 90), (round(bottom[0]) + 60, h), skin, -1)
    return _noisy(np.asarray(cv2.GaussianBlur(out, (0, 0), 0.7), np.float32), 2.5, seed)


def two_cards(seed: int) -> Array:
    """Two KTPs (the applicant's and a family member's) side by side on a table."""
    base = scene(SceneSpec(width=1600, height=1200, background="none", seed=seed)).astype(np.float32)
    width = 0.42 * 1600
    height = width / ID1_ASPECT
    out = paste_card(base, render_card(seed), _rect(90, 380, width, height, -3.0))
    out = paste_card(out, render_card(seed + 1), _rect(840, 330, width, height, 4.0))
    return _noisy(out, 2.0, seed)


def selfie(seed: int) -> Array:
    """A face photo without a card: wall, hair, face, shirt."""
    w, h = 960, 1280
    rng = np.random.default_rng(seed)
    out = np.empty((h, w, 3), np.float32)
    out[:] = (178.0, 170.0, 160.0)
    out += cv2.resize(rng.normal(0, 8, (h // 32, w // 32)).astype(np.float32), (w, h))[:, :, None]
    cv2.ellipse(out, (480, 560), (250, 300), 0, 0, 360, (40.0, 32.0, 30.0), -1)  # hair
    cv2.ellipse(out, (480, 620), (200, 260), 0, 0, 360, (205.0, 160.0, 130.0), -1)  # face
    for x in (400, 560):
        cv2.ellipse(out, (x, 580), (34, 16), 0, 0, 360, (60.0, 45.0, 40.0), -1)  # eyes
    cv2.ellipse(out, (480, 760), (70, 22), 0, 0, 180, (150.0, 80.0, 80.0), -1)  # mouth
    cv2.ellipse(out, (480, 1300), (420, 380), 0, 180, 360, (40.0, 70.0, 130.0), -1)  # shirt
    return _noisy(np.asarray(cv2.GaussianBlur(out, (0, 0), 1.0), np.float32), 3.0, seed)


# --- the cases ------------------------------------------------------------------------------------------


def _jpeg(rgb: Callable[[], Array], **kw: object) -> Callable[[], bytes]:
    return lambda: encode(rgb(), **kw)  # type: ignore[arg-type]


def _spec(**kw: object) -> Callable[[], Array]:
    return lambda: scene(SceneSpec(**kw))  # type: ignore[arg-type]


def _crop_scene(spec: SceneSpec, pad: tuple[float, float, float, float]) -> Callable[[], Array]:
    """``spec``'s photo cropped to the card's bounding box grown by ``pad`` (left, top, right, bottom) pixels
    (negative: into the card)."""

    def make() -> Array:
        x0, y0, x1, y1 = card_bounds(spec)
        return crop(scene(spec), (x0 - pad[0], y0 - pad[1], x1 + pad[2], y1 + pad[3]))

    return make


def _tight(width: int, seed: int, cut: tuple[float, float, float, float] = (0, 0, 0, 0)) -> Callable[[], Array]:
    """A scan cropped exactly to the card (the scanner lid white in the rounded corners), minus ``cut`` (left,
    top, right, bottom) fractions of the card."""

    def make() -> Array:
        height = round(width / ID1_ASPECT)
        page = scan((width, height), width, (0.0, 0.0), seed=seed)
        return crop(page, (cut[0] * width, cut[1] * height, (1 - cut[2]) * width, (1 - cut[3]) * height))

    return make


_TABLE = SceneSpec(width=1280, height=960, card_fraction=0.62, angle_deg=5.0, seed=201)
_CORNER = SceneSpec(width=1280, height=960, card_fraction=0.9, angle_deg=4.0, shift=(0.035, 0.0), seed=208)
_A4_200DPI = (1654, 2339)

CASES: tuple[Case, ...] = (
    # --- scans and crops: the card touches or fills the frame ---------------------------------------------
    Case(
        "scan-fills-frame-1712",
        "scan",
        _jpeg(_tight(1712, 202)),
        ACCEPT,
        None,
        "The held-out miss: a 1,712 px card filling the scan; whole and sharp.",
    ),
    Case(
        "scan-cropped-300dpi",
        "scan",
        _jpeg(_tight(1011, 203)),
        ACCEPT,
        None,
        "Scan cropped to the card at 300 dpi (1011 x 638); whole.",
    ),
    Case(
        "scan-thin-white-margin",
        "scan",
        _jpeg(lambda: scan((1035, 662), 1011, (12.0, 12.0), seed=204)),
        ACCEPT,
        None,
        "Scan with a 12 px white margin round the card.",
    ),
    Case(
        "scan-a4-card-in-corner",
        "scan",
        _jpeg(lambda: scan(_A4_200DPI, 674, (2.0, 3.0), seed=205)),
        ACCEPT,
        None,
        "A4 page at 200 dpi, the card pushed into the glass's corner: two edges on the frame border.",
    ),
    Case(
        "scan-a4-card-mid-page",
        "scan",
        _jpeg(lambda: scan(_A4_200DPI, 674, (480.0, 700.0), 1.5, seed=206)),
        ACCEPT,
        None,
        "A4 page at 200 dpi, card slightly turned in the middle.",
    ),
    Case(
        "crop-tight-with-sliver",
        "crop",
        _jpeg(_crop_scene(SceneSpec(card_fraction=0.8, angle_deg=1.5, seed=207), (12, 5, 30, 18))),
        ACCEPT,
        None,
        "Gallery crop leaving a sliver of table on each side.",
    ),
    Case(
        "crop-touching-left-edge",
        "crop",
        _jpeg(_crop_scene(SceneSpec(card_fraction=0.8, seed=209), (0, 20, 25, 20))),
        ACCEPT,
        None,
        "Gallery crop along the card's left edge: the edge is the frame border.",
    ),
    Case(
        "photo-corner-clipped",
        "crop",
        _jpeg(lambda: scene(_CORNER)),
        ACCEPT,
        None,
        "Card turned 4 deg, its rounded right corner clipped by the border by a few px: nothing printed is lost.",
    ),
    # --- photos: orientation and framing -------------------------------------------------------------------
    Case(
        "table-baseline",
        "photo",
        _jpeg(_spec(width=1280, height=960, card_fraction=0.62, seed=210)),
        ACCEPT,
        None,
        "Card on a table, the gate's home ground.",
    ),
    Case(
        "portrait-photo",
        "photo",
        _jpeg(_spec(width=960, height=1280, card_fraction=0.85, angle_deg=-3.0, seed=211)),
        ACCEPT,
        None,
        "Phone held upright, card across the frame.",
    ),
    Case(
        "portrait-card-upright",
        "photo",
        _jpeg(_spec(width=960, height=1280, card_fraction=0.9, angle_deg=90.0, seed=212)),
        ACCEPT,
        None,
        "Phone held upright, card turned to fill it.",
    ),
    *(
        Case(
            f"rotated-{a}",
            "photo",
            _jpeg(_spec(width=1280, height=960, card_fraction=0.6, angle_deg=float(a), seed=213 + i)),
            ACCEPT,
            None,
            f"Card turned by {a} deg on the table.",
        )
        for i, a in enumerate((0, 90, 180, 270, 30, -30))
    ),
    Case(
        "upside-down-tilted",
        "photo",
        _jpeg(_spec(width=1280, height=960, card_fraction=0.6, angle_deg=178.0, tilt=0.08, seed=219)),
        ACCEPT,
        None,
        "Card upside down, camera tilted.",
    ),
    Case(
        "exif-rotated",
        "photo",
        lambda: encode(scene(SceneSpec(width=1280, height=960, card_fraction=0.62, seed=220)), orientation=6),
        ACCEPT,
        None,
        "Phone stored the pixels sideways with an EXIF orientation tag.",
    ),
    Case(
        "small-highlight",
        "photo",
        _jpeg(_spec(width=1280, height=960, card_fraction=0.62, glare=0.05, seed=221)),
        ACCEPT,
        None,
        "A small specular highlight off the print: all fields readable.",
    ),
    Case(
        "low-light-readable",
        "photo",
        _jpeg(_spec(width=1280, height=960, card_fraction=0.62, exposure=0.55, noise=7.0, seed=222)),
        ACCEPT,
        None,
        "Dim room, noisy sensor, print still readable.",
    ),
    # --- formats and encodings -----------------------------------------------------------------------------
    Case(
        "single-channel-jpeg",
        "format",
        lambda: encode(scene(_TABLE), mode="L"),
        ACCEPT,
        None,
        "Greyscale (one-channel) JPEG of a good photo.",
    ),
    Case("heic", "format", lambda: encode(scene(_TABLE), "HEIF"), ACCEPT, None, "iPhone HEIC of a good photo."),
    Case("webp", "format", lambda: encode(scene(_TABLE), "WEBP"), ACCEPT, None, "WebP of a good photo."),
    Case(
        "jpeg-quality-10",
        "format",
        lambda: encode(scene(_TABLE), quality=10),
        ACCEPT,
        None,
        "Heavily compressed (quality 10, blocky) but the print is readable.",
    ),
    # --- copies, screens, hands ----------------------------------------------------------------------------
    Case(
        "photocopy-greyscale",
        "copy",
        lambda: encode(copy_on_paper(photocopy(render_card(230), 1, 230), (1280, 960), 800, 230), mode="L"),
        ACCEPT,
        None,
        "Greyscale photocopy on copier paper, one-channel JPEG; whole and legible (authenticity is the back "
        "office's call).",
    ),
    Case(
        "phone-screen-moire",
        "screen",
        _jpeg(lambda: screen_photo(231)),
        ACCEPT,
        None,
        "The card shown on a phone screen, moire visible, print legible (recapture is the back office's call).",
    ),
    Case(
        "held-in-hand",
        "hand",
        _jpeg(lambda: in_hand(232)),
        ACCEPT,
        None,
        "Card held in a hand, fingertips over its blank margin only.",
    ),
    # --- rejections ----------------------------------------------------------------------------------------
    Case(
        "cut-off-side",
        "fail",
        _jpeg(_spec(width=1280, height=960, shift=(0.35, 0.0), seed=240)),
        REJECT,
        "card_cut_off",
        "A third of the card is off the right edge.",
    ),
    Case(
        "cut-off-bottom",
        "fail",
        _jpeg(_spec(width=1280, height=960, card_fraction=0.6, shift=(0.0, 0.3), seed=241)),
        REJECT,
        "card_cut_off",
        "The bottom tenth (last rows, signature) is off the frame.",
    ),
    Case(
        "cut-by-border-angled",
        "fail",
        _jpeg(_spec(width=1280, height=960, card_fraction=0.9, angle_deg=4.0, shift=(0.14, 0.0), seed=242)),
        REJECT,
        "card_cut_off",
        "Card at an angle with its photo cut by the border.",
    ),
    Case(
        "crop-cuts-photo",
        "fail",
        _jpeg(_tight(1011, 243, (0.0, 0.0, 0.22, 0.0))),
        REJECT,
        "card_cut_off",
        "Cropped through the portrait.",
    ),
    Case(
        "crop-cuts-all-sides",
        "fail",
        _jpeg(_tight(1200, 244, (0.07, 0.07, 0.07, 0.07))),
        REJECT,
        "card_cut_off",
        "Cropped 7 % into every side: ID-1 proportions, but the print runs off the frame.",
    ),
    Case(
        "photocopy-of-photocopy",
        "copy",
        lambda: encode(copy_on_paper(photocopy(render_card(245), 2, 245), (1280, 960), 800, 245), mode="L"),
        REJECT,
        "blurry",
        "A copy of a copy: the print is smeared.",
    ),
    Case(
        "low-light-too-dark",
        "fail",
        _jpeg(_spec(width=1280, height=960, card_fraction=0.62, exposure=0.3, noise=8.0, seed=246)),
        REJECT,
        "too_dark",
        "Dark room: the card's mean luma is far too low.",
    ),
    Case(
        "overexposed",
        "fail",
        _jpeg(_spec(width=1280, height=960, card_fraction=0.62, exposure=1.6, seed=247)),
        REJECT,
        "too_bright",
        "Washed out: most of the card is saturated.",
    ),
    Case(
        "flash-glare",
        "fail",
        _jpeg(_spec(width=1280, height=960, card_fraction=0.62, glare=0.15, seed=248)),
        REJECT,
        "glare",
        "Flash reflection over the print.",
    ),
    Case(
        "flash-glare-large",
        "fail",
        _jpeg(_spec(width=1280, height=960, card_fraction=0.62, glare=0.35, glare_centre=(0.45, 0.5), seed=249)),
        REJECT,
        "glare",
        "The held-out miss: a flash glare so large it washes out the card's outline.",
    ),
    Case(
        "flash-glare-on-edge",
        "fail",
        _jpeg(_spec(width=1280, height=960, card_fraction=0.62, glare=0.2, glare_centre=(0.3, 0.0), seed=250)),
        REJECT,
        "glare",
        "Flash reflection over the card's top edge.",
    ),
    Case(
        "blurred",
        "fail",
        _jpeg(_spec(width=1280, height=960, card_fraction=0.62, blur_sigma=3.0, seed=251)),
        REJECT,
        "blurry",
        "Out of focus.",
    ),
    Case(
        "blurred-heavily",
        "fail",
        _jpeg(_spec(width=1280, height=960, card_fraction=0.62, blur_sigma=9.0, seed=252)),
        REJECT,
        "blurry",
        "Badly out of focus: the outline itself is soft.",
    ),
    Case(
        "card-too-small",
        "fail",
        _jpeg(_spec(width=1280, height=960, card_fraction=0.3, seed=253)),
        REJECT,
        "card_too_small",
        "Card 384 px wide: the NIK digits are a few pixels tall.",
    ),
    Case(
        "card-tiny",
        "fail",
        _jpeg(_spec(width=1600, height=1200, card_fraction=0.1, seed=254)),
        REJECT,
        "card_too_small",
        "Card 160 px wide, far away on the table.",
    ),
    Case(
        "two-cards",
        "fail",
        _jpeg(lambda: two_cards(255)),
        REJECT,
        "multiple_cards",
        "Two KTPs: which one is the applicant's is not for the gate to guess.",
    ),
    Case(
        "back-of-card",
        "fail",
        _jpeg(_spec(width=1280, height=960, card_fraction=0.62, side="back", seed=256)),
        REJECT,
        "card_back_side",
        "The back of the card: no NIK, name or photo.",
    ),
    Case("selfie-no-card", "fail", _jpeg(lambda: selfie(257)), REJECT, "card_not_found", "A face photo, no card."),
    Case(
        "empty-table",
        "fail",
        _jpeg(_spec(width=1280, height=960, background="none", seed=258)),
        REJECT,
        "card_not_found",
        "The table without the card.",
    ),
)
"""The corpus, in a stable order. Names are unique."""

BY_NAME: dict[str, Case] = {c.name: c for c in CASES}


@cache
def photo(name: str) -> bytes:
    """The upload of case ``name`` (built once per process)."""
    return BY_NAME[name].make()
