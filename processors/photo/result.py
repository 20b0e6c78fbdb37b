"""The value :func:`processors.photo.normalise_photo` returns for an accepted photo."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PhotoResult:
    """An accepted, normalised KTP photo. Picklable; holds no metadata of the upload.

    ``card_jpeg`` is the card warped to ``PhotoPolicy.card_output`` (None only when no card was found and the
    policy accepts that). ``frame_jpeg`` is the whole photo, upright (EXIF orientation applied), sRGB,
    longest side at most ``PhotoPolicy.frame_max_side``. Both JPEGs are re-encoded from pixels: no EXIF, GPS,
    XMP, ICC profile or comment, nothing after EOI. ``width``/``height`` are those of ``frame_jpeg``.
    ``sha256`` is the hex digest of ``card_jpeg`` if present, else of ``frame_jpeg``. ``quality`` holds the
    measured values (keys: ``blur``, ``glare_fraction``, ``mean_luma``, ``ink_fraction``, ``card_width_px``,
    ``confidence``, ``decode_scale``, ``orientation_score``; for a card touching the frame border also
    ``edge_aspect_deviation`` and ``edge_ink``; ``lit_ink`` when much of the card is saturated).
    """

    card_jpeg: bytes | None
    frame_jpeg: bytes
    card_found: bool
    width: int
    height: int
    source_format: str
    sha256: str
    quality: dict[str, float] = field(default_factory=dict)
