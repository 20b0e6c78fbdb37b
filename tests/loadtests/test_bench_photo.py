"""The photo benchmark's stage breakdown runs on the benchmark's own kind of photo (no timing is asserted)."""

from __future__ import annotations

from loadtests.bench_photo import stages
from processors.photo import PhotoPolicy
from tests.corpus import ktp


def test_stages_cover_the_pipeline() -> None:
    data = ktp.encode(ktp.scene(ktp.SceneSpec(width=1632, height=1224, angle_deg=6.0, seed=1)), quality=92)
    parts = stages(data, PhotoPolicy(), repeat=1)
    assert list(parts) == [
        "decode (reduced)",
        "detect",
        "refine outline",
        "card region",
        "warp",
        "measure",
        "encode card",
        "encode frame",
    ]
    assert all(v >= 0 for v in parts.values())
