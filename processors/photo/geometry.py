"""Quadrilateral helpers for card outlines: ordering, edge lengths, rectified aspect, angles.

Points are ``(x, y)`` in image coordinates (y grows downwards), as float64 arrays of shape ``(4, 2)``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

Quad = NDArray[np.float64]


def clockwise(quad: Quad) -> Quad:
    """Return the four points sorted clockwise on screen (by angle around their centroid)."""
    centre = quad.mean(axis=0)
    angles = np.arctan2(quad[:, 1] - centre[1], quad[:, 0] - centre[0])
    return quad[np.argsort(angles, kind="stable")]


def edge_lengths(quad: Quad) -> NDArray[np.float64]:
    """Lengths of edges ``p0p1, p1p2, p2p3, p3p0``."""
    return np.asarray(np.linalg.norm(np.roll(quad, -1, axis=0) - quad, axis=1), dtype=np.float64)


def long_short(quad: Quad) -> tuple[float, float]:
    """Mean length of the longer pair of opposite edges and of the shorter pair."""
    e = edge_lengths(quad)
    a, b = (e[0] + e[2]) / 2, (e[1] + e[3]) / 2
    return (float(max(a, b)), float(min(a, b)))


def interior_angles(quad: Quad) -> NDArray[np.float64]:
    """Interior angles in degrees at each point of a clockwise quad."""
    prev = np.roll(quad, 1, axis=0) - quad
    nxt = np.roll(quad, -1, axis=0) - quad
    cos = (prev * nxt).sum(axis=1) / (np.linalg.norm(prev, axis=1) * np.linalg.norm(nxt, axis=1) + 1e-9)
    return np.asarray(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))), dtype=np.float64)


def polygon_area(quad: Quad) -> float:
    """Absolute area of the polygon (shoelace)."""
    x, y = quad[:, 0], quad[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def upright_candidates(quad: Quad) -> tuple[Quad, Quad]:
    """The two landscape readings of a card outline, as ``(tl, tr, br, bl)`` quads.

    A card's long edges are its top and bottom; either may be the top. The first candidate is the natural
    reading: if the long edges run more horizontally than vertically, the upper one is the top; if they run
    vertically (card turned by ~90°), the left one is the top (card turned clockwise). The second candidate
    is the first turned by 180°.
    """
    q = clockwise(quad)
    e = edge_lengths(q)
    first = 0 if e[0] + e[2] >= e[1] + e[3] else 1
    starts = (first, first + 2)
    d = q[(first + 1) % 4] - q[first]
    horizontal = abs(d[0]) >= abs(d[1])

    def key(start: int) -> float:
        mid = (q[start % 4] + q[(start + 1) % 4]) / 2
        return float(mid[1] if horizontal else mid[0])

    ordered = sorted(starts, key=key)
    a, b = (np.roll(q, -(s % 4), axis=0) for s in ordered)
    return a, b


def aspect_score(quad: Quad, target: float, tolerance: float = 1.4) -> float:
    """1.0 when the rectified long/short ratio equals ``target``, falling to 0 at a factor ``tolerance`` off."""
    long_edge, short_edge = long_short(quad)
    if short_edge <= 0:
        return 0.0
    off = abs(math.log((long_edge / short_edge) / target))
    return max(0.0, 1.0 - off / math.log(tolerance))


def corners_of_lines(lines: NDArray[np.float64]) -> Quad | None:
    """Corners where consecutive side lines meet, or ``None`` if two of them are parallel.

    ``lines`` is ``(4, 4)``: per side, a direction ``(vx, vy)`` then a point ``(x0, y0)`` (``cv2.fitLine``'s
    layout), side ``i`` running from corner ``i`` to corner ``i + 1``; corner ``i`` is where side ``i - 1``
    meets side ``i``."""
    d1, p1 = np.roll(lines[:, :2], 1, axis=0), np.roll(lines[:, 2:], 1, axis=0)
    d2, p2 = lines[:, :2], lines[:, 2:]
    det = d2[:, 0] * d1[:, 1] - d1[:, 0] * d2[:, 1]
    if np.abs(det).min() < 1e-9:
        return None
    rhs = p2 - p1
    t = (d2[:, 0] * rhs[:, 1] - rhs[:, 0] * d2[:, 1]) / det
    return np.asarray(p1 + t[:, None] * d1, dtype=np.float64)
