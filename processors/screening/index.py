"""The in-memory index of truncated NIK hashes per source: one sorted ``uint64`` array with a parallel ``uint8``
array naming the source (9 bytes an entry), and what loading it found (:class:`LoadReport`)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from processors.screening.hashing import truncate
from processors.screening.sources import PRIORITY, REASONS

_BUCKET_TARGET = 64

U64Array = npt.NDArray[np.uint64]
U8Array = npt.NDArray[np.uint8]


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
            return REASONS[self._source_view[i]]
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
        return [REASONS[s] if s >= 0 else None for s in self.lookup_keys(keys).tolist()]
