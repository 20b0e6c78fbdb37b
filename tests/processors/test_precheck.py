"""The edge's cheap photo checks: the declared size is read from the header alone, and hostile files are named."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from processors.photo import PhotoPolicy
from processors.photo.precheck import MAX_JPEG_SEGMENTS, declared_size, precheck
from processors.reasons import Rejected
from tests.corpus.ktp import HTML, PDF, SVG, SceneSpec, animated, encode, jpeg_bomb, noise, png_bomb, scene

POLICY = PhotoPolicy()


def _image(fmt: str, size: tuple[int, int], **params: object) -> bytes:
    rgb = np.random.default_rng(1).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, **params)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("JPEG", {"exif": b"Exif\x00\x00" + b"\x00" * 3000, "icc_profile": b"\x00" * 5000}),
        ("PNG", {}),
        ("WEBP", {"quality": 80}),  # VP8
        ("WEBP", {"lossless": True}),  # VP8L
        ("WEBP", {"exif": b"Exif\x00\x00" + b"\x00" * 100}),  # VP8X
    ],
)
def test_declared_size_matches_pillow(fmt: str, params: dict[str, object]) -> None:
    data = _image(fmt, (801, 517), **params)
    assert declared_size(data, fmt) == Image.open(io.BytesIO(data)).size == (801, 517)


def test_a_real_scene_passes() -> None:
    assert precheck(encode(scene(SceneSpec(seed=3))), POLICY) == "JPEG"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "photo_empty"),
        (HTML, "not_an_image"),
        (SVG, "not_an_image"),
        (PDF, "not_an_image"),
        (noise(), "not_an_image"),
        (animated("GIF"), "unsupported_format"),
        (_image("BMP", (800, 600)), "unsupported_format"),
        (png_bomb(), "too_many_pixels"),
        (jpeg_bomb(), "too_many_pixels"),
        (_image("JPEG", (320, 200)), "image_too_small"),
        (_image("WEBP", (300, 300)), "image_too_small"),
    ],
)
def test_hostile_or_unfit_files_are_named(data: bytes, code: str) -> None:
    for photo in (data, memoryview(b"--" + data + b"--")[2:-2]):  # the API's photo is a view of the body
        with pytest.raises(Rejected) as info:
            precheck(photo, POLICY)
        assert info.value.code == code


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_view_of_the_bytes_is_read_as_the_bytes(fmt: str) -> None:
    """The API prechecks its photo as a view of the request body (not copied out): the same answers."""
    data = _image(fmt, (801, 517))
    view = memoryview(b"x" * 100 + data + b"y" * 100)[100:-100]
    assert (precheck(view, POLICY), declared_size(view, fmt)) == (precheck(data, POLICY), declared_size(data, fmt))
    assert declared_size(view, fmt) == (801, 517)


def test_too_large_is_refused_by_length() -> None:
    with pytest.raises(Rejected) as info:
        precheck(b"\xff\xd8\xff" + b"\x00" * 100, PhotoPolicy(max_bytes=50))
    assert (info.value.code, info.value.threshold) == ("photo_too_large", 50)


def test_the_jpeg_walk_is_bounded_and_leaves_the_verdict_to_the_worker() -> None:
    comments = b"".join(b"\xff\xfe\x00\x04ab" for _ in range(MAX_JPEG_SEGMENTS + 10))
    data = b"\xff\xd8" + comments + jpeg_bomb()[2:]
    assert declared_size(data, "JPEG") is None  # gave up before the SOF: not judged here
    assert precheck(data, POLICY) == "JPEG"


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff",
        b"\xff\xd8\xff\xe0\x00",
        b"\xff\xd8\xff\xda\x00\x08",
        b"\xff\xd8" + b"\xff" * 1000,
        b"\xff\xd8\x00",
    ],
)
def test_broken_jpeg_headers_are_not_read(data: bytes) -> None:
    assert declared_size(data, "JPEG") is None


def test_a_zero_dimension_is_corrupt() -> None:
    with pytest.raises(Rejected) as info:
        precheck(jpeg_bomb(0, 600), POLICY)
    assert info.value.code == "image_corrupt"
