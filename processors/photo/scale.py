"""Choose the decode scale (a power of two) so that speed never costs card resolution, and halve pixels.

:func:`first_scale` guesses from the photo size alone, assuming the card fills ``draft_card_fraction`` of the
longer side; :func:`finer_scale` corrects the guess once the card has been measured. :func:`halve` is the
reduction used after decoding (for the frame and the detection image).
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from processors.photo.policy import PhotoPolicy

SCALES = (8, 4, 2, 1)


def first_scale(long_side: int, policy: PhotoPolicy) -> int:
    """Largest scale at which a card filling ``draft_card_fraction`` of ``long_side`` still meets the output."""
    need = max(policy.card_output[0] / policy.draft_card_fraction, float(policy.detect_side))
    for scale in SCALES:
        if long_side / scale >= need:
            return scale
    return 1


def finer_scale(scale: int, card_long: float, card_short: float, policy: PhotoPolicy) -> int:
    """Scale to re-decode at when the card, measured at ``scale`` as ``card_long x card_short`` working pixels,
    is smaller than ``card_output``; returns ``scale`` itself when no finer decode is needed or possible."""
    out_w, out_h = policy.card_output
    if scale == 1 or (card_long >= out_w and card_short >= out_h):
        return scale
    for candidate in SCALES:
        if candidate < scale and card_long * scale / candidate >= out_w and card_short * scale / candidate >= out_h:
            return candidate
    return 1


def halve(pixels: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """``pixels`` at half size by 2x2 box means (OpenCV's vectorised path). An odd last row or column is
    dropped, so that pixel centres map exactly: ``x_half = (x + 0.5) / 2 - 0.5``."""
    h, w = pixels.shape[:2]
    even = pixels[: h // 2 * 2, : w // 2 * 2]
    return np.asarray(cv2.resize(even, (w // 2, h // 2), interpolation=cv2.INTER_AREA), dtype=np.uint8)
