"""Every limit and threshold of the KTP photo gate, in one immutable, picklable value.

The defaults are calibrated on the synthetic corpus in ``tests/corpus/ktp.py`` (see the field notes); they
are starting points for real-world calibration, not truths. A policy is validated at construction:
an impossible policy is a programming error and raises ``ValueError`` (never ``Rejected``).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass

ID1_ASPECT = 85.60 / 53.98
"""Width over height of an ISO/IEC 7810 ID-1 card (the KTP format), about 1.586."""


@dataclass(frozen=True, slots=True)
class PhotoPolicy:
    """Limits and thresholds for :func:`processors.photo.normalise_photo`.

    Lengths are in pixels, fractions in ``[0, 1]``, luma in 8-bit units (``0..255``, BT.601).
    """

    max_bytes: int = 8 * 1024 * 1024
    """Largest accepted photo file, in bytes (8 MiB). Larger → ``photo_too_large``."""
    max_pixels: int = 50_000_000
    """Largest ``width * height`` read from the header, checked before any pixel is decoded
    (→ ``too_many_pixels``). Pillow's own bomb guard (``Image.MAX_IMAGE_PIXELS``, left untouched) is also
    mapped to ``too_many_pixels``, so values above ~89 Mpx are capped by it."""
    min_long_side: int = 640
    """Smallest accepted longer side of the photo, orientation-agnostic (→ ``image_too_small``)."""
    min_short_side: int = 400
    """Smallest accepted shorter side of the photo, orientation-agnostic (→ ``image_too_small``)."""
    allowed_formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "HEIF")
    """Formats accepted, as identified by magic bytes; ``HEIF`` is decoded with pillow-heif."""
    card_output: tuple[int, int] = (1011, 638)
    """Size (width, height) of the warped card: ID-1 (85.60 x 53.98 mm) at 300 dpi."""
    frame_max_side: int = 2048
    """Longest side of the normalised full frame at most. A larger decode is halved (2x2 box means) until it
    fits, so the frame is between half and all of this long; it is never upscaled, and may be smaller when the
    photo was decoded at reduced scale (see ``draft_card_fraction``)."""
    jpeg_quality: int = 90
    """JPEG quality (1..95) of both outputs."""
    reject_card_not_found: bool = True
    """True: no card → ``card_not_found``. False: accept the unwarped frame with ``card_found=False``."""
    card_min_confidence: float = 0.55
    """Detection confidence (0..1) at or above which a card counts as found. Corpus: cards score
    0.90..1.0 (median 0.99), a scan filling the frame 0.71..0.76; scenes without a card at most 0.53."""
    card_min_width_px: int = 500
    """Smallest card width (its longer edge) in source pixels (→ ``card_too_small``); below it the NIK digits
    are a few pixels tall. Corpus: tiny-card scenes measure 320 px, normal scenes 544..1120 px."""
    card_edge_aspect_tolerance: float = 0.06
    """A card that touches or fills the frame border (a scan, a tight crop) counts as whole only if its visible
    outline has ID-1 proportions to within this: ``|ln(aspect / 1.586)|`` at most this (0.06: about 6 %);
    otherwise part of it is off the frame (→ ``card_cut_off``, measured: that deviation). Corpus
    (``tests/corpus/uploads.py``): whole cards touching the border 0.000..0.015; cards cut by the frame
    0.115..0.25."""
    card_edge_max_ink: float = 0.1
    """Largest share of printed (dark) pixels in the card's blank margin along a side that lies on the frame
    border (the strip 0.5..2 % of the card's width inside that side); more means the print runs off the frame
    (→ ``card_cut_off``, measured: that share). Corpus: whole cards 0.0; a crop 7 % into every side 0.81."""
    card_min_ink: float = 0.04
    """Smallest share of printed (dark) pixels on the warped card; below it the photo shows the unprinted back
    of the card (→ ``card_back_side``). Corpus: fronts 0.37..0.43 (photocopies included), the back 0.0."""
    multiple_card_area_ratio: float = 0.5
    """A second card found beside the chosen one (outlines disjoint, confidence above ``card_min_confidence``)
    and at least this share of its area makes the photo ambiguous (→ ``multiple_cards``)."""
    frame_glare_min_fraction: float = 0.02
    """When no card is found: the largest blob of saturated pixels (see ``glare_luma``) covering at least this
    share of the frame names glare as the cause (→ ``glare``, measured: that share); the same blob names glare
    before ``card_cut_off`` and ``card_too_small``, whose outline a flash breaks. Blobs along two sides of the
    frame (a scanner's white page) do not count. Corpus: good photos at most 0.003 (a highlight); flashes
    0.027..0.16, 0.16..0.6 where the flash breaks the card's outline."""
    frame_blur_min: float = 15.0
    """When no card is found: a frame whose variance of the Laplacian (grey, at ``card_output`` width) is below
    this names blur as the cause (→ ``blurry``), provided something card-like was seen (half
    ``card_min_confidence``): a plain table is smooth too (the corpus's empty table: 8.7). Corpus: a blurred
    card is found and measured on the card, so this is a backstop."""
    draft_card_fraction: float = 0.6
    """Speed knob: the first decode is reduced (JPEG DCT scaling, or a box reduce) as long as a card filling
    this fraction of the photo's longer side would still reach ``card_output`` width. If the card found is
    smaller than that, the photo is decoded again at a finer scale: the card is never warped from fewer pixels
    than the output needs when the source has them."""
    detect_side: int = 400
    """Longest side of the downscaled image in which the card outline is searched (a speed knob: the outline
    found there is then sharpened against the working image, so the crop's accuracy does not depend on it).
    Corpus: every verdict holds from 320 up, and card widths come out within 0.1 px of the drawn ones."""
    blur_min: float = 60.0
    """Smallest variance of the Laplacian of the warped card's grey image at ``card_output`` size, or at the
    card's own width in the photo when that is smaller (an upscaled card measures soft) (→ ``blurry``). Corpus:
    sharp cards 126..620 (the low end: a phone screen, a hand-held card); Gaussian blur sigma >= 2 (scene pixels)
    < 30; a photocopy of a photocopy 55."""
    glare_luma: int = 250
    """A pixel is saturated (glare) when all its RGB channels are at least this value."""
    glare_max_fraction: float = 0.03
    """Largest share of saturated pixels on the card (→ ``glare``). Corpus: clean 0.0, a small highlight
    0.015, a glare blob 0.12."""
    overexposed_fraction: float = 0.4
    """A card with at least this share of saturated pixels is ``too_bright`` (washed out) rather than ``glare``.
    Corpus: exposure x1.6 saturates ~0.57 of the card."""
    overexposed_min_ink: float = 0.1
    """Saturation over ``overexposed_fraction`` is ``too_bright`` only while the print inside the saturated area
    is still dark (share of print there at least this); a flash reflection washes print and stock out alike and
    is ``glare``. Corpus: exposure x1.6 keeps 0.21; a flash over half the card 0.06."""
    dark_max_mean: float = 60.0
    """A card whose mean luma is at most this is ``too_dark``. Corpus: normal ~145, half exposure ~74
    (accepted), quarter exposure ~37."""
    bright_min_mean: float = 225.0
    """A card whose mean luma is at least this is ``too_bright``. Not reached on the corpus, where
    overexposure saturates first (see ``overexposed_fraction``); a backstop for washed-out photos."""

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_pixels <= 0:
            raise ValueError("max_bytes and max_pixels must be positive")
        if not 0 < self.min_short_side <= self.min_long_side:
            raise ValueError("need 0 < min_short_side <= min_long_side")
        if not self.allowed_formats:
            raise ValueError("allowed_formats must not be empty")
        w, h = self.card_output
        if not (w > h > 0):
            raise ValueError("card_output must be landscape (width > height > 0)")
        if self.frame_max_side < 64 or self.detect_side < 160:
            raise ValueError("frame_max_side >= 64 and detect_side >= 160 required")
        if not 1 <= self.jpeg_quality <= 95:
            raise ValueError("jpeg_quality must be in 1..95")
        if not 0 < self.draft_card_fraction <= 1 or not 0 <= self.card_min_confidence <= 1:
            raise ValueError("draft_card_fraction in (0, 1] and card_min_confidence in [0, 1] required")
        if not 0 <= self.glare_max_fraction <= self.overexposed_fraction <= 1 or not 0 < self.glare_luma <= 255:
            raise ValueError("0 <= glare_max_fraction <= overexposed_fraction <= 1 and glare_luma in 1..255 required")
        fractions = (self.card_edge_max_ink, self.card_min_ink, self.multiple_card_area_ratio, self.overexposed_min_ink)
        if not all(0 <= f <= 1 for f in (*fractions, self.frame_glare_min_fraction)):
            raise ValueError("ink, area and glare shares must be in [0, 1]")
        if self.card_edge_aspect_tolerance < 0 or self.frame_blur_min < 0:
            raise ValueError("card_edge_aspect_tolerance and frame_blur_min must not be negative")
        if not self.dark_max_mean < self.bright_min_mean:
            raise ValueError("dark_max_mean must be below bright_min_mean")


def field_docs() -> dict[str, str]:
    """The documentation of each :class:`PhotoPolicy` field (the string under it in the class body), with its
    whitespace collapsed: the one text that the settings table also shows. Reads this module's source."""
    body = ast.parse(textwrap.dedent(inspect.getsource(PhotoPolicy))).body[0]
    assert isinstance(body, ast.ClassDef)
    docs: dict[str, str] = {}
    for node, after in zip(body.body, body.body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs
