"""Sharpen a card outline found at the detection scale against the pixels it will be warped from.

Card detection (:mod:`processors.photo.detect`) works on a copy a few times smaller than the working image, so
its corners are only good to a detection pixel or two. :func:`refine_outline` looks across each side of that
outline in the full working image: along ``_SAMPLES`` profiles perpendicular to the side (its middle part, away
from the rounded corners), each ``2 * radius + 1`` pixels long, it takes the outermost strong colour step
(the L1 sum of the three channels' central differences, weighted slightly towards the coarse position; strong:
at least ``_OUTER_SHARE`` of the profile's strongest, so that print just inside a card lying on white paper, which
steps harder than the card's edge there, is passed over), locates it to a fraction of a pixel, fits a line
through these points (Huber loss: a profile that caught some other edge pulls little) and intersects
neighbouring sides.

Contract: deterministic, never raises for a valid array and a finite quad; returns the coarse ``quad`` itself
whenever the evidence is thin (a side with too few strong profiles, parallel sides, or a corner that would move
further than ``2 * radius``), so refinement can only sharpen an outline, never replace it with another.
Cost: ``4 * _SAMPLES * (2 * radius + 1)`` sampled pixels, whatever the image size.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from processors.photo.geometry import Quad, corners_of_lines

_SEARCH_PIXELS = 2.0
"""How far the outline is searched either side of where detection put it, in detection pixels (plus 2)."""
_SAMPLES = 32
"""Profiles across each side."""
_SPAN = (0.12, 0.88)
"""Part of each side that is sampled: ID-1 corners are rounded (radius 3.18 mm, ~4 % of the card's width)."""
_MIN_STEP = 24.0
"""Weakest colour step (sum over R, G and B of the difference across two pixels) that counts as an edge."""
_OUTER_SHARE = 0.3
"""A crest of the step profile at least this share of its highest may be the card's edge; the outermost is."""
_MIN_SHARE = 0.5
"""A profile counts when its step is at least this share of the side's median step."""


def _profiles(quad: Quad) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Where the profiles cross the sides, ``(4, _SAMPLES, 2)``, and the sides' unit normals, ``(4, 2)``."""
    sides = np.roll(quad, -1, axis=0) - quad
    u = sides / np.hypot(sides[:, 0], sides[:, 1])[:, None]
    normals = np.stack([-u[:, 1], u[:, 0]], axis=1)
    t = np.linspace(_SPAN[0], _SPAN[1], _SAMPLES)
    base = quad[:, None, :] + t[None, :, None] * sides[:, None, :]
    return base, normals


def _steps(
    rgb: NDArray[np.uint8],
    base: NDArray[np.float64],
    normals: NDArray[np.float64],
    outward_sign: NDArray[np.float64],
    radius: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Offset along the normal (sub-pixel) and strength of the strongest colour step on every profile."""
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    points = base[:, :, None, :] + offsets[None, None, :, None] * normals[:, None, None, :]  # (4, S, O, 2)
    rows = 4 * _SAMPLES
    map_x = points[..., 0].reshape(rows, -1).astype(np.float32)
    map_y = points[..., 1].reshape(rows, -1).astype(np.float32)
    samples = cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    step = np.abs(samples[:, 2:] - samples[:, :-2]).sum(axis=2, dtype=np.float64)  # centred on offsets[1:-1]
    inner = offsets[1:-1]
    weight = np.exp(-0.5 * (inner / max(1.0, radius / 2)) ** 2)
    weighted = step * weight
    # The outermost strong step, not simply the strongest: against a background close to the card's stock
    # (white paper) the print just inside the edge steps harder than the edge itself.
    strong = weighted >= np.maximum(_MIN_STEP, _OUTER_SHARE * weighted.max(axis=1, keepdims=True))
    peak = np.ones_like(strong)  # a step's own crest, not the flank of a wider one
    peak[:, 1:] &= weighted[:, 1:] >= weighted[:, :-1]
    peak[:, :-1] &= weighted[:, :-1] > weighted[:, 1:]
    strong &= peak
    outward = np.repeat(outward_sign, _SAMPLES)[:, None] * inner[None, :]
    j = np.clip(np.argmax(np.where(strong, outward, -np.inf), axis=1), 1, len(inner) - 2)
    r = np.arange(rows)
    g0, g1, g2 = step[r, j - 1], step[r, j], step[r, j + 1]
    curvature = g0 - 2 * g1 + g2
    safe = np.where(curvature < 0, curvature, -1.0)
    delta = np.where(curvature < 0, np.clip(0.5 * (g0 - g2) / safe, -0.5, 0.5), 0.0)
    return inner[j] + delta, g1


def search_radius(detection_pixel: float) -> int:
    """The search radius, in working pixels, for an outline found on a detection image whose pixels are
    ``detection_pixel`` working pixels wide (detection is good to about one of them)."""
    return math.ceil(_SEARCH_PIXELS * detection_pixel) + 2


def refine_outline(rgb: NDArray[np.uint8], quad: Quad, radius: int) -> Quad:
    """``quad`` (corners in ``rgb``'s pixels, in order around the outline) moved onto the card's edges in
    ``rgb`` (``(h, w, 3)`` uint8), searching ``radius`` pixels either side of each side; or ``quad`` itself."""
    radius = max(2, int(radius))
    sides = np.roll(quad, -1, axis=0) - quad
    if not np.isfinite(quad).all() or np.hypot(sides[:, 0], sides[:, 1]).min() < 4 * radius:
        return quad
    base, normals = _profiles(quad)
    mids = base[:, _SAMPLES // 2, :]
    outward_sign = np.sign(((mids - quad.mean(axis=0)) * normals).sum(axis=1))
    offset, strength = _steps(rgb, base, normals, outward_sign, radius)
    found = base.reshape(-1, 2) + offset[:, None] * np.repeat(normals, _SAMPLES, axis=0)
    lines = np.empty((4, 4), dtype=np.float64)
    for i in range(4):
        rows = slice(i * _SAMPLES, (i + 1) * _SAMPLES)
        side_strength = strength[rows]
        keep = (side_strength >= _MIN_STEP) & (side_strength >= _MIN_SHARE * np.median(side_strength))
        if int(keep.sum()) < _SAMPLES // 2:
            return quad
        points = found[rows][keep].astype(np.float32)
        lines[i] = cv2.fitLine(points, cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
    corners = corners_of_lines(lines)
    if corners is None or (np.hypot(*(corners - quad).T) > 2 * radius).any():
        return quad
    return corners
