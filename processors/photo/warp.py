"""Rectify a detected card outline to the fixed ``card_output`` size, the right way up.

Contract: :func:`warp_card` returns an ``(h, w, 3)`` uint8 array of ``size = (w, h)`` and an orientation score.
Which long edge is the card's top is decided by content: a KTP has its portrait photo on the right, so the
reading whose right third differs most from the card's background (vs. its left third) wins. For a card lying
roughly landscape in the upright frame the natural reading is kept unless the other one is clearly better
(margin ``_FLIP_MARGIN``), so ordinary photos are never turned upside down by a weak signal.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from processors.photo.geometry import Quad, upright_candidates
from processors.photo.quality import ink_mask

_PROBE = (192, 121)
_LINE_PROBE = (256, 161)
"""Probe size for counting lines of print: a KTP's lines (2.6 % of its height, every 5.2 %) stay ~4 px apart."""
_MIN_LINES = 5
"""Lines of print a KTP's front shows at least (it has a dozen; a face or a scene shows a few dark bands)."""
_LINE_ON, _LINE_OFF = 0.1, 0.03
_FLIP_MARGIN = 0.2
_DEVIATION = 40
_MARGIN = 2
"""Pixels kept around the card's bounding box: bilinear sampling reads one pixel beyond a coordinate."""


def _warp(rgb: NDArray[np.uint8], quad: Quad, size: tuple[int, int], interpolation: int) -> NDArray[np.uint8]:
    w, h = size
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32) - 0.5
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), dst)
    out = cv2.warpPerspective(rgb, matrix, (w, h), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(out, dtype=np.uint8)


def photo_side_score(card: NDArray[np.uint8]) -> float:
    """How much more the right third deviates from the card background than the left third (-1..1)."""
    grey = cv2.cvtColor(card, cv2.COLOR_RGB2GRAY).astype(np.int16)
    h, w = grey.shape
    background = int(np.median(grey))
    deviant = np.abs(grey - background) > _DEVIATION
    rows = slice(int(0.25 * h), int(0.85 * h))
    right = float(deviant[rows, int(0.68 * w) : int(0.95 * w)].mean())
    left = float(deviant[rows, int(0.05 * w) : int(0.32 * w)].mean())
    return right - left


def text_lines(card: NDArray[np.uint8]) -> int:
    """Lines of print on the more printed half (left or right) of an upright card image ``(h, w, 3)``: runs of
    rows where print (:func:`processors.photo.quality.ink_mask`) covers at least 10 % of the half, each ended by
    a row under 3 %."""
    grey = np.asarray(cv2.cvtColor(card, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    ink = ink_mask(grey, grey) > 0
    half = ink.shape[1] // 2
    best = 0
    for rows in (ink[:, :half].mean(axis=1), ink[:, half:].mean(axis=1)):
        count, inside = 0, False
        for share in rows:
            if not inside and share >= _LINE_ON:
                count, inside = count + 1, True
            elif inside and share < _LINE_OFF:
                inside = False
        best = max(best, count)
    return best


def layout_score(rgb: NDArray[np.uint8], quad: Quad) -> float:
    """How much the region outlined by ``quad`` in ``rgb`` (``(h, w, 3)``) is laid out like a KTP's front: 0
    unless it holds at least ``_MIN_LINES`` lines of print (:func:`text_lines`), else the :func:`photo_side_score`
    of the better of its two upright readings, warped at a small probe size."""
    natural, turned = upright_candidates(quad)
    if text_lines(_warp(rgb, natural, _LINE_PROBE, cv2.INTER_AREA)) < _MIN_LINES:
        return 0.0
    return max(photo_side_score(_warp(rgb, q, _PROBE, cv2.INTER_AREA)) for q in (natural, turned))


def _is_landscape(quad: Quad) -> bool:
    d = quad[1] - quad[0]
    return bool(abs(d[0]) >= abs(d[1]))


def card_region(pixels: NDArray[np.uint8], quad: Quad) -> tuple[NDArray[np.uint8], Quad]:
    """The bounding box of ``quad`` in ``pixels`` (``(h, w, 3)``, with a margin for interpolation) as a new
    ``(h, w, 4)`` RGBX array, and ``quad`` in its coordinates: only the card's pixels are copied, already padded
    to the 4 channels that :func:`warp_card` works in."""
    h, w = pixels.shape[:2]
    x0, y0 = (max(0, math.floor(v) - _MARGIN) for v in quad.min(axis=0))
    x1, y1 = min(w, math.ceil(quad[:, 0].max()) + _MARGIN), min(h, math.ceil(quad[:, 1].max()) + _MARGIN)
    if x1 <= x0 or y1 <= y0:
        x0, y0, x1, y1 = 0, 0, w, h
    region = np.asarray(cv2.cvtColor(pixels[y0:y1, x0:x1], cv2.COLOR_RGB2RGBA), dtype=np.uint8)
    return region, np.asarray(quad - np.array([x0, y0], dtype=np.float64), dtype=np.float64)


def warp_card(rgb: NDArray[np.uint8], quad: Quad, size: tuple[int, int]) -> tuple[NDArray[np.uint8], float]:
    """Warp the card outlined by ``quad`` (any point order) in ``rgb`` to ``size``; return it and its score.

    ``rgb`` is ``(h, w, 3)``, or ``(h, w, 4)`` with the fourth channel ignored (see :func:`card_region`).
    OpenCV's bilinear warp is vectorised for 4 channels but not for 3, so 3 channels are padded to 4 first."""
    if rgb.ndim != 3 or rgb.shape[2] != 4:
        rgb = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA), dtype=np.uint8)
    natural, turned = upright_candidates(quad)
    s_natural = photo_side_score(_rgb(_warp(rgb, natural, _PROBE, cv2.INTER_AREA)))
    s_turned = photo_side_score(_rgb(_warp(rgb, turned, _PROBE, cv2.INTER_AREA)))
    margin = _FLIP_MARGIN if _is_landscape(natural) else 0.0
    chosen, score = (turned, s_turned) if s_turned > s_natural + margin else (natural, s_natural)
    return _rgb(_warp(rgb, chosen, size, cv2.INTER_LINEAR)), score


def _rgb(rgbx: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Drop the fourth channel (cvtColor: much faster than a numpy copy of a strided slice)."""
    return np.asarray(cv2.cvtColor(rgbx, cv2.COLOR_RGBA2RGB), dtype=np.uint8)
