"""Image-quality measures on a fixed scale, and the checks that turn them into rejections.

Measures (:func:`measure`), taken on the warped card at ``card_output`` size, inset by ``_INSET`` on every side
so that a sliver of background at the card edge cannot dominate:

* ``blur``: variance of the Laplacian of the grey image (higher is sharper);
* ``glare_fraction``: share of pixels whose R, G and B are all >= ``PhotoPolicy.glare_luma``;
* ``mean_luma``: mean BT.601 luma (0..255).

:func:`check` raises the first failing rule in this order (most fundamental first, so that the applicant is
told the cause, not a symptom): ``too_dark``, ``too_bright``, ``glare``, ``blurry``.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from processors.photo.policy import PhotoPolicy
from processors.reasons import Rejected

_INSET = 0.04


def measure(rgb: NDArray[np.uint8], policy: PhotoPolicy) -> dict[str, float]:
    """Return ``blur``, ``glare_fraction`` and ``mean_luma`` for an RGB image already at the analysis scale."""
    h, w = rgb.shape[:2]
    dy, dx = int(h * _INSET), int(w * _INSET)
    region = rgb[dy : h - dy, dx : w - dx]
    grey = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY)
    # The 8-bit Laplacian fits 16 bits exactly, and numpy's variance of it equals that of a float64 Laplacian,
    # at a quarter of the memory traffic.
    blur = float(cv2.Laplacian(grey, cv2.CV_16S).var())
    low = np.full(3, policy.glare_luma, dtype=np.uint8)
    saturated = cv2.inRange(region, low, np.full(3, 255, dtype=np.uint8))
    glare = cv2.countNonZero(saturated) / float(saturated.size)
    mean_luma = cv2.mean(grey)[0]  # exact: an integer sum over the pixel count, as numpy's mean
    return {"blur": round(blur, 3), "glare_fraction": round(glare, 5), "mean_luma": round(float(mean_luma), 3)}


def check_exposure(mean_luma: float, policy: PhotoPolicy) -> None:
    """Raise ``too_dark`` or ``too_bright`` for a mean luma outside the policy."""
    if mean_luma <= policy.dark_max_mean:
        raise Rejected("too_dark", measured=mean_luma, threshold=policy.dark_max_mean)
    if mean_luma >= policy.bright_min_mean:
        raise Rejected("too_bright", measured=mean_luma, threshold=policy.bright_min_mean)


def check(measures: dict[str, float], policy: PhotoPolicy, *, enforce_blur: bool = True) -> None:
    """Raise the first failing quality rule (see module docstring) for ``measures`` from :func:`measure`.

    Saturation over at least ``overexposed_fraction`` of the card is overexposure (``too_bright``), not a
    glare spot."""
    check_exposure(measures["mean_luma"], policy)
    if measures["glare_fraction"] >= policy.overexposed_fraction:
        raise Rejected("too_bright", measured=measures["glare_fraction"], threshold=policy.overexposed_fraction)
    if measures["glare_fraction"] > policy.glare_max_fraction:
        raise Rejected("glare", measured=measures["glare_fraction"], threshold=policy.glare_max_fraction)
    if enforce_blur and measures["blur"] < policy.blur_min:
        raise Rejected("blurry", measured=measures["blur"], threshold=policy.blur_min)
