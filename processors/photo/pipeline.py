"""The KTP photo gate: bytes in, a normalised :class:`PhotoResult` out, or a typed ``Rejected``.

Order of checks (each rejection carries the measured value and the threshold):

1. ``photo_empty``, ``photo_too_large`` (byte length);
2. ``not_an_image`` / ``unsupported_format`` (magic bytes against ``allowed_formats``);
3. header only: ``too_many_pixels``, ``image_too_small``, ``animated_image``; ``image_corrupt`` for anything a
   decoder chokes on, now or at full decode;
4. decode at a reduced scale when the photo is much larger than the card output needs (see
   :mod:`processors.photo.scale`), EXIF orientation applied, 8-bit sRGB (:mod:`processors.photo.decode`);
5. card detection on a small copy (:mod:`processors.photo.detect`), which also reads scans and crops where the
   card touches or fills the frame. When no card is found the cause the applicant can fix is named, if the
   whole frame shows it, in this order: ``too_dark``; ``glare`` (a saturated blob of at least
   ``frame_glare_min_fraction`` of the frame); ``too_bright``; ``card_cut_off`` (a card-like outline on the frame
   border); ``blurry`` (the frame below ``frame_blur_min`` and something card-like seen, at half the confidence
   that finds a card: a plain table is smooth too); else ``card_not_found``. A card found: ``multiple_cards`` if
   another one lies beside it; ``card_cut_off`` if it touches the border and is not whole
   (:mod:`processors.photo.framing`); ``card_too_small``; either of these two is ``glare`` instead when a
   saturated blob as above is in the frame (a flash breaks the outline it measures). The outline is sharpened
   on the working image (:mod:`processors.photo.edges`), after a finer re-decode if the card needs more pixels;
6. on the warped card, see :func:`processors.photo.quality.check`: ``too_dark``, ``too_bright``, ``glare``,
   ``card_back_side``, ``blurry``. When no card was found and the policy accepts that, the same measures are
   taken on the whole frame (at the card's scale) and enforced except print and blur, which there would
   measure the background rather than the card.

Deterministic: the same bytes and policy give the same result, byte for byte.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import cv2
import numpy as np
from numpy.typing import NDArray

from processors.photo import framing, quality
from processors.photo.decode import Header, decode, read_header
from processors.photo.detect import Detection, find_card
from processors.photo.edges import refine_outline, search_radius
from processors.photo.encode import encode_jpeg
from processors.photo.geometry import long_short
from processors.photo.policy import PhotoPolicy
from processors.photo.precheck import check_container
from processors.photo.result import PhotoResult
from processors.photo.scale import finer_scale, first_scale, halve
from processors.photo.warp import card_region, warp_card
from processors.reasons import Rejected


def _frame(working: NDArray[np.uint8], policy: PhotoPolicy) -> NDArray[np.uint8]:
    """The normalised full frame: ``working`` itself when it fits ``frame_max_side``, else ``working`` halved
    (2x2 box means, OpenCV's fast path) until it fits: between half and all of ``frame_max_side`` long."""
    frame = working
    while max(frame.shape[:2]) > policy.frame_max_side:
        frame = halve(frame)
    return frame


def _analysis_frame(frame: NDArray[np.uint8], policy: PhotoPolicy) -> NDArray[np.uint8]:
    h, w = frame.shape[:2]
    f = policy.card_output[0] / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    interpolation = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(frame, size, interpolation=interpolation), dtype=np.uint8)


def _locate(data: bytes, header: Header, policy: PhotoPolicy) -> tuple[NDArray[np.uint8], int, Detection | None]:
    """Decode at the first scale, detect, re-decode finer if the card needs more pixels, and sharpen the outline
    against the pixels the card will be warped from."""
    scale = first_scale(header.long_side, policy)
    working = decode(data, header, scale)
    detection = find_card(working, policy)
    if not _found(detection, policy) or detection is None or detection.others:
        return working, scale, detection
    card_long, card_short = long_short(detection.quad)
    finer = finer_scale(scale, card_long, card_short, policy)
    if finer != scale:
        sharper = decode(data, header, finer)
        ratio = np.array([sharper.shape[1] / working.shape[1], sharper.shape[0] / working.shape[0]])
        quad = (detection.quad + 0.5) * ratio - 0.5
        detection = replace(detection, quad=quad, pixel=detection.pixel * float(ratio.max()))
        working, scale = sharper, finer
    if detection.placement == "frame":
        h, w = working.shape[:2]
        return working, scale, replace(detection, quad=np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64) - 0.5)
    outline = refine_outline(working, detection.quad, search_radius(detection.pixel))
    return working, scale, replace(detection, quad=outline)


def _found(detection: Detection | None, policy: PhotoPolicy) -> bool:
    """A card (whole or touching the border) was found, as opposed to nothing or only a cut-off outline."""
    return detection is not None and detection.confidence >= policy.card_min_confidence and detection.placement != "cut"


def _blame_glare(analysis: NDArray[np.uint8], policy: PhotoPolicy) -> None:
    """Raise ``glare`` when a saturated blob covers at least ``frame_glare_min_fraction`` of the frame (at the
    analysis scale): a flash that breaks the card's outline is the cause to fix before its framing."""
    blob = round(quality.largest_glare(analysis, policy), 5)
    if blob >= policy.frame_glare_min_fraction:
        raise Rejected("glare", measured=blob, threshold=policy.frame_glare_min_fraction)


def _explain_missing(
    analysis: NDArray[np.uint8], measures: dict[str, float], detection: Detection | None, policy: PhotoPolicy
) -> None:
    """No card found: raise the cause the applicant can fix when the frame (``analysis``, measured as
    ``measures``) shows one, in the order of the module docstring, else ``card_not_found``."""
    if measures["mean_luma"] <= policy.dark_max_mean:
        raise Rejected("too_dark", measured=measures["mean_luma"], threshold=policy.dark_max_mean)
    _blame_glare(analysis, policy)
    quality.check_exposure(measures["mean_luma"], policy)
    if detection is not None and detection.placement == "cut" and detection.confidence >= policy.card_min_confidence:
        raise Rejected("card_cut_off", measured=detection.confidence, threshold=policy.card_min_confidence)
    seen = detection is not None and detection.confidence >= policy.card_min_confidence / 2
    if seen and measures["blur"] < policy.frame_blur_min:
        raise Rejected("blurry", measured=measures["blur"], threshold=policy.frame_blur_min)
    confidence = 0.0 if detection is None else detection.confidence
    raise Rejected("card_not_found", measured=confidence, threshold=policy.card_min_confidence)


def _result(
    card: NDArray[np.uint8] | None,
    frame: NDArray[np.uint8],
    fmt: str,
    measures: dict[str, float],
    policy: PhotoPolicy,
) -> PhotoResult:
    card_jpeg = None if card is None else encode_jpeg(card, policy.jpeg_quality)
    frame_jpeg = encode_jpeg(frame, policy.jpeg_quality)
    digest = hashlib.sha256(card_jpeg if card_jpeg is not None else frame_jpeg).hexdigest()
    return PhotoResult(
        card_jpeg=card_jpeg,
        frame_jpeg=frame_jpeg,
        card_found=card is not None,
        width=frame.shape[1],
        height=frame.shape[0],
        source_format=fmt,
        sha256=digest,
        quality=measures,
    )


def normalise_photo(data: bytes, policy: PhotoPolicy) -> PhotoResult:
    """Validate and normalise a KTP photo upload. Raises only :class:`processors.reasons.Rejected`.

    See the module docstring for the order of checks, and :class:`PhotoResult` for the output contract.
    """
    data = bytes(data)
    fmt = check_container(data, policy)
    header = read_header(data, fmt, policy)
    working, scale, detection = _locate(data, header, policy)
    confidence = 0.0 if detection is None else detection.confidence
    measures: dict[str, float] = {"confidence": confidence, "decode_scale": float(scale)}
    frame = _frame(working, policy)

    if detection is None or not _found(detection, policy):
        analysis = _analysis_frame(frame, policy)
        measures.update(quality.measure(analysis, policy))
        if policy.reject_card_not_found:
            _explain_missing(analysis, measures, detection, policy)
        measures.update(card_width_px=0.0, orientation_score=0.0)
        quality.check(measures, policy, on_card=False)
        return _result(None, frame, fmt, measures, policy)

    if detection.others:
        raise Rejected("multiple_cards", measured=detection.others + 1, threshold=1)
    card_long, _ = long_short(detection.quad)
    card_width_px = round(card_long * header.long_side / max(working.shape[:2]), 1)
    measures["card_width_px"] = card_width_px
    try:
        if detection.placement in ("border", "frame"):
            measures.update(framing.check_whole(working, detection.quad, policy))
        if card_width_px < policy.card_min_width_px:
            raise Rejected("card_too_small", measured=card_width_px, threshold=policy.card_min_width_px)
    except Rejected:
        _blame_glare(_analysis_frame(frame, policy), policy)  # a flash breaks outlines: blame it first
        raise
    region, quad = card_region(working, detection.quad)
    card, orientation_score = warp_card(region, quad, policy.card_output)
    measures["orientation_score"] = round(orientation_score, 4)
    measures.update(quality.measure(card, policy, native_width=card_long))
    quality.check(measures, policy)
    return _result(card, frame, fmt, measures, policy)


def one_thread_per_process() -> None:
    """Make this process's image work single-threaded (OpenCV's own thread pool off).

    For pool workers: the pool already has one process per core, so OpenCV threads would only oversubscribe
    the cores and make the work of one photo contend with the others'."""
    cv2.setNumThreads(1)
