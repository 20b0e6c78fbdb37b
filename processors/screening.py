"""Screening against exclusion registries (ASN, TNI, Polri, earlier recipients, ...), by keyed NIK hash.

Contract
--------
* :func:`nik_hash` is HMAC-SHA256(pepper, normalised 16-digit NIK): 32 bytes. NIKs are never stored or compared
  in the clear; the pepper is a secret of at least :data:`MIN_PEPPER_BYTES` bytes.
* :class:`RegistryIndex` keeps the first :data:`KEY_BYTES` (8) bytes of each digest, read big-endian as a
  ``uint64``, in one sorted ``numpy`` array, with a parallel ``uint8`` array naming the source: 9 bytes per
  entry (about 450 MB for 50 million entries), looked up with ``np.searchsorted``. Truncation is consistent:
  :func:`truncate` is the only place that does it, for NIKs, prehashed files and lookups alike.
* :meth:`RegistryIndex.screen` returns the reason code (``"registry_<source>"``) of the matching source that comes
  first in :data:`PRIORITY`, or ``None``. A NIK in several registries is stored once, under that source.
* :func:`load_registry_dir` builds an index from ``<source>.txt`` (one NIK per line) and/or ``<source>.hashes``
  (one hex HMAC digest per line: 64 hex digits, or the 16-digit truncation) files; it raises
  :class:`RegistryLoadError` for a file it cannot trust, and never logs or reports line contents.
* :class:`RegistryHolder` swaps in a freshly loaded index; a failed reload keeps the old one.

False positives: with 64-bit keys the chance that a given applicant collides with one of N registry entries is
N / 2**64 (5.4e-12 for N = 100 million), so about 1 wrongly screened applicant per 200 million screenings at that
registry size. Collisions cannot be aimed at a person without the pepper. Screening outcomes should still be
appealable, as registry data itself is imperfect.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import re
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from processors.nik import normalize_nik

__all__ = [
    "KEY_BYTES",
    "MIN_PEPPER_BYTES",
    "PRIORITY",
    "SOURCES",
    "LoadReport",
    "NikHasher",
    "RegistryHolder",
    "RegistryIndex",
    "RegistryLoadError",
    "ReloadOutcome",
    "SourceReport",
    "keys_of",
    "load_registry_dir",
    "nik_hash",
    "nik_hash_hex",
    "truncate",
]

KEY_BYTES = 8
"""Bytes of the HMAC kept in the index."""
MIN_PEPPER_BYTES = 16

PRIORITY: tuple[str, ...] = (
    "foreign_national",
    "asn",
    "tni",
    "polri",
    "dprd",
    "village_official",
    "enterprise_board",
    "prakerja",
    "bsu",
    "bpum",
    "bansos",
    "dapodik",
    "pddikti",
)
"""Sources in the order screening reports them: citizenship first, then status (office holders), then an earlier
Kartu Prakerja, then other programmes, then students. The reason code of a source is ``"registry_" + source``."""

SOURCES = frozenset(PRIORITY)

_REASONS: tuple[str, ...] = tuple(f"registry_{source}" for source in PRIORITY)
_SUFFIXES = (".txt", ".hashes")
_HEX_LINE = re.compile(rb"[0-9a-fA-F]{64}|[0-9a-fA-F]{16}")
_MAX_LINE = 256
_SHA256_BLOCK = 64
_BUCKET_TARGET = 64

U64Array = npt.NDArray[np.uint64]
U8Array = npt.NDArray[np.uint8]


class RegistryLoadError(Exception):
    """A registry directory or file that cannot be trusted. The message names files and line numbers only."""


def nik_hash(nik: str, pepper: bytes) -> bytes:
    """HMAC-SHA256(``pepper``, NIK) over the normalised NIK (see :func:`processors.nik.normalize_nik`): 32 bytes.

    Raises ``ValueError`` (whose message contains no part of the NIK) if the NIK is not 16 ASCII digits after
    normalisation, or the pepper is shorter than :data:`MIN_PEPPER_BYTES`.
    """
    if len(pepper) < MIN_PEPPER_BYTES:
        raise ValueError(f"pepper must be at least {MIN_PEPPER_BYTES} bytes")
    return hmac.digest(pepper, _canonical(nik), "sha256")


def _canonical(nik: str) -> bytes:
    """The 16 ASCII digits that are hashed; ``ValueError`` (without the input) for anything else."""
    if not (len(nik) == 16 and nik.isascii() and nik.isdigit()):  # fast path: already canonical
        nik = normalize_nik(nik) if len(nik) <= 64 else nik
        if not (len(nik) == 16 and nik.isascii() and nik.isdigit()):
            raise ValueError("not a 16-digit NIK")
    return nik.encode("ascii")


class NikHasher:
    """:func:`nik_hash` with the pepper's HMAC state precomputed: same output, about twice as fast in bulk.

    HMAC-SHA256 per RFC 2104: the inner and outer SHA-256 states after absorbing ``key XOR ipad`` and
    ``key XOR opad`` are computed once and copied per message.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, pepper: bytes) -> None:
        if len(pepper) < MIN_PEPPER_BYTES:
            raise ValueError(f"pepper must be at least {MIN_PEPPER_BYTES} bytes")
        key = hashlib.sha256(pepper).digest() if len(pepper) > _SHA256_BLOCK else pepper
        key = key.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def digest_canonical(self, nik: bytes) -> bytes:
        """HMAC of an already canonical NIK (16 ASCII digits, unchecked): 32 bytes."""
        inner = self._inner.copy()
        inner.update(nik)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def __call__(self, nik: str) -> bytes:
        """Same as ``nik_hash(nik, pepper)``."""
        return self.digest_canonical(_canonical(nik))


def nik_hash_hex(nik: str, pepper: bytes) -> str:
    """:func:`nik_hash` as 64 lower-case hex digits (the format of ``<source>.hashes`` files)."""
    return nik_hash(nik, pepper).hex()


def truncate(digest: bytes) -> int:
    """The index key of a digest: its first :data:`KEY_BYTES` bytes as a big-endian unsigned integer.

    Accepts the full 32-byte digest or an already truncated 8-byte one; raises ``ValueError`` otherwise.
    """
    if len(digest) not in (32, KEY_BYTES):
        raise ValueError(f"digest must be 32 or {KEY_BYTES} bytes, got {len(digest)}")
    return int.from_bytes(digest[:KEY_BYTES], "big")


@dataclass(frozen=True, slots=True)
class SourceReport:
    """What loading one source's files found. ``invalid_lines`` holds at most 10 line numbers (1-based)."""

    source: str
    files: tuple[str, ...]
    entries: int
    invalid: int
    invalid_lines: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What :func:`load_registry_dir` loaded: per-source counts, and sources with no file."""

    sources: dict[str, SourceReport] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    total_entries: int = 0
    """Entries after removing duplicates (within and across sources)."""


class RegistryIndex:
    """An immutable index of truncated NIK digests per source. Safe to share between threads.

    Build with :meth:`from_keys` (or :func:`load_registry_dir`); look up with :meth:`screen`,
    :meth:`screen_many` or :meth:`lookup_keys`.
    """

    __slots__ = (
        "_bucket_shift",
        "_bucket_view",
        "_buckets",
        "_key_view",
        "_keys",
        "_source_view",
        "_sources",
        "report",
    )

    def __init__(self, keys: U64Array, sources: U8Array, report: LoadReport | None = None) -> None:
        """Wrap strictly increasing ``keys`` and their ``sources`` (indices into :data:`PRIORITY`), made read-only.

        Prefer :meth:`from_keys`, which sorts and removes duplicates. Raises ``ValueError`` for wrong dtypes or
        shapes, or keys that are not strictly increasing (checked: an unsorted array would silently miss).
        """
        if keys.dtype != np.uint64 or sources.dtype != np.uint8 or keys.shape != sources.shape or keys.ndim != 1:
            raise ValueError("keys must be 1-d uint64 and sources uint8 of the same shape")
        if len(keys) > 1 and not bool(np.all(keys[1:] > keys[:-1])):
            raise ValueError("keys must be strictly increasing")
        if len(sources) and int(sources.max()) >= len(PRIORITY):
            raise ValueError("source index out of range")
        self._keys = np.ascontiguousarray(keys)
        self._sources = np.ascontiguousarray(sources)
        self._keys.setflags(write=False)
        self._sources.setflags(write=False)
        # Single lookups: a bucket table on the top bits of the key (about 64 keys per bucket, uint32 offsets,
        # under 0.1 byte per entry) narrows the search to a few cache lines, then bisect over a memoryview
        # (no numpy per-call overhead) finishes it.
        bits = max(1, min(24, (max(len(keys), 1) // _BUCKET_TARGET).bit_length()))
        self._bucket_shift = 64 - bits
        starts = np.arange(1 << bits, dtype=np.uint64) << np.uint64(self._bucket_shift)
        buckets = np.empty((1 << bits) + 1, dtype=np.uint32 if len(keys) < 2**32 else np.uint64)
        buckets[:-1] = np.searchsorted(self._keys, starts)
        buckets[-1] = len(keys)
        buckets.setflags(write=False)
        self._buckets = buckets
        self._bucket_view = buckets.data.cast("B").cast("I" if buckets.dtype == np.uint32 else "Q")
        self._key_view = self._keys.data.cast("B").cast("Q")
        self._source_view = self._sources.data.cast("B")
        self.report = report or LoadReport(total_entries=len(keys))

    @classmethod
    def from_keys(cls, keys: U64Array, sources: U8Array, report: LoadReport | None = None) -> RegistryIndex:
        """Build from unsorted ``keys`` with ``sources`` (indices into :data:`PRIORITY`); inputs are not modified.

        Equal keys are stored once, under the source earliest in :data:`PRIORITY`. Besides the inputs, building
        needs about 2.5 times the final size (a sort permutation and the sorted copies).
        """
        keys = np.asarray(keys, dtype=np.uint64)
        sources = np.asarray(sources, dtype=np.uint8)
        if keys.shape != sources.shape:
            raise ValueError("keys and sources must have the same shape")
        if len(sources) and int(sources.max()) >= len(PRIORITY):
            raise ValueError("source index out of range")
        # Sort by (key, source): the first of equal keys is the highest-priority source.
        order = np.lexsort((sources, keys))
        keys = keys[order]
        sources = sources[order]
        del order
        if len(keys) > 1:
            first = np.empty(len(keys), dtype=bool)
            first[0] = True
            np.not_equal(keys[1:], keys[:-1], out=first[1:])
            if not first.all():
                keys = keys[first]
                sources = sources[first]
        if report is not None:
            report = LoadReport(report.sources, report.missing, len(keys))
        return cls(keys, sources, report)

    @classmethod
    def empty(cls) -> RegistryIndex:
        """An index with no entries (screens nobody)."""
        return cls(np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.uint8))

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def nbytes(self) -> int:
        """Bytes held by the index arrays (keys, sources and the bucket table)."""
        return int(self._keys.nbytes + self._sources.nbytes + self._buckets.nbytes)

    def counts(self) -> dict[str, int]:
        """Entries per source (after removing duplicates)."""
        counts = np.bincount(self._sources, minlength=len(PRIORITY))
        return {source: int(counts[i]) for i, source in enumerate(PRIORITY)}

    def screen(self, nik_hash: bytes) -> str | None:
        """Reason code (``"registry_<source>"``) for a 32-byte :func:`nik_hash` (or its 8-byte truncation), or None."""
        key = truncate(nik_hash)
        bucket = key >> self._bucket_shift
        hi = self._bucket_view[bucket + 1]
        i = bisect.bisect_left(self._key_view, key, self._bucket_view[bucket], hi)
        if i < hi and self._key_view[i] == key:
            return _REASONS[self._source_view[i]]
        return None

    def lookup_keys(self, keys: U64Array) -> npt.NDArray[np.int8]:
        """Vectorised lookup of truncated keys: per key, the index into :data:`PRIORITY` of its source, or -1."""
        queries = np.asarray(keys, dtype=np.uint64)
        stored = self._keys
        if len(stored) == 0:
            return np.full(queries.shape, -1, dtype=np.int8)
        # Searching sorted queries is several times faster (cache locality); results are put back in input order.
        order = np.argsort(queries)
        ordered = queries[order]
        positions = np.searchsorted(stored, ordered)
        np.minimum(positions, len(stored) - 1, out=positions)
        found = np.where(stored[positions] == ordered, self._sources[positions].astype(np.int8), np.int8(-1))
        result = np.empty(queries.shape, dtype=np.int8)
        result[order] = found
        return result

    def screen_many(self, nik_hashes: Sequence[bytes]) -> list[str | None]:
        """:meth:`screen` for many digests at once (faster per item than repeated :meth:`screen`)."""
        keys = np.fromiter((truncate(h) for h in nik_hashes), dtype=np.uint64, count=len(nik_hashes))
        return [_REASONS[s] if s >= 0 else None for s in self.lookup_keys(keys).tolist()]


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, stripped content) for non-blank, non-comment lines; a UTF-8 BOM is ignored."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:].strip()
            if not line or line.startswith(b"#"):
                continue
            yield number, line


def _nik_key(line: bytes, hasher: NikHasher) -> int | None:
    if not (len(line) == 16 and line.isdigit()):
        if len(line) > _MAX_LINE:
            return None
        for sep in (b" ", b"-", b"."):
            line = line.replace(sep, b"")
        if not (len(line) == 16 and line.isdigit()):
            return None
    return int.from_bytes(hasher.digest_canonical(line)[:KEY_BYTES], "big")


def _hash_key(line: bytes) -> int | None:
    if _HEX_LINE.fullmatch(line) is None:
        return None
    return int(line[: 2 * KEY_BYTES], 16)


def _load_file(path: Path, hasher: NikHasher, out: array[int]) -> tuple[int, int, list[int]]:
    """Append keys from one file to ``out``; return (entries, invalid lines, first invalid line numbers)."""
    prehashed = path.suffix == ".hashes"
    entries = invalid = 0
    bad: list[int] = []
    for number, line in _lines(path):
        key = _hash_key(line) if prehashed else _nik_key(line, hasher)
        if key is None:
            invalid += 1
            if len(bad) < 10:
                bad.append(number)
            continue
        out.append(key)
        entries += 1
    return entries, invalid, bad


def load_registry_dir(path: Path, pepper: bytes, *, max_invalid_fraction: float = 0.01) -> RegistryIndex:
    """Build a :class:`RegistryIndex` from the registry files in ``path``.

    Files: ``<source>.txt`` (one NIK per line; separators space/``-``/``.`` allowed) and/or ``<source>.hashes`` (one
    hex HMAC-SHA256(pepper, NIK) per line, 64 or 16 hex digits) for each source in :data:`SOURCES`; both may be
    present and are merged. Blank lines and lines starting with ``#`` are skipped; a UTF-8 BOM is ignored. Other
    file names are ignored unless they end in ``.txt``/``.hashes``.

    Invalid lines are skipped and counted in ``index.report`` (with at most 10 line numbers per source, never the
    content). Raises :class:`RegistryLoadError` if ``path`` is not a directory, holds no registry file, holds a
    ``.txt``/``.hashes`` file for an unknown source (a misspelt name would silently disable a registry), a file
    cannot be read, has no valid line, or more than ``max_invalid_fraction`` of a file's lines are invalid (wrong
    format, or truncated/corrupt). An empty registry is expressed by having no file for it. Sources without a
    file are listed in ``index.report.missing``.
    """
    if len(pepper) < MIN_PEPPER_BYTES:
        raise ValueError(f"pepper must be at least {MIN_PEPPER_BYTES} bytes")
    if not path.is_dir():
        raise RegistryLoadError(f"registry directory {path} does not exist")
    files: dict[str, list[Path]] = {}
    for file in sorted(path.iterdir()):
        if file.suffix not in _SUFFIXES or not file.is_file():
            continue
        if file.stem not in SOURCES:
            raise RegistryLoadError(f"unknown registry file {file.name}; expected <source>.txt or <source>.hashes")
        files.setdefault(file.stem, []).append(file)
    if not files:
        raise RegistryLoadError(f"no registry files in {path}")

    hasher = NikHasher(pepper)
    keys: array[int] = array("Q")
    sources: array[int] = array("B")
    reports: dict[str, SourceReport] = {}
    for index, source in enumerate(PRIORITY):
        before = len(keys)
        entries = invalid = 0
        bad: list[tuple[str, int]] = []
        for file in files.get(source, []):
            try:
                file_entries, file_invalid, file_bad = _load_file(file, hasher, keys)
            except OSError as error:
                raise RegistryLoadError(f"cannot read {file.name}: {error.strerror or type(error).__name__}") from None
            if file_invalid > max_invalid_fraction * (file_entries + file_invalid):
                raise RegistryLoadError(
                    f"{file.name}: {file_invalid} of {file_entries + file_invalid} lines are invalid "
                    f"(first at line {file_bad[0]})"
                )
            if file_entries == 0:
                raise RegistryLoadError(f"{file.name} has no entries (remove the file if the registry is empty)")
            entries += file_entries
            invalid += file_invalid
            bad.extend((file.name, n) for n in file_bad[: 10 - len(bad)])
        sources.frombytes(bytes([index]) * (len(keys) - before))
        if source in files:
            names = tuple(f.name for f in files[source])
            reports[source] = SourceReport(source, names, entries, invalid, tuple(bad))
    missing = tuple(source for source in PRIORITY if source not in files)
    report = LoadReport(reports, missing, 0)
    key_array = np.frombuffer(keys, dtype=np.uint64).copy() if len(keys) else np.empty(0, dtype=np.uint64)
    del keys
    source_array = np.frombuffer(sources, dtype=np.uint8).copy() if len(sources) else np.empty(0, dtype=np.uint8)
    return RegistryIndex.from_keys(key_array, source_array, report)


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    """Result of :meth:`RegistryHolder.reload`: ``ok`` and the new report, or the error that kept the old index."""

    ok: bool
    report: LoadReport | None = None
    error: str | None = None


class RegistryHolder:
    """Holds the current :class:`RegistryIndex` and replaces it atomically on :meth:`reload`.

    Readers call :meth:`screen` (or take :attr:`index` once per batch); they never see a half-built index. The
    caller decides when to reload (a timer, a signal, a file watcher); reloads are serialised by a lock.
    """

    def __init__(
        self,
        path: Path,
        pepper: bytes,
        *,
        loader: Callable[[Path, bytes], RegistryIndex] = load_registry_dir,
        initial: RegistryIndex | None = None,
    ) -> None:
        """Load the initial index now (errors propagate) unless ``initial`` is given."""
        self._path = path
        self._pepper = pepper
        self._loader = loader
        self._lock = threading.Lock()
        self._index = initial if initial is not None else loader(path, pepper)

    @property
    def index(self) -> RegistryIndex:
        """The current index."""
        return self._index

    def screen(self, nik_hash: bytes) -> str | None:
        """:meth:`RegistryIndex.screen` on the current index."""
        return self._index.screen(nik_hash)

    def reload(self) -> ReloadOutcome:
        """Load a new index from the same directory and swap it in; on any failure keep the current one.

        Never raises for a load failure: the outcome says what happened (file names and line numbers only).
        """
        with self._lock:
            try:
                fresh = self._loader(self._path, self._pepper)
            except (RegistryLoadError, ValueError) as error:
                return ReloadOutcome(ok=False, error=f"{type(error).__name__}: {error}")
            except Exception as error:  # keep serving on anything else, without echoing a message of unknown content
                return ReloadOutcome(ok=False, error=type(error).__name__)
            self._index = fresh
            return ReloadOutcome(ok=True, report=fresh.report)


def keys_of(nik_hashes: Iterable[bytes]) -> U64Array:
    """Truncate many digests into a ``uint64`` array for :meth:`RegistryIndex.lookup_keys`."""
    return np.fromiter((truncate(h) for h in nik_hashes), dtype=np.uint64)
