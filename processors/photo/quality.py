"""Image-quality measures on a fixed scale, and the checks that turn them into rejections.

Measures (:func:`measure`), taken on the warped card at ``card_output`` size, inset by ``_INSET`` on every side
so that a sliver of background at the card edge cannot dominate:

* ``blur``: variance of the Laplacian of the grey image (higher is sharper);
* ``glare_fraction``: share of pixels whose R, G and B are all >= ``PhotoPolicy.glare_luma``;
* ``mean_luma``: mean BT.601 luma (0..255);
* ``ink_fraction``: share of printed (dark) pixels, see :func:`ink_mask`.

For a card smaller than ``card_output`` in the photo, ``blur`` is taken at the card's own width (the warp
upscaled it, and interpolation alone would make a sharp card measure soft).

:func:`check` raises the first failing rule in this order (most fundamental first, so that the applicant is
told the cause, not a symptom): ``too_dark``; saturation over ``overexposed_fraction`` (``too_bright``, or
``glare`` when the print is washed out with the stock); ``too_bright`` (mean luma); ``glare``;
``card_back_side``; ``blurry``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from processors.photo.policy import PhotoPolicy
from processors.reasons import Rejected

_INSET = 0.04
_LIT_CLOSE = 0.02
"""Closing radius, as a share of the card's height, that bridges a line of print (2.6 % of a KTP's height)."""
_INK_CONTRAST = (40.0, 0.3)
"""A pixel is ink when it is darker than the card's median grey by at least ``max(40, 0.3 * median)``."""


def _median(grey: NDArray[np.uint8]) -> float:
    """The lower median of ``grey``, from OpenCV's histogram (no sort, no copy of the pixels)."""
    hist = np.asarray(cv2.calcHist([np.ascontiguousarray(grey)], [0], None, [256], [0, 256]), np.float64).ravel()
    cumulative = np.cumsum(hist)
    return float(np.searchsorted(cumulative, (cumulative[-1] - 1) // 2, side="right"))


def ink_mask(grey: NDArray[np.uint8], card: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Which pixels of ``grey`` are print (255; else 0) on a card whose grey pixels (or a sample of them) are
    ``card``: darker than the card stock (its median) by the ``_INK_CONTRAST`` rule, whatever the exposure."""
    stock = _median(card)
    level = stock - max(_INK_CONTRAST[0], _INK_CONTRAST[1] * stock)  # print is strictly darker than this
    _, mask = cv2.threshold(grey, math.ceil(level) - 1, 255, cv2.THRESH_BINARY_INV)
    return np.asarray(mask, dtype=np.uint8)


def _blur(grey: NDArray[np.uint8], native_width: float | None) -> float:
    if native_width is not None and native_width < grey.shape[1]:
        h, w = grey.shape
        size = (max(8, round(native_width)), max(8, round(h * native_width / w)))
        grey = np.asarray(cv2.resize(grey, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    # The 8-bit Laplacian fits 16 bits exactly, and numpy's variance of it equals that of a float64 Laplacian,
    # at a quarter of the memory traffic.
    return float(cv2.Laplacian(grey, cv2.CV_16S).var())


def measure(rgb: NDArray[np.uint8], policy: PhotoPolicy, native_width: float | None = None) -> dict[str, float]:
    """Return ``blur``, ``glare_fraction``, ``mean_luma`` and ``ink_fraction`` for an RGB image already at the
    analysis scale; ``native_width``: the width the image had in the photo, when smaller (see module doc)."""
    h, w = rgb.shape[:2]
    dy, dx = int(h * _INSET), int(w * _INSET)
    region = rgb[dy : h - dy, dx : w - dx]
    grey = np.asarray(cv2.cvtColor(region, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    blur = _blur(grey, None if native_width is None else native_width * (1 - 2 * _INSET))
    low = np.full(3, policy.glare_luma, dtype=np.uint8)
    saturated = np.asarray(cv2.inRange(region, low, np.full(3, 255, dtype=np.uint8)), dtype=np.uint8)
    glare = cv2.countNonZero(saturated) / float(saturated.size)
    mean_luma = cv2.mean(grey)[0]  # exact: an integer sum over the pixel count, as numpy's mean
    ink = ink_mask(grey, grey)
    measures = {
        "blur": round(blur, 3),
        "glare_fraction": round(glare, 5),
        "mean_luma": round(float(mean_luma), 3),
        "ink_fraction": round(cv2.countNonZero(ink) / float(ink.size), 4),
    }
    if glare >= policy.overexposed_fraction:
        measures["lit_ink"] = round(_lit_ink(saturated, ink), 4)
    return measures


def _lit_ink(saturated: NDArray[np.uint8], ink: NDArray[np.uint8]) -> float:
    """Share of print inside the saturated area (closed over the gaps a line of print leaves): an overexposed
    card keeps its print dark inside the washed-out stock; a flash reflection washes the print out with it."""
    size = max(3, 2 * round(_LIT_CLOSE * saturated.shape[0]) + 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    lit = np.asarray(cv2.morphologyEx(saturated, cv2.MORPH_CLOSE, kernel), dtype=np.uint8) > 0
    return float((ink[lit] > 0).mean()) if lit.any() else 0.0


def largest_glare(rgb: NDArray[np.uint8], policy: PhotoPolicy) -> float:
    """Share of ``rgb`` covered by its largest connected blob of saturated pixels (see ``glare_luma``) that
    touches at most one side of the frame: a reflection lies on something; saturated paper round a scanned card
    runs along the frame."""
    low = np.full(3, policy.glare_luma, dtype=np.uint8)
    saturated = cv2.inRange(rgb, low, np.full(3, 255, dtype=np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(saturated, connectivity=8)
    h, w = saturated.shape[:2]
    x, y = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_TOP]
    right, bottom = x + stats[1:, cv2.CC_STAT_WIDTH], y + stats[1:, cv2.CC_STAT_HEIGHT]
    sides = (x == 0).astype(int) + (y == 0) + (right == w) + (bottom == h)
    areas = stats[1:, cv2.CC_STAT_AREA][sides <= 1]
    return float(areas.max()) / float(h * w) if count > 1 and areas.size else 0.0


def check_exposure(mean_luma: float, policy: PhotoPolicy) -> None:
    """Raise ``too_dark`` or ``too_bright`` for a mean luma outside the policy."""
    if mean_luma <= policy.dark_max_mean:
        raise Rejected("too_dark", measured=mean_luma, threshold=policy.dark_max_mean)
    if mean_luma >= policy.bright_min_mean:
        raise Rejected("too_bright", measured=mean_luma, threshold=policy.bright_min_mean)


def check(measures: dict[str, float], policy: PhotoPolicy, *, on_card: bool = True) -> None:
    """Raise the first failing quality rule (see module docstring) for ``measures`` from :func:`measure`.

    Saturation over at least ``overexposed_fraction`` of the card is overexposure (``too_bright``), not a
    glare spot, unless the print is washed out with the stock there (``lit_ink`` below ``overexposed_min_ink``):
    that is a reflection too large to be a spot, and ``glare``. ``on_card=False`` (measures of a whole frame
    without a card) skips the rules that only mean something on a card: print (``card_back_side``) and blur
    (the background's, not the card's)."""
    if measures["mean_luma"] <= policy.dark_max_mean:
        raise Rejected("too_dark", measured=measures["mean_luma"], threshold=policy.dark_max_mean)
    if measures["glare_fraction"] >= policy.overexposed_fraction:
        code = "too_bright" if measures.get("lit_ink", 1.0) >= policy.overexposed_min_ink else "glare"
        raise Rejected(code, measured=measures["glare_fraction"], threshold=policy.overexposed_fraction)
    check_exposure(measures["mean_luma"], policy)
    if measures["glare_fraction"] > policy.glare_max_fraction:
        raise Rejected("glare", measured=measures["glare_fraction"], threshold=policy.glare_max_fraction)
    if on_card and measures["ink_fraction"] < policy.card_min_ink:
        raise Rejected("card_back_side", measured=measures["ink_fraction"], threshold=policy.card_min_ink)
    if on_card and measures["blur"] < policy.blur_min:
        raise Rejected("blurry", measured=measures["blur"], threshold=policy.blur_min)
