"""The KTP photo gate: verdicts and reason codes on the synthetic corpus and on hostile files."""

from __future__ import annotations

import contextlib
import io
import pickle
import subprocess
import sys
import textwrap
from functools import cache

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from processors.photo import PhotoPolicy, PhotoResult, colour
from processors.photo import decode as decode_module
from processors.photo.decode import Header, decode
from processors.photo.detect import _median_u8, find_card
from processors.photo.encode import encode_jpeg
from processors.photo.orientation import apply_orientation
from processors.photo.pipeline import normalise_photo
from processors.photo.sniff import sniff_format
from processors.photo.warp import card_region, warp_card
from processors.reasons import Rejected
from tests.corpus import ktp

POLICY = PhotoPolicy()


@cache
def scene_bytes(fmt: str = "JPEG", **kw: object) -> bytes:
    spec = ktp.SceneSpec(**{k: v for k, v in kw.items() if k not in ("orientation", "private", "mode")})  # type: ignore[arg-type]
    return ktp.encode(
        ktp.scene(spec),
        fmt,
        orientation=kw.get("orientation"),  # type: ignore[arg-type]
        private=bool(kw.get("private", False)),
        mode=kw.get("mode"),  # type: ignore[arg-type]
    )


def rejected(data: bytes, policy: PhotoPolicy = POLICY) -> Rejected:
    with pytest.raises(Rejected) as info:
        normalise_photo(data, policy)
    return info.value


def grey_small(jpeg_or_array: bytes | np.ndarray) -> np.ndarray:
    img = Image.open(io.BytesIO(jpeg_or_array)) if isinstance(jpeg_or_array, bytes) else Image.fromarray(jpeg_or_array)
    return np.asarray(img.convert("L").resize((128, 81), Image.Resampling.BOX), dtype=np.float64)


def assert_clean_jpeg(data: bytes) -> None:
    """No metadata of any kind and nothing after EOI."""
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG"
    assert set(img.info) <= {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi"}, img.info.keys()
    assert len(img.getexif()) == 0
    assert data.endswith(b"\xff\xd9") and data.count(b"\xff\xd9") == 1
    for marker in (b"Exif\x00", b"http://ns.adobe.com/xap", b"ICC_PROFILE", b"\xff\xfe", b"PK\x03\x04"):
        assert marker not in data


def assert_card_matches_truth(result: PhotoResult, seed: int, max_mad: float = 14.0) -> None:
    """Downscaled grey images: close in absolute terms (``max_mad`` levels) and strongly correlated."""
    assert result.card_jpeg is not None
    card = Image.open(io.BytesIO(result.card_jpeg))
    assert card.size == POLICY.card_output
    got, want = grey_small(result.card_jpeg), grey_small(ktp.render_card(seed))
    assert float(np.corrcoef(got.ravel(), want.ravel())[0, 1]) > 0.9
    if max_mad > 0:
        assert float(np.abs(got - want).mean()) < max_mad


# --- accepted photos ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "seed"),
    [
        ({}, 0),
        ({"angle_deg": 15.0}, 1),
        ({"angle_deg": -30.0, "tilt": 0.12, "card_fraction": 0.6}, 2),
        ({"angle_deg": 90.0, "card_fraction": 0.45}, 3),
        ({"angle_deg": 180.0}, 4),
        ({"angle_deg": -88.0, "card_fraction": 0.45}, 5),
        ({"background": "white"}, 6),
        ({"exposure": 0.5}, 7),
        ({"card_fraction": 0.34, "shift": (0.2, 0.2)}, 8),
    ],
    ids=["straight", "rot15", "rot-30-tilt", "rot90", "rot180", "rot-88", "white-paper", "dim", "small-offset"],
)
def test_accepts_card_scenes_and_warps_the_card_upright(kw: dict[str, object], seed: int) -> None:
    result = normalise_photo(scene_bytes(seed=seed, **kw), POLICY)
    assert result.card_found and result.source_format == "JPEG"
    assert result.quality["confidence"] >= POLICY.card_min_confidence
    assert (result.width, result.height) == (1600, 1200)
    assert_card_matches_truth(result, seed, max_mad=0.0 if kw.get("exposure") else 14.0)
    for jpeg in (result.card_jpeg, result.frame_jpeg):
        assert jpeg is not None
        assert_clean_jpeg(jpeg)
    card = np.asarray(Image.open(io.BytesIO(result.card_jpeg or b"")).convert("RGB"), dtype=np.int16)
    box = card[300:400, 760:900]  # photo box: red background on the right
    assert box[:, :, 0].mean() - box[:, :, 1].mean() > 30


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_and_metadata_dropped(orientation: int) -> None:
    result = normalise_photo(scene_bytes(seed=20, orientation=orientation, private=True), POLICY)
    assert (result.width, result.height) == (1600, 1200)
    assert_card_matches_truth(result, 20)
    assert_clean_jpeg(result.frame_jpeg)
    frame = grey_small(result.frame_jpeg)
    truth = grey_small(ktp.scene(ktp.SceneSpec(seed=20)))
    assert float(np.abs(frame - truth).mean()) < 6.0


def test_orientation_table_matches_pillow() -> None:
    base = Image.fromarray(np.arange(6 * 4 * 3, dtype=np.uint8).reshape(4, 6, 3))
    for orientation in range(1, 9):
        tagged = Image.open(io.BytesIO(ktp.encode(np.asarray(base), "PNG", orientation=orientation)))
        expected = ImageOps.exif_transpose(tagged)
        assert expected is not None
        turned = apply_orientation(np.asarray(tagged), orientation)
        assert turned.flags.c_contiguous and np.array_equal(turned, np.asarray(expected))


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        ("PNG", None),
        ("WEBP", None),
        ("HEIF", None),
        ("PNG", "P"),
        ("PNG", "L"),
        ("JPEG", "L"),
        ("PNG", "RGBA"),
        ("JPEG", "CMYK"),
    ],
)
def test_accepts_formats_and_modes(fmt: str, mode: str | None) -> None:
    result = normalise_photo(scene_bytes(fmt, seed=30, mode=mode), POLICY)
    assert result.card_found
    assert result.source_format == fmt
    assert_clean_jpeg(result.frame_jpeg)
    if mode not in ("L", "P"):
        assert_card_matches_truth(result, 30, max_mad=16.0)
    assert Image.open(io.BytesIO(result.frame_jpeg)).mode == "RGB"


@pytest.mark.parametrize("grey", [False, True])
def test_accepts_16_bit_png(grey: bool) -> None:
    result = normalise_photo(ktp.png16(ktp.scene(ktp.SceneSpec(seed=31)), grey=grey), POLICY)
    assert result.card_found and result.source_format == "PNG"
    assert 100 < result.quality["mean_luma"] < 200  # scaled, not clipped to white


def test_polyglot_trailing_zip_is_dropped() -> None:
    data = ktp.with_zip(scene_bytes(seed=32))
    result = normalise_photo(data, POLICY)
    assert_clean_jpeg(result.frame_jpeg)
    assert result.card_jpeg is not None and b"PK" not in result.card_jpeg[-64:]


def test_large_photo_is_decoded_at_reduced_scale_without_starving_the_card() -> None:
    data = scene_bytes(width=4000, height=3000, seed=33)
    result = normalise_photo(data, POLICY)
    assert result.quality["decode_scale"] == 2.0
    assert result.width <= POLICY.frame_max_side
    assert_card_matches_truth(result, 33)
    # a card filling a smaller share needs the full decode: re-decoded finer, not warped from too few pixels
    small_card = normalise_photo(scene_bytes(width=4000, height=3000, card_fraction=0.4, seed=34), POLICY)
    assert small_card.quality["decode_scale"] == 1.0
    assert POLICY.frame_max_side // 2 < small_card.width <= POLICY.frame_max_side  # 4000 halved


@pytest.mark.parametrize("fraction", [0.34, 0.45, 0.6, 0.7])
def test_card_width_is_measured_on_the_sharpened_outline(fraction: float) -> None:
    """The scene's card spans ``fraction`` of its 1600 px width: the outline, sharpened against the working image,
    measures it to within a pixel (detection alone, at ``detect_side``, is good to a few)."""
    result = normalise_photo(scene_bytes(seed=41, card_fraction=fraction), POLICY)
    assert result.quality["card_width_px"] == pytest.approx(fraction * 1600, abs=1.0)


def test_deterministic_and_picklable() -> None:
    data = scene_bytes(seed=35, angle_deg=7.0)
    first, second = normalise_photo(data, POLICY), normalise_photo(data, POLICY)
    assert first == second
    assert pickle.loads(pickle.dumps(first)) == first
    assert pickle.loads(pickle.dumps(POLICY)) == POLICY
    assert first.card_jpeg is not None
    import hashlib

    assert first.sha256 == hashlib.sha256(first.card_jpeg).hexdigest()


def test_card_not_found_can_be_accepted_unwarped() -> None:
    data = scene_bytes(background="none", seed=36)
    assert rejected(data).code == "card_not_found"
    lenient = PhotoPolicy(reject_card_not_found=False)
    result = normalise_photo(data, lenient)
    assert not result.card_found and result.card_jpeg is None
    assert result.sha256 and (result.width, result.height) == (1600, 1200)


# --- quality rejections ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"blur_sigma": 2.5}, "blurry"),
        ({"blur_sigma": 6.0}, "blurry"),
        ({"glare": 0.15}, "glare"),
        ({"exposure": 0.25}, "too_dark"),
        ({"exposure": 0.12}, "too_dark"),
        ({"exposure": 1.6}, "too_bright"),
        ({"card_fraction": 0.2}, "card_too_small"),
        ({"background": "none"}, "card_not_found"),
        ({"shift": (0.35, 0.0)}, "card_cut_off"),
    ],
    ids=["blur2.5", "blur6", "glare", "dark", "very-dark", "overexposed", "tiny-card", "no-card", "cut-off"],
)
def test_quality_rejections(kw: dict[str, object], code: str) -> None:
    exc = rejected(scene_bytes(seed=40, **kw))
    assert exc.code == code
    if code != "card_not_found":
        assert exc.measured is not None and exc.threshold is not None


# --- hostile and malformed files ------------------------------------------------------------------------


@cache
def small_jpeg() -> bytes:
    return scene_bytes(seed=50)


HOSTILE: dict[str, tuple[object, str]] = {
    "empty": (lambda: b"", "photo_empty"),
    "noise": (ktp.noise, "not_an_image"),
    "html": (lambda: ktp.HTML, "not_an_image"),
    "svg": (lambda: ktp.SVG, "not_an_image"),
    "pdf": (lambda: ktp.PDF, "not_an_image"),
    "truncated-jpeg": (lambda: ktp.truncated(small_jpeg()), "image_corrupt"),
    "header-only-jpeg": (lambda: small_jpeg()[:200], "image_corrupt"),
    "jpeg-magic-then-noise": (lambda: b"\xff\xd8\xff\xe0" + ktp.noise(5000), "image_corrupt"),
    "png-magic-then-noise": (lambda: b"\x89PNG\r\n\x1a\n" + ktp.noise(5000), "image_corrupt"),
    "gif-animated": (lambda: ktp.animated("GIF"), "unsupported_format"),
    "png-animated": (lambda: ktp.animated("PNG"), "animated_image"),
    "webp-animated": (lambda: ktp.animated("WEBP"), "animated_image"),
    "bmp": (lambda: ktp.encode(np.zeros((600, 800, 3), np.uint8), "BMP"), "unsupported_format"),
    "tiny-image": (lambda: ktp.encode(np.full((300, 500, 3), 200, np.uint8)), "image_too_small"),
    "too-large-file": (lambda: b"\xff\xd8\xff" + bytes(POLICY.max_bytes), "photo_too_large"),
    "png-bomb": (ktp.png_bomb, "too_many_pixels"),
    "jpeg-bomb": (ktp.jpeg_bomb, "too_many_pixels"),
    "png-60mp": (lambda: ktp.png_bomb(10_000, 6_000), "too_many_pixels"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_inputs_are_rejected_with_their_code(name: str) -> None:
    make, code = HOSTILE[name]
    assert rejected(make()).code == code  # type: ignore[operator]


def test_random_corruptions_only_ever_raise_rejected() -> None:
    rng = np.random.default_rng(7)
    bases = [small_jpeg(), scene_bytes("PNG", seed=51), scene_bytes("WEBP", seed=52)]
    for i in range(45):
        data = bytearray(bases[i % 3])
        for pos in rng.integers(0, len(data), 1 + i % 5):
            data[int(pos)] = int(rng.integers(0, 256))
        with contextlib.suppress(Rejected):
            normalise_photo(bytes(data), POLICY)


def test_sniffer_ignores_names_and_knows_formats() -> None:
    assert sniff_format(small_jpeg()) == "JPEG"
    assert sniff_format(scene_bytes("HEIF", seed=30)) == "HEIF"
    assert sniff_format(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1") == "AVIF"
    assert sniff_format(b"GIF89a....") == "GIF"
    assert sniff_format(b"<html>") is None


def test_heif_disallowed_by_policy_is_unsupported() -> None:
    policy = PhotoPolicy(allowed_formats=("JPEG", "PNG", "WEBP"))
    assert rejected(scene_bytes("HEIF", seed=30), policy).code == "unsupported_format"


def test_decode_returns_upright_rgb_pixels() -> None:
    data = scene_bytes(seed=20, orientation=6, private=True)
    pixels = decode(data, Header("JPEG", 1200, 1600), 1)
    assert pixels.shape == (1200, 1600, 3) and pixels.dtype == np.uint8 and pixels.flags.c_contiguous


@pytest.mark.parametrize("scale", [1, 2, 4, 8])
def test_opencv_and_pillow_decode_jpeg_alike(scale: int) -> None:
    """OpenCV's reduced decode (the fast path) gives Pillow's ``draft`` pixels, orientation applied alike."""
    data = scene_bytes(seed=20, orientation=6, private=True)
    header = Header("JPEG", 1200, 1600)
    im = Image.open(io.BytesIO(data))
    fast = decode_module._opencv_jpeg(data, header, scale)
    slow = decode_module._pillow(im, header, scale, None)
    assert fast is not None and np.array_equal(fast, slow)
    assert decode(data, header, scale).shape == (-(-1200 // scale), -(-1600 // scale), 3)


def test_colour_managed_jpeg_goes_through_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    """A JPEG with a profile other than sRGB is converted by LittleCMS, never by the OpenCV path (this profile is
    sRGB under another name, so the converted pixels stay close to the file's)."""
    srgb = ktp.srgb_icc()
    renamed = srgb.replace("sRGB".encode("utf-16-be"), "wide".encode("utf-16-be"))
    assert colour.source_profile(srgb) is None and colour.source_profile(b"not a profile") is None
    assert renamed != srgb and colour.source_profile(renamed) is not None
    rgb = ktp.scene(ktp.SceneSpec(seed=21))
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=92, icc_profile=renamed)
    plain = decode(scene_bytes(seed=21), Header("JPEG", 1600, 1200), 2)

    def refuse(*_: object) -> None:
        raise AssertionError("the OpenCV path must not decode a colour-managed JPEG")

    monkeypatch.setattr(decode_module, "_opencv_jpeg", refuse)
    managed = decode(buf.getvalue(), Header("JPEG", 1600, 1200), 2)
    assert managed.shape == plain.shape
    assert float(np.abs(managed.astype(np.int16) - plain).mean()) < 2.0


@pytest.mark.parametrize(("width", "height"), [(1633, 1225), (2001, 1501), (700, 521)])
def test_detection_maps_corners_back_exactly(width: int, height: int) -> None:
    """The detection image is reduced by halvings and one bilinear step (odd rows and columns dropped): the
    corners found there map back to the corners drawn, to within a pixel of the detection scale."""
    scene = np.full((height, width, 3), (40, 60, 50), np.uint8)
    card_w = 0.6 * width
    x0, y0 = 0.2 * width, 0.25 * height
    corners = np.array([[x0, y0], [x0 + card_w, y0], [x0 + card_w, y0 + card_w / 1.586], [x0, y0 + card_w / 1.586]])
    cv2.fillConvexPoly(scene, np.round(corners * 16).astype(np.int32), (235, 230, 220), cv2.LINE_AA, shift=4)
    detection = find_card(scene, POLICY)
    assert detection is not None and detection.confidence >= 0.9
    detection_pixel = max(width, height) / POLICY.detect_side
    # fillConvexPoly covers pixel centres up to the outline: the drawn edge lies half a pixel outside them
    assert np.abs(detection.quad - corners).max() <= max(1.0, detection_pixel) + 0.5


def test_fast_paths_match_the_plain_computations() -> None:
    """The pipeline's shortcuts (4-channel warp of a cropped region, histogram median, 16-bit Laplacian) give
    what the straightforward computations give, and encoding is deterministic and clean."""
    data = scene_bytes(seed=37, angle_deg=9.0)
    arr = decode(data, Header("JPEG", 1600, 1200), 1)
    assert encode_jpeg(arr, 90) == encode_jpeg(arr.copy(), 90)
    assert_clean_jpeg(encode_jpeg(arr, 90))
    with pytest.raises(ValueError):
        encode_jpeg(arr[:, :, 0], 90)

    detection = find_card(arr, POLICY)
    assert detection is not None and detection.confidence >= POLICY.card_min_confidence
    region, quad = card_region(arr, detection.quad)
    assert region.shape[2] == 4 and region.shape[0] < arr.shape[0] and region.shape[1] < arr.shape[1]
    card, score = warp_card(region, quad, POLICY.card_output)
    whole, whole_score = warp_card(arr, detection.quad, POLICY.card_output)
    assert card.shape == whole.shape == (638, 1011, 3) and abs(score - whole_score) < 1e-3
    assert np.abs(card.astype(np.int16) - whole).max() <= 1  # same sampling up to float rounding of the matrix

    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 10, 11, 500):
        values = rng.integers(0, 256, n).astype(np.uint8)
        assert _median_u8(values) == float(np.median(values).round())
    grey = cv2.cvtColor(card, cv2.COLOR_RGB2GRAY)
    assert float(cv2.Laplacian(grey, cv2.CV_16S).var()) == float(cv2.Laplacian(grey, cv2.CV_64F).var())


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        PhotoPolicy(card_output=(638, 1011))
    with pytest.raises(ValueError):
        PhotoPolicy(dark_max_mean=230.0)


# --- memory on bombs ------------------------------------------------------------------------------------

_BOMB_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    from processors.photo import PhotoPolicy
    from processors.photo.pipeline import normalise_photo
    from processors.reasons import Rejected
    from tests.corpus import ktp

    def vm_bytes():
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError

    cases = [ktp.png_bomb(), ktp.jpeg_bomb(), ktp.png_bomb(10_000, 6_000), ktp.png_bomb(2**31 - 1, 2**31 - 1)]
    limit = vm_bytes() + 512 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    codes = []
    for data in cases:
        try:
            normalise_photo(data, PhotoPolicy())
            codes.append("accepted")
        except Rejected as exc:
            codes.append(exc.code)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(",".join(codes), grown_kib)
    """
)


def test_bombs_are_rejected_within_bounded_memory() -> None:
    proc = subprocess.run([sys.executable, "-c", _BOMB_SCRIPT], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    codes, grown_kib = proc.stdout.split()
    assert codes.split(",") == ["too_many_pixels"] * 4
    assert int(grown_kib) < 64 * 1024  # peak RSS grew by less than 64 MiB
