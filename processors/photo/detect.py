"""Find the ID-1 card outline in a photo with OpenCV.

Contract: :func:`find_card` looks at a copy downscaled to ``PhotoPolicy.detect_side`` and returns the best
card-like quadrilateral, in the coordinates of the image it was given, with a confidence in ``[0, 1]``, or
``None`` when nothing quadrilateral is there at all. It is deterministic and never raises for any RGB array.

Candidates come from three segmentations (Otsu on grey: card lighter than the scene; Otsu on saturation, both
polarities: light-blue card on white or on colourful backgrounds; Canny edges). Each outer contour's convex
hull is reduced to four points and scored by: closeness of its rectified aspect to ID-1 (85.60/53.98,
perspective tolerated), fill (contour area / quad area), edge support (share of the outline lying on image
edges; low when the card is cut by the frame border) and sane interior angles. Confidence is the geometric
mean of the three scores; the most confident candidate wins unless a nearly as confident, much larger one
contains it (the card around its own card-shaped photo box).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from processors.photo.geometry import Quad, aspect_score, clockwise, interior_angles, polygon_area
from processors.photo.policy import ID1_ASPECT, PhotoPolicy

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


def _small(rgb: NDArray[np.uint8] | Image.Image, side: int) -> tuple[NDArray[np.uint8], float]:
    """Downscale by an integer factor (box mean) to a longer side of at least ``side``.

    An array goes through OpenCV's fast area path; a Pillow image is reduced by Pillow before it becomes an array,
    so the full-size pixels are never copied (the two can differ by one level in rounding)."""
    if isinstance(rgb, Image.Image):
        w, h = rgb.size
        k = max(1, max(h, w) // side)
        image = rgb if k == 1 else rgb.reduce(k, box=(0, 0, w // k * k, h // k * k))
        return np.asarray(image, dtype=np.uint8), 1.0 / k
    h, w = rgb.shape[:2]
    k = max(1, max(h, w) // side)
    if k == 1:
        return rgb, 1.0
    crop = rgb[: h // k * k, : w // k * k]  # exact integer ratio: OpenCV's fast box-filter path
    small = cv2.resize(crop, (w // k, h // k), interpolation=cv2.INTER_AREA)
    return np.asarray(small, dtype=np.uint8), 1.0 / k


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


def _intersect(
    p1: NDArray[np.float64], d1: NDArray[np.float64], p2: NDArray[np.float64], d2: NDArray[np.float64]
) -> NDArray[np.float64] | None:
    det = d1[0] * (-d2[1]) - d1[1] * (-d2[0])
    if abs(det) < 1e-9:
        return None
    rhs = p2 - p1
    t = (rhs[0] * (-d2[1]) - rhs[1] * (-d2[0])) / det
    return np.asarray(p1 + t * d1, dtype=np.float64)


def _refine(quad: Quad, points: NDArray[np.float64]) -> Quad:
    """Fit a line to the contour points along each side and intersect neighbours: true corners of a card with
    rounded corners (which the polygon approximation cuts off). Returns ``quad`` unchanged if the fit fails."""
    lines: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []
    for i in range(4):
        a, b = quad[i], quad[(i + 1) % 4]
        length = float(np.linalg.norm(b - a))
        if length < 8:
            return quad
        u = (b - a) / length
        normal = np.array([-u[1], u[0]])
        rel = points - a
        along, across = rel @ u, np.abs(rel @ normal)
        chosen = points[(along > 0.2 * length) & (along < 0.8 * length) & (across < max(3.0, 0.06 * length))]
        if len(chosen) < 5:
            return quad
        vx, vy, x0, y0 = cv2.fitLine(chosen.astype(np.float32), cv2.DIST_L2, 0, 0.01, 0.01).ravel()
        lines.append((np.array([x0, y0], dtype=np.float64), np.array([vx, vy], dtype=np.float64)))
    corners = []
    for i in range(4):
        corner = _intersect(*lines[i - 1], *lines[i])
        if corner is None or float(np.linalg.norm(corner - quad[i])) > 0.15 * float(
            np.linalg.norm(quad[i] - quad[i - 1])
        ):
            return quad
        corners.append(corner)
    return np.asarray(corners, dtype=np.float64)


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
    fill_score = _clamp01((fill - 0.85) / 0.12)
    support_score = _clamp01((_edge_support(quad, edges) - 0.5) / 0.4)
    confidence = (aspect_score(quad, ID1_ASPECT) * fill_score * support_score) ** (1 / 3)
    return confidence, quad


def find_card(rgb: NDArray[np.uint8] | Image.Image, policy: PhotoPolicy) -> Detection | None:
    """Return the most card-like quadrilateral in ``rgb`` (H x W x 3 uint8 array, or an ``RGB`` image) or ``None``."""
    small, factor = _small(rgb, policy.detect_side)
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
    return Detection(quad=(quad + 0.5) / factor - 0.5, confidence=round(confidence, 4))
