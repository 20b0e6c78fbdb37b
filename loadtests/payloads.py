"""What the load generators send: synthetic KTP photos by size class, fresh applicants, multipart bodies.

* :func:`photo_set` generates a few JPEGs per size class once (seeded scenes from ``tests.corpus.ktp``, the
  quality searched until the file is within ~12 % of the class's size) and caches them in a temp folder, so
  every locust or open-loop process after the first starts at once.
* :func:`fresh_registration` is a distinct synthetic applicant per call (never a real person): a valid NIK whose
  region, birth date and serial vary, so about 10^11 different NIKs can come out.
* :class:`BodyFactory` turns a registration and a photo into the exact ``multipart/form-data`` bytes the web
  front end sends, without a multipart library in the hot path of the load generator.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from tests.corpus.ktp import SceneSpec, encode, scene
from tests.support import make_nik, make_registration

KB = 1000
MB = 1000 * 1000


@dataclass(frozen=True)
class SizeClass:
    """A photo size class: its label, target file size, the camera resolution used and its share of a wave."""

    label: str
    target_bytes: int
    width: int
    height: int
    weight: float


SIZE_CLASSES: dict[str, SizeClass] = {
    c.label: c
    for c in (
        SizeClass("200k", 200 * KB, 1280, 960, 0.30),
        SizeClass("500k", 500 * KB, 2048, 1536, 0.30),
        SizeClass("1m", 1 * MB, 2592, 1944, 0.20),
        SizeClass("3m", 3 * MB, 4032, 3024, 0.15),
        SizeClass("5m", 5 * MB, 4624, 3468, 0.05),
    )
}
"""0.2 to 5 MB, as phones send them; the weights are the mix used for a wave ("mix")."""

PHOTOS_PER_CLASS = 3
_CACHE_VERSION = "v1"
_TOLERANCE = 0.12


def cache_dir() -> Path:
    """Where generated photos are cached (``INTAKE_LOAD_PHOTO_CACHE`` or a folder in the temp dir)."""
    env = os.environ.get("INTAKE_LOAD_PHOTO_CACHE")
    base = Path(env) if env else Path(tempfile.gettempdir()) / "prakerja-loadtest-photos"
    return base / _CACHE_VERSION


def _generate(cls: SizeClass, index: int) -> bytes:
    """One JPEG of about ``cls.target_bytes``: the JPEG quality is searched, then the resolution grown."""
    width, height = cls.width, cls.height
    best = b""
    for _ in range(4):
        img = scene(SceneSpec(width=width, height=height, angle_deg=3.0 * index - 3.0, seed=index + 1))
        lo, hi = 40, 100
        while lo <= hi:
            q = (lo + hi) // 2
            data = encode(img, quality=min(q, 100))
            if abs(len(data) - cls.target_bytes) < abs(len(best) - cls.target_bytes):
                best = data
            if abs(len(data) - cls.target_bytes) <= _TOLERANCE * cls.target_bytes:
                return data
            if len(data) < cls.target_bytes:
                lo = q + 1
            else:
                hi = q - 1
        grow = 1.25 if len(best) < cls.target_bytes else 0.8
        width, height = int(width * grow), int(height * grow)
    return best


def photo_files(classes: list[str] | None = None, per_class: int = PHOTOS_PER_CLASS) -> dict[str, list[Path]]:
    """The cached photo files of ``classes`` (all by default), generating the missing ones. Label -> paths."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[Path]] = {}
    for label in classes or list(SIZE_CLASSES):
        cls = SIZE_CLASSES[label]
        paths: list[Path] = []
        for i in range(per_class):
            path = folder / f"{label}-{i}.jpg"
            if not path.exists():
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_bytes(_generate(cls, i))
                tmp.replace(path)  # atomic: concurrent generators never see half a file
            paths.append(path)
        out[label] = paths
    return out


def photo_set(classes: list[str] | None = None, per_class: int = PHOTOS_PER_CLASS) -> dict[str, list[bytes]]:
    """The cached photos of ``classes`` (all by default), generating the missing ones. Label -> JPEG bytes."""
    return {label: [p.read_bytes() for p in paths] for label, paths in photo_files(classes, per_class).items()}


_PROVINCES = ("11", "12", "13", "14", "15", "16", "17", "18", "19", "21", "31", "32", "33", "34", "35", "36", "51")
_FIRST = ("Siti", "Budi", "Dewi", "Agus", "Rina", "Joko", "Putri", "Rizky", "Ayu", "Eko", "Wahyu", "Nur")
_LAST = ("Nurhaliza", "Santoso", "Lestari", "Saputra", "Wijaya", "Hidayat", "Kusuma", "Pratama", "Rahmawati")


def fresh_registration(rng: random.Random | None = None, wave: int = 1) -> dict[str, Any]:
    """A new synthetic applicant (valid for ``wave``): region, birth date, sex and serial drawn at random."""
    r = rng or random.Random(secrets.randbits(64))
    birth = date(1966, 1, 1) + timedelta(days=r.randrange(13_500))  # aged ~19..59 at the 2026 waves
    female = r.random() < 0.5
    reg = make_registration(wave=wave, birth=birth)
    reg["nik"] = make_nik(
        birth,
        female=female,
        province=r.choice(_PROVINCES),
        regency=f"{r.randrange(1, 70):02d}",
        district=f"{r.randrange(1, 100):02d}",
        serial=r.randrange(1, 10_000),
    )
    reg["full_name"] = f"{r.choice(_FIRST)} {r.choice(_LAST)}"
    reg["email"] = f"applicant.{r.getrandbits(40):010x}@example.co.id"
    return reg


def synthetic_address(rng: random.Random) -> str:
    """A source address for one applicant, sent as ``X-Forwarded-For`` (the benchmark runs the API with
    ``INTAKE_TRUST_FORWARDED=true``, as behind the production proxy): a wave comes from many addresses, while
    every request of this generator comes from 127.0.0.1."""
    return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def idempotency_key() -> str:
    """A fresh Idempotency-Key (kept by the client across the retries of one submission)."""
    return "lt-" + secrets.token_hex(16)


class BodyFactory:
    """Builds ``multipart/form-data`` bodies: ``registration`` (JSON) then ``ktp_photo`` (JPEG)."""

    def __init__(self, boundary: str | None = None) -> None:
        self.boundary = boundary or "----prakerja-lt-" + secrets.token_hex(12)
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        b = self.boundary.encode()
        self._reg_head = (
            b"--" + b + b'\r\nContent-Disposition: form-data; name="registration"\r\n'
            b"Content-Type: application/json\r\n\r\n"
        )
        self._photo_head = (
            b"\r\n--" + b + b'\r\nContent-Disposition: form-data; name="ktp_photo"; filename="ktp.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n"
        )
        self._tail = b"\r\n--" + b + b"--\r\n"

    def body(self, registration: dict[str, Any], photo: bytes) -> bytes:
        """The whole request body."""
        return b"".join((self.head(registration), photo, self.tail))

    def head(self, registration: dict[str, Any]) -> bytes:
        """The body's bytes before the photo: the registration part and the photo part's headers."""
        raw = json.dumps(registration, ensure_ascii=False).encode()
        return b"".join((self._reg_head, raw, self._photo_head))

    @property
    def tail(self) -> bytes:
        """The body's bytes after the photo (the same for every body of this factory)."""
        return self._tail

    def overhead(self) -> int:
        """Bytes of a body that are not the photo, for a typical registration (about 0.6 KB)."""
        return len(self.body(fresh_registration(random.Random(0)), b""))


def pick_class(rng: random.Random, spec: str) -> str:
    """The size class for one submission: ``spec`` is a label, or ``mix`` for the weighted wave mix."""
    if spec != "mix":
        return spec
    labels = list(SIZE_CLASSES)
    return rng.choices(labels, weights=[SIZE_CLASSES[x].weight for x in labels])[0]


def parse_classes(spec: str) -> list[str]:
    """Labels used by ``spec`` (``mix`` or a label); raises ``ValueError`` for an unknown one."""
    if spec == "mix":
        return list(SIZE_CLASSES)
    if spec not in SIZE_CLASSES:
        raise ValueError(f"unknown photo size class {spec!r}; one of mix, {', '.join(SIZE_CLASSES)}")
    return [spec]
