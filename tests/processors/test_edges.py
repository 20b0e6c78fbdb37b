"""Sharpening a coarse card outline against the working image (processors.photo.edges)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from processors.photo import PhotoPolicy
from processors.photo.detect import find_card
from processors.photo.edges import refine_outline, search_radius
from processors.photo.geometry import Quad

ASPECT = 85.60 / 53.98


def card_scene(
    width: int, height: int, angle_deg: float, *, stripe: bool = False, blur: float = 0.0
) -> tuple[np.ndarray, Quad]:
    """A light card on a darker textured surface, and its exact corners (pixel centres at integer coordinates).

    Drawn at 4x and reduced by 4x4 box means, so each edge pixel holds the share of it the card covers."""
    rng = np.random.default_rng(5)
    surface = np.clip(rng.normal((70, 90, 80), 12, (height, width, 3)), 0, 255).astype(np.uint8)
    scene: np.ndarray = cv2.resize(surface, (4 * width, 4 * height), interpolation=cv2.INTER_NEAREST)
    card_w = 0.5 * width
    half = np.array([[-card_w / 2, -card_w / ASPECT / 2], [card_w / 2, -card_w / ASPECT / 2]])
    half = np.vstack([half, -half])  # tl, tr, br, bl around the centre
    a = np.radians(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    corners = half @ rot.T + np.array([width / 2, height / 2])

    def fixed(points: np.ndarray) -> np.ndarray:  # 4x pixel j has its centre at (j - 1.5) / 4, 4 fraction bits
        return np.round((points * 4 + 1.5) * 16).astype(np.int32)

    cv2.fillConvexPoly(scene, fixed(corners), (225, 230, 240), cv2.LINE_8, shift=4)
    if stripe:  # dark print 2 % of the card's height (10 px) inside its top edge, within the search radius (12 px)
        inset = corners[[0, 1]] + 0.02 * (corners[[3, 2]] - corners[[0, 1]])
        start, end = (tuple(int(v) for v in p) for p in fixed(inset))
        cv2.line(scene, start, end, (20, 20, 30), 12, cv2.LINE_8, 4)
    scene = cv2.resize(scene, (width, height), interpolation=cv2.INTER_AREA)
    if blur:
        scene = cv2.GaussianBlur(scene, (0, 0), blur)
    return scene, corners


@pytest.mark.parametrize(
    ("width", "height", "angle"),
    [(1600, 1200, 0.0), (2001, 1501, 7.0), (1633, 1225, -23.0), (1200, 1600, 90.0), (2000, 1500, 178.0)],
)
def test_outline_is_sharpened_to_a_fraction_of_a_pixel(width: int, height: int, angle: float) -> None:
    scene, truth = card_scene(width, height, angle)
    detection = find_card(scene, PhotoPolicy(detect_side=320))
    assert detection is not None
    coarse_error = _corner_error(detection.quad, truth)
    refined = refine_outline(scene, detection.quad, search_radius(detection.pixel))
    assert _corner_error(refined, truth) < 0.6 < coarse_error


def test_print_near_the_edge_and_blur_do_not_pull_the_outline() -> None:
    scene, truth = card_scene(1600, 1200, 4.0, stripe=True, blur=2.0)
    detection = find_card(scene, PhotoPolicy(detect_side=320))
    assert detection is not None
    refined = refine_outline(scene, detection.quad, search_radius(detection.pixel))
    assert _corner_error(refined, truth) < 1.0


def test_without_evidence_the_coarse_outline_is_returned_as_it_is() -> None:
    flat = np.full((900, 1200, 3), 128, np.uint8)
    quad = np.array([[200.0, 200.0], [900.0, 200.0], [900.0, 640.0], [200.0, 640.0]])
    assert refine_outline(flat, quad, 8) is quad
    scene, truth = card_scene(1200, 900, 0.0)
    far = truth + np.array([40.0, 0.0])  # beyond the search radius: nothing found there to snap to
    assert refine_outline(scene, far, 6) is far
    tiny = truth[0] + (truth - truth[0]) * 0.01  # sides shorter than the search window
    assert refine_outline(scene, tiny, 6) is tiny
    assert refine_outline(scene, np.full((4, 2), np.nan), 6).shape == (4, 2)


def _corner_error(quad: Quad, truth: Quad) -> float:
    """Largest distance from a corner of ``quad`` to the nearest corner of ``truth`` (any order)."""
    return float(max(np.hypot(*(truth - q).T).min() for q in quad))
