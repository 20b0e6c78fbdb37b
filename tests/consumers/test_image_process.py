"""Set-up of the image pool's processes (consumers.image_process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.corpus import ktp

_SCRIPT = textwrap.dedent(
    """
    import pathlib, resource, sys
    from processors.photo import PhotoPolicy
    from processors.photo.pipeline import normalise_photo
    from consumers.image_process import prepare_image_process, tune_heap

    if sys.argv[1] == "tuned":
        prepare_image_process()
        assert tune_heap()
    data = pathlib.Path(sys.argv[2]).read_bytes()
    for _ in range(2):
        normalise_photo(data, PhotoPolicy())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        normalise_photo(data, PhotoPolicy())
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 3)
    """
)


def _faults_per_photo(mode: str, photo: Path) -> float:
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode, str(photo)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return float(proc.stdout)


def test_pool_processes_reuse_their_buffers(tmp_path: Path) -> None:
    """In a process that only reads and normalises photos, as a pool process does, glibc's defaults map fresh
    pages for a 12 MP photo's buffers every time (thousands of page faults: the kernel zeroing them); a prepared
    pool process reuses its heap."""
    photo = tmp_path / "ktp.jpg"
    photo.write_bytes(ktp.encode(ktp.scene(ktp.SceneSpec(width=4000, height=3000, seed=1))))
    assert _faults_per_photo("default", photo) > 1000
    assert _faults_per_photo("tuned", photo) < 100
