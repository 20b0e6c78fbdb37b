"""Find the ID-1 card outline in a photo with OpenCV.

Contract: :func:`find_card` looks at a copy downscaled to a longer side of ``PhotoPolicy.detect_side`` and
returns the best card-like quadrilateral, in the coordinates of the image it was given, with a confidence in
``[0, 1]`` and the size of a detection pixel (the outline is good to about one; :mod:`processors.photo.edges`
sharpens it), or ``None`` when nothing quadrilateral is there at all. It is deterministic and never raises for
any RGB array.

Candidates come from three segmentations (Otsu on grey: card lighter than the scene; Otsu on saturation, both
polarities: light-blue card on white or on colourful backgrounds; Canny edges). Each outer contour's convex
hull is reduced to four points and scored by: closeness of its rectified aspect to ID-1 (85.60/53.98,
perspective tolerated), fill (contour area / quad area), edge support (share of the outline lying on image
edges; low when the card is cut by the frame border) and sane interior angles. Confidence is the geometric
mean of the three scores, each of which reaches 1 only for a perfect outline (so near-ties are decided by the
better fit, not by the order of the segmentations); the most confident candidate wins unless a nearly as
confident, much larger one contains it (the card around its own card-shaped photo box).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from processors.photo.geometry import (
    Quad,
    aspect_score,
    clockwise,
    corners_of_lines,
    interior_angles,
    polygon_area,
)
from processors.photo.policy import ID1_ASPECT, PhotoPolicy
from processors.photo.scale import halve

_MIN_AREA_FRACTION = 0.01
_SAMPLES_PER_EDGE = 64
_CONFIDENCE_SLACK = 0.1
_CONTAINER_AREA_RATIO = 2.0
_SURFACE_DISTANCE = 24.0
"""Fixed threshold on the L1 Lab distance from the surface colour: finds a light card on white paper."""


@dataclass(frozen=True, slots=True)
class Detection:
    """A candidate card outline (corners in input-image pixels) and its confidence in ``[0, 1]``."""

    quad: Quad
    confidence: float
    pixel: float = 1.0
    """Size of a pixel of the detection image, in input-image pixels: the outline is good to about that."""


def _small(rgb: NDArray[np.uint8], side: int) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """``rgb`` reduced to a longer side of ``side`` (or left as it is when not longer), and the scale factors
    ``(x, y)`` from ``rgb``'s pixel centres to the small image's.

    Halvings by OpenCV's 2x2 box mean (its vectorised path) while the result stays at least ``side`` long, then
    one bilinear step of a ratio in ``(0.5, 1)``, which reads every source pixel."""
    small, factors = rgb, np.ones(2, dtype=np.float64)
    while max(small.shape[:2]) >= 2 * side:
        small = halve(small)
        factors *= 0.5
    h, w = small.shape[:2]
    if max(h, w) > side:
        f = side / max(h, w)
        size = (max(1, round(w * f)), max(1, round(h * f)))
        small = np.asarray(cv2.resize(small, size, interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
        factors *= np.array([size[0] / w, size[1] / h])
    return small, factors


def _border_distance(small: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """L1 colour distance (OpenCV 8-bit Lab) of each pixel from the median colour of the image border."""
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB)
    h, w = lab.shape[:2]
    bh, bw = max(1, h // 30), max(1, w // 30)
    border = np.concatenate(
        [lab[:bh].reshape(-1, 3), lab[-bh:].reshape(-1, 3), lab[:, :bw].reshape(-1, 3), lab[:, -bw:].reshape(-1, 3)]
    )
    surface = [_median_u8(border[:, c]) for c in range(3)]
    # A scalar operand (OpenCV takes a 4-tuple; its stubs only list arrays), not a filled image: the same
    # saturated difference without writing a second image.
    scalar: Any = (surface[0], surface[1], surface[2], 0.0)
    diff = cv2.absdiff(lab, scalar)
    # The sum of the three channels, saturated at 255 by OpenCV (8-bit in, 8-bit out).
    return np.asarray(cv2.transform(diff, np.ones((1, 3), dtype=np.float32)), dtype=np.uint8)


def _median_u8(values: NDArray[np.uint8]) -> float:
    """``round(np.median(values))`` (halves to even), from a histogram: no sort of the values."""
    cumulative = np.cumsum(np.bincount(values, minlength=256))
    n = len(values)
    low, high = np.searchsorted(cumulative, [(n - 1) // 2, n // 2], side="right")
    return float(round((int(low) + int(high)) / 2))


def _masks(small: NDArray[np.uint8]) -> tuple[list[NDArray[np.uint8]], NDArray[np.uint8]]:
    grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (5, 5), 0)
    sat = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2HSV)[:, :, 1], (5, 5), 0)
    dist = cv2.GaussianBlur(_border_distance(small), (5, 5), 0)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5))
    masks: list[NDArray[np.uint8]] = []
    sources = (
        (grey, cv2.THRESH_BINARY | cv2.THRESH_OTSU),
        (sat, cv2.THRESH_BINARY | cv2.THRESH_OTSU),
        (sat, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU),
        (dist, cv2.THRESH_BINARY | cv2.THRESH_OTSU),
        (dist, cv2.THRESH_BINARY),
    )
    thresholds: list[float] = []
    for channel, method in sources:
        level, mask = cv2.threshold(channel, _SURFACE_DISTANCE, 255, method)
        thresholds.append(float(level))
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        masks.append(np.asarray(cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel), dtype=np.uint8))
    otsu = thresholds[0]  # Otsu's level on the grey image
    high = min(100.0, max(20.0, 0.5 * float(otsu)))
    edges = np.asarray(cv2.Canny(grey, high / 2, high), np.uint8)
    edges_thick = np.asarray(cv2.dilate(edges, np.ones((5, 5), np.uint8)), dtype=np.uint8)
    masks.append(edges_thick)
    return masks, edges_thick


def _quad_from_contour(contour: NDArray[Any]) -> Quad | None:
    hull = cv2.convexHull(contour)
    perimeter = cv2.arcLength(hull, True)
    for eps in (0.01, 0.02, 0.03, 0.05, 0.08):
        approx = cv2.approxPolyDP(hull, eps * perimeter, True)
        if len(approx) == 4:
            return clockwise(approx.reshape(4, 2).astype(np.float64))
        if len(approx) < 4:
            return None
    return None


def _refine(quad: Quad, points: NDArray[np.float64]) -> Quad:
    """Fit a line to the contour points along each side and intersect neighbours: true corners of a card with
    rounded corners (which the polygon approximation cuts off). Returns ``quad`` unchanged if the fit fails.

    The points of a side are those in its middle 60 % and within ``max(3, 6 %)`` of its length from it; the four
    sides are selected at once (one pass over the contour), each fitted by least squares."""
    ends = np.roll(quad, -1, axis=0)
    sides = ends - quad
    lengths = np.hypot(sides[:, 0], sides[:, 1])
    if lengths.min() < 8:
        return quad
    u = sides / lengths[:, None]
    rel_x = points[:, 0][None, :] - quad[:, 0][:, None]  # (side, point)
    rel_y = points[:, 1][None, :] - quad[:, 1][:, None]
    along = rel_x * u[:, 0][:, None] + rel_y * u[:, 1][:, None]
    across = np.abs(rel_y * u[:, 0][:, None] - rel_x * u[:, 1][:, None])
    chosen = (
        (along > 0.2 * lengths[:, None])
        & (along < 0.8 * lengths[:, None])
        & (across < np.maximum(3.0, 0.06 * lengths)[:, None])
    )
    lines = np.empty((4, 4), dtype=np.float64)  # per side: direction (vx, vy), point (x0, y0)
    for i in range(4):
        side_points = points[chosen[i]]
        if len(side_points) < 5:
            return quad
        lines[i] = cv2.fitLine(side_points.astype(np.float32), cv2.DIST_L2, 0, 0.01, 0.01).ravel()
    corners = corners_of_lines(lines)
    if corners is None or (np.hypot(*(corners - quad).T) > 0.15 * np.roll(lengths, 1)).any():
        return quad
    return corners


def _edge_support(quad: Quad, edges: NDArray[np.uint8]) -> float:
    h, w = edges.shape
    t = np.linspace(0.0, 1.0, _SAMPLES_PER_EDGE, endpoint=False)[:, None]
    pts = np.concatenate([quad[i] + t * (quad[(i + 1) % 4] - quad[i]) for i in range(4)])
    xs = np.clip(np.rint(pts[:, 0]).astype(np.int64), 0, w - 1)
    ys = np.clip(np.rint(pts[:, 1]).astype(np.int64), 0, h - 1)
    inside = (pts[:, 0] > 1) & (pts[:, 0] < w - 2) & (pts[:, 1] > 1) & (pts[:, 1] < h - 2)
    return float(np.mean((edges[ys, xs] > 0) & inside))


def _clamp01(value: float) -> float:
    return min(1.0, max(0.0, value))


def _score(contour: NDArray[Any], edges: NDArray[np.uint8], image_area: float) -> tuple[float, Quad] | None:
    h, w = edges.shape
    area = float(cv2.contourArea(contour))
    if area < _MIN_AREA_FRACTION * image_area:
        return None
    quad = _quad_from_contour(contour)
    if quad is None:
        return None
    quad = _refine(quad, contour.reshape(-1, 2).astype(np.float64))
    margin = 0.01 * max(h, w)
    if (
        quad[:, 0].min() < margin
        or quad[:, 1].min() < margin
        or quad[:, 0].max() > w - 1 - margin
        or quad[:, 1].max() > h - 1 - margin
    ):
        return None  # touches the frame: the card is not wholly in view
    angles = interior_angles(quad)
    if angles.min() < 45 or angles.max() > 135:
        return None
    quad_area = polygon_area(quad)
    fill = min(area, quad_area) / max(area, quad_area, 1e-9)
    fill_score = _clamp01((fill - 0.85) / 0.15)
    support_score = _clamp01((_edge_support(quad, edges) - 0.5) / 0.5)
    confidence = (aspect_score(quad, ID1_ASPECT) * fill_score * support_score) ** (1 / 3)
    return confidence, quad


def find_card(rgb: NDArray[np.uint8], policy: PhotoPolicy) -> Detection | None:
    """Return the most card-like quadrilateral in ``rgb`` (an ``(h, w, 3)`` uint8 RGB array) or ``None``."""
    small, factors = _small(rgb, policy.detect_side)
    masks, edges = _masks(small)
    image_area = float(small.shape[0] * small.shape[1])
    candidates: list[tuple[float, float, Quad]] = []
    seen: set[bytes] = set()
    for mask in masks:
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        for contour in contours:
            key = contour.tobytes()
            if key in seen:  # the same outline from another segmentation: same score, same candidate
                continue
            seen.add(key)
            scored = _score(contour, edges, image_area)
            if scored is not None:
                candidates.append((scored[0], polygon_area(scored[1]), scored[1]))
    if not candidates:
        return None
    # The most confident candidate wins, unless a nearly as confident one is much larger and contains it: a
    # card contains its own photo box, which is itself card-shaped.
    best = max(candidates, key=lambda c: c[0])
    floor = max(policy.card_min_confidence, best[0] - _CONFIDENCE_SLACK)
    centre = best[2].mean(axis=0)
    for cand in sorted(candidates, key=lambda c: -c[1]):
        inside = cv2.pointPolygonTest(cand[2].astype(np.float32), (float(centre[0]), float(centre[1])), False) > 0
        if cand[0] >= floor and cand[1] >= _CONTAINER_AREA_RATIO * best[1] and inside:
            best = cand
            break
    confidence, quad = best[0], best[2]
    return Detection(quad=(quad + 0.5) / factors - 0.5, confidence=round(confidence, 4), pixel=float(1 / factors.min()))
