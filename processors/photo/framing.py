"""Is a card that touches the frame border whole? Its proportions, and the blank margin along the border.

A scan cropped to the card, a gallery crop, or a card pushed into the scanner's corner has sides that are the
frame border itself: no edge is visible there, so the outline alone cannot tell a whole card from one cut by the
frame. Two facts can:

* proportions: a whole card's outline has the ID-1 aspect (85.60 x 53.98 mm); a card cut across one side is
  shorter in that direction (``PhotoPolicy.card_edge_aspect_tolerance``);
* the blank margin: a KTP's print stops a few percent short of its edges, so the strip just inside a whole card's
  side is bare card stock, while a frame border that cuts the card runs through print
  (``PhotoPolicy.card_edge_max_ink``, sampled in the strip 0.5..2 % of the card's width inside each side that lies
  on the border).

Contract: :func:`check_whole` is pure and deterministic; it raises only ``Rejected("card_cut_off")`` and returns
the evidence it measured (``edge_aspect_deviation``, ``edge_ink``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from processors.photo.geometry import Quad, long_short
from processors.photo.policy import ID1_ASPECT, PhotoPolicy
from processors.photo.quality import ink_mask
from processors.reasons import Rejected

_ALONG = np.linspace(0.1, 0.9, 48)
"""Where along a side its margin is sampled (clear of the rounded corners)."""
_DEPTHS = np.linspace(0.005, 0.02, 4)
"""How deep inside a side its margin is sampled, as fractions of the card's longer edge."""
_BORDER_SHARE = 0.5
"""A side lies on the frame border when at least this share of its margin samples' feet do."""
_PROBE = (160, 101)


def border_sides(quad: Quad, shape: tuple[int, ...]) -> NDArray[np.bool_]:
    """Which sides ``i`` (corner ``i`` to ``i + 1``) of ``quad`` lie on or beyond the border of an image of
    ``shape``: within 1 % of its longer side, or 2 pixels."""
    h, w = shape[:2]
    margin = max(2.0, 0.01 * max(h, w))
    ends = np.roll(quad, -1, axis=0)
    pts = quad[:, None, :] + _ALONG[None, :, None] * (ends - quad)[:, None, :]
    near = (pts[..., 0] < margin) | (pts[..., 1] < margin) | (pts[..., 0] > w - 1 - margin)
    near |= pts[..., 1] > h - 1 - margin
    return np.asarray(near.mean(axis=1) >= _BORDER_SHARE, dtype=np.bool_)


def _card_grey(grey: NDArray[np.uint8], quad: Quad) -> NDArray[np.uint8]:
    w, h = _PROBE
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32) - 0.5
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), dst)
    return np.asarray(cv2.warpPerspective(grey, matrix, _PROBE, flags=cv2.INTER_AREA), dtype=np.uint8)


def margin_ink(grey: NDArray[np.uint8], quad: Quad, sides: NDArray[np.bool_]) -> float:
    """Largest share of ink (see :func:`processors.photo.quality.ink_mask`) in the margin strip inside the sides
    of ``quad`` flagged in ``sides``, over the samples that fall in the image; 0 when none is flagged."""
    if not sides.any():
        return 0.0
    h, w = grey.shape
    card = _card_grey(grey, quad)
    long_edge, _ = long_short(quad)
    centre = quad.mean(axis=0)
    worst = 0.0
    for i in np.flatnonzero(sides):
        a, b = quad[i], quad[(i + 1) % 4]
        d = (b - a) / max(float(np.hypot(*(b - a))), 1e-9)
        normal = np.array([-d[1], d[0]])
        if float(np.dot(centre - a, normal)) < 0:
            normal = -normal
        feet = a + _ALONG[:, None] * (b - a)
        pts = feet[:, None, :] + (_DEPTHS * long_edge)[None, :, None] * normal[None, None, :]
        xs, ys = pts[..., 0].astype(np.float32), pts[..., 1].astype(np.float32)
        valid = (xs >= 0) & (ys >= 0) & (xs <= w - 1) & (ys <= h - 1)
        if not valid.any():
            continue
        strip = np.asarray(cv2.remap(grey, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), np.uint8)
        ink = ink_mask(strip, card)
        worst = max(worst, float((ink[valid] > 0).mean()))
    return worst


def check_whole(rgb: NDArray[np.uint8], quad: Quad, policy: PhotoPolicy) -> dict[str, float]:
    """Raise ``card_cut_off`` unless the card outlined by ``quad`` in ``rgb`` (``(h, w, 3)``), which touches the
    frame border, is whole; return the measures."""
    long_edge, short_edge = long_short(quad)
    deviation = abs(math.log(max(long_edge, 1e-9) / max(short_edge, 1e-9) / ID1_ASPECT))
    grey = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    ink = margin_ink(grey, quad, border_sides(quad, rgb.shape))
    measures = {"edge_aspect_deviation": round(deviation, 4), "edge_ink": round(ink, 4)}
    if deviation > policy.card_edge_aspect_tolerance:
        raise Rejected(
            "card_cut_off", measured=measures["edge_aspect_deviation"], threshold=policy.card_edge_aspect_tolerance
        )
    if ink > policy.card_edge_max_ink:
        raise Rejected("card_cut_off", measured=measures["edge_ink"], threshold=policy.card_edge_max_ink)
    return measures
