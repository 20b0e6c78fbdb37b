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

Cards at the frame border (scans, tight crops). An outline with a corner on or beyond the frame border is kept
(``placement="border"``): the frame border counts as edge support there, so a card whose edge is the border scores
as if its edge were visible; whether it is whole is decided later on its proportions and its blank margin
(:mod:`processors.photo.framing`). An outline that lies on the border but is not card-shaped is remembered as
evidence of a card cut by the frame (``placement="cut"``), returned only when nothing card-like is found. When
no large card is found and the whole frame looks like a card (light, with a portrait on one side: the KTP
layout), the frame itself is the card (``placement="frame"``): a scan or crop of the card alone. Other whole
cards disjoint from the chosen one and of comparable size are counted in ``others``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
from processors.photo.warp import layout_score

_MIN_AREA_FRACTION = 0.004
_SAMPLES_PER_EDGE = 64
_CONFIDENCE_SLACK = 0.1
_CONTAINER_AREA_RATIO = 2.0
_SURFACE_DISTANCE = 24.0
"""Fixed threshold on the L1 Lab distance from the surface colour: finds a light card on white paper."""
_SMALL_CARD = 0.03
"""An outline covering less of the frame than this counts as a card (whole or cut) only if the full-resolution
pixels inside it show a KTP's layout (lines of print, a portrait on one side): at a few dozen detection pixels,
blotches of a wooden table are card-shaped too."""
_STOCK_RING = (1.15, 1.5)
"""Where the stock colour around a small candidate is sampled: between these scalings of its outline."""
_INNER_RING, _OUTER_RING = (0.85, 0.95), (1.03, 1.15)
"""Where the colours just inside and just outside an outline are compared (scalings as ``_STOCK_RING``)."""
_LARGE_CARD = 0.3
"""A found card covering at least this share of the frame is taken over the frame-is-the-card reading."""
_FRAME_LAYOUT_MIN = 0.1
"""Smallest layout score (see :func:`processors.photo.warp.layout_score`) of a frame read as a card."""
_FRAME_MIN_LUMA = 110.0
"""Smallest median luma of a frame read as a card: card stock is light; a table or a wall behind is not this."""
_BORDER_SIDE = 0.5
"""A side lies on the frame border when at least this share of its samples do."""


@dataclass(frozen=True, slots=True)
class Detection:
    """A candidate card outline (corners in input-image pixels) and its confidence in ``[0, 1]``."""

    quad: Quad
    confidence: float
    pixel: float = 1.0
    """Size of a pixel of the detection image, in input-image pixels: the outline is good to about that."""
    placement: str = "inside"
    """``inside`` (wholly in the frame), ``border`` (card-shaped, touching the frame border), ``frame`` (the
    frame is the card) or ``cut`` (the visible part of a card cut by the frame; ``confidence`` is that of the
    cut outline; for ``frame`` it is 0.5 plus the layout score, at most 1)."""
    others: int = 0
    """Further whole cards in the photo, disjoint from this one and of comparable size."""


@dataclass(frozen=True, slots=True)
class _Candidate:
    confidence: float
    area: float
    quad: Quad
    touching: bool
    cut: float
    """Confidence that this is the visible part of a card cut by the frame (0 when not touching)."""


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


def _samples(quad: Quad, shape: tuple[int, ...]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """``_SAMPLES_PER_EDGE`` points along each side (side-major), and which of them lie on or beyond the frame
    border (within ``1 %`` of the longer side, or 2 pixels)."""
    h, w = shape[:2]
    t = np.linspace(0.0, 1.0, _SAMPLES_PER_EDGE, endpoint=False)[:, None]
    pts = np.concatenate([quad[i] + t * (quad[(i + 1) % 4] - quad[i]) for i in range(4)])
    margin = max(2.0, 0.01 * max(h, w))
    near = (pts[:, 0] < margin) | (pts[:, 1] < margin) | (pts[:, 0] > w - 1 - margin) | (pts[:, 1] > h - 1 - margin)
    return pts, near


def _edge_hits(pts: NDArray[np.float64], edges: NDArray[np.uint8]) -> NDArray[np.bool_]:
    h, w = edges.shape
    xs = np.clip(np.rint(pts[:, 0]).astype(np.int64), 0, w - 1)
    ys = np.clip(np.rint(pts[:, 1]).astype(np.int64), 0, h - 1)
    inside = (pts[:, 0] > 1) & (pts[:, 0] < w - 2) & (pts[:, 1] > 1) & (pts[:, 1] < h - 2)
    return np.asarray((edges[ys, xs] > 0) & inside, dtype=np.bool_)


def _clamp01(value: float) -> float:
    return min(1.0, max(0.0, value))


def _score(contour: NDArray[Any], edges: NDArray[np.uint8], image_area: float) -> _Candidate | None:
    area = float(cv2.contourArea(contour))
    if area < _MIN_AREA_FRACTION * image_area:
        return None
    quad = _quad_from_contour(contour)
    if quad is None:
        return None
    quad = _refine(quad, contour.reshape(-1, 2).astype(np.float64))
    angles = interior_angles(quad)
    if angles.min() < 45 or angles.max() > 135:
        return None
    pts, near = _samples(quad, edges.shape)
    on_border = near.reshape(4, _SAMPLES_PER_EDGE).mean(axis=1) >= _BORDER_SIDE
    if on_border.all():
        return None  # the frame itself: see _frame_reading
    hits = _edge_hits(pts, edges)
    quad_area = polygon_area(quad)
    fill = min(area, quad_area) / max(area, quad_area, 1e-9)
    fill_score = _clamp01((fill - 0.85) / 0.15)
    aspect = aspect_score(quad, ID1_ASPECT)
    if not near[::_SAMPLES_PER_EDGE].any():  # no corner on or beyond the border
        support_score = _clamp01((float(hits.mean()) - 0.5) / 0.5)
        return _Candidate((aspect * fill_score * support_score) ** (1 / 3), area, quad, False, 0.0)
    # Touching the border: there the border is the edge. The cut reading needs the edge where it is visible.
    support_score = _clamp01((float((hits | near).mean()) - 0.5) / 0.5)
    visible = ~near
    inner = _clamp01((float(hits[visible].mean()) - 0.5) / 0.5) if visible.sum() >= _SAMPLES_PER_EDGE else 0.0
    cut = (fill_score * inner) ** 0.5 if on_border.any() else 0.0
    return _Candidate((aspect * fill_score * support_score) ** (1 / 3), area, quad, True, cut)


def _stock_candidates(small: NDArray[np.uint8], edges: NDArray[np.uint8], seed: Quad) -> list[_Candidate]:
    """Candidates from a mask of the colour around ``seed`` (a card-shaped part of a card, such as its photo
    box): the card's stock. It separates the card from what crosses its outline and differs from both (fingers
    holding it, a flash reflection on its edge), which the other segmentations join to it."""
    h, w = small.shape[:2]
    lab = np.asarray(cv2.cvtColor(small, cv2.COLOR_RGB2LAB), dtype=np.uint8)
    colour = _ring_colour(lab, seed, _STOCK_RING)
    if colour is None:
        return []
    stock: Any = (*colour, 0.0)
    distance = cv2.transform(cv2.absdiff(lab, stock), np.ones((1, 3), dtype=np.float32))
    mask = np.where(np.asarray(distance) <= _SURFACE_DISTANCE, 255, 0).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5))
    mask = np.asarray(cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel), dtype=np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    scored = (_score(contour, edges, float(h * w)) for contour in contours)
    return [c for c in scored if c is not None]


def _ring_colour(lab: NDArray[np.uint8], quad: Quad, scales: tuple[float, float]) -> tuple[float, ...] | None:
    """Median Lab colour of the band between ``quad`` scaled about its centre by ``scales[0]`` and by
    ``scales[1]``, or ``None`` when the band holds fewer than 16 pixels."""
    h, w = lab.shape[:2]
    centre = quad.mean(axis=0)
    outer, inner = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(outer, np.round(centre + (quad - centre) * max(scales)).astype(np.int32), 255)
    cv2.fillConvexPoly(inner, np.round(centre + (quad - centre) * min(scales)).astype(np.int32), 255)
    ring = (outer > 0) & (inner == 0)
    if int(ring.sum()) < 16:
        return None
    return tuple(_median_u8(lab[:, :, c][ring]) for c in range(3))


def _part_of_surface(small: NDArray[np.uint8], quad: Quad) -> bool:
    """Whether the outline ``quad`` lies on a surface of its own colour: just inside it and just outside it the
    median colours are within ``_SURFACE_DISTANCE`` (a block of print on a card), unlike a card on a table."""
    lab = np.asarray(cv2.cvtColor(small, cv2.COLOR_RGB2LAB), dtype=np.uint8)
    inside, outside = _ring_colour(lab, quad, _INNER_RING), _ring_colour(lab, quad, _OUTER_RING)
    if inside is None or outside is None:
        return False
    return sum(abs(a - b) for a, b in zip(inside, outside, strict=True)) <= _SURFACE_DISTANCE


def _frame_reading(small: NDArray[np.uint8]) -> float:
    """How much the whole frame looks like a card filling it: its layout score, 0 when it is too dark to be
    card stock."""
    grey = np.asarray(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    if _median_u8(grey.ravel()) < _FRAME_MIN_LUMA:
        return 0.0
    h, w = grey.shape
    return layout_score(small, np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64) - 0.5)


def _contains(outer: Quad, point: NDArray[np.float64]) -> bool:
    return bool(cv2.pointPolygonTest(outer.astype(np.float32), (float(point[0]), float(point[1])), False) > 0)


def _others(best: _Candidate, whole: list[_Candidate], ratio: float) -> int:
    """Whole cards of at least ``ratio`` of ``best``'s area whose outline and ``best``'s hold neither's centre."""
    centre = best.quad.mean(axis=0)
    found: list[_Candidate] = []
    for cand in whole:
        other = cand.quad.mean(axis=0)
        if cand.area < ratio * best.area or _contains(cand.quad, centre) or _contains(best.quad, other):
            continue
        if not any(_contains(f.quad, other) or _contains(cand.quad, f.quad.mean(axis=0)) for f in found):
            found.append(cand)
    return len(found)


def _pick(candidates: list[_Candidate], policy: PhotoPolicy) -> _Candidate:
    """The most confident candidate, unless a nearly as confident one is much larger and contains it: a card
    contains its own photo box, which is itself card-shaped."""
    best = max(candidates, key=lambda c: c.confidence)
    floor = max(policy.card_min_confidence, best.confidence - _CONFIDENCE_SLACK)
    centre = best.quad.mean(axis=0)
    for cand in sorted(candidates, key=lambda c: -c.area):
        if cand.confidence >= floor and cand.area >= _CONTAINER_AREA_RATIO * best.area and _contains(cand.quad, centre):
            return cand
    return best


def find_card(rgb: NDArray[np.uint8], policy: PhotoPolicy) -> Detection | None:
    """Return the most card-like outline in ``rgb`` (an ``(h, w, 3)`` uint8 RGB array) or ``None``.

    In order: a card covering at least ``_LARGE_CARD`` of the frame; the frame itself when it reads as a card;
    the outline of a card cut by the frame around a smaller card-shaped find that is part of it (no KTP's
    print in it, or the same colour just inside it as just outside); any other card (all
    of these with ``confidence >= card_min_confidence``); the best outline of a card cut by
    the frame; the best sub-threshold candidate of at least ``_SMALL_CARD`` of the frame; ``None`` when nothing
    quadrilateral is there."""
    small, factors = _small(rgb, policy.detect_side)
    masks, edges = _masks(small)
    h, w = small.shape[:2]
    image_area = float(h * w)
    candidates: list[_Candidate] = []
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
                candidates.append(scored)

    def laid_out(cand: _Candidate) -> bool:  # small outlines count only if they show a KTP's print
        return cand.area >= _SMALL_CARD * image_area or layout_score(rgb, (cand.quad + 0.5) / factors - 0.5) >= (
            _FRAME_LAYOUT_MIN
        )

    def kept(found: list[_Candidate]) -> list[_Candidate]:
        return [c for c in found if max(c.confidence, c.cut) < policy.card_min_confidence or laid_out(c)]

    candidates = kept(candidates)

    def found(cand: _Candidate, placement: str, confidence: float | None = None) -> Detection:
        quad = (cand.quad + 0.5) / factors - 0.5
        conf = round(cand.confidence if confidence is None else confidence, 4)
        return Detection(quad=quad, confidence=conf, pixel=float(1 / factors.min()), placement=placement)

    whole = [c for c in candidates if c.confidence >= policy.card_min_confidence]
    best = _pick(whole, policy) if whole else None
    if best is not None and best.area < _LARGE_CARD * image_area:  # maybe part of a card: look around it
        candidates.extend(kept(_stock_candidates(small, edges, best.quad)))
        whole = [c for c in candidates if c.confidence >= policy.card_min_confidence]
        best = _pick(whole, policy)
    if best is None or best.area < _LARGE_CARD * image_area:
        layout = _frame_reading(small)
        if layout >= _FRAME_LAYOUT_MIN:
            corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64) - 0.5
            return found(_Candidate(1.0, image_area, corners, True, 0.0), "frame", min(1.0, 0.5 + layout))
    cut = [c for c in candidates if c.cut >= policy.card_min_confidence]
    if best is not None and best.area < _LARGE_CARD * image_area:  # part of a card cut by the frame?
        centre = best.quad.mean(axis=0)
        around = [c for c in cut if c.area >= _CONTAINER_AREA_RATIO * best.area and _contains(c.quad, centre)]
        # best is part of that card: no KTP's print in it (its photo box), or on the stock (a block of print)
        if around and (not laid_out(replace(best, area=0.0)) or _part_of_surface(small, best.quad)):
            best_cut = max(around, key=lambda c: c.cut)
            return found(best_cut, "cut", best_cut.cut)
    if best is not None:
        detection = found(best, "border" if best.touching else "inside")
        inside = [c for c in whole if not c.touching]
        return replace(detection, others=_others(best, inside, policy.multiple_card_area_ratio))
    if cut:
        best_cut = max(cut, key=lambda c: c.cut)
        return found(best_cut, "cut", best_cut.cut)
    sizeable = [c for c in candidates if c.area >= _SMALL_CARD * image_area]
    if not sizeable:
        return None
    return found(max(sizeable, key=lambda c: c.confidence), "inside")
