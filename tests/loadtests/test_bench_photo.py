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


def test_each_function_is_timed_in_processes_of_its_own() -> None:
    from loadtests.bench_photo import KINDS, compare

    data = ktp.encode(ktp.scene(ktp.SceneSpec(width=800, height=600, seed=2)), quality=90)
    timings = compare(data, rounds=1, block=2)
    assert set(timings) == set(KINDS)
    assert all(t.wall > 0 and t.cpu >= 0 and t.faults >= 0 for t in timings.values())
