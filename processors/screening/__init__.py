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

Modules, one concept each: :mod:`~processors.screening.sources` (the registries and their file names),
:mod:`~processors.screening.hashing` (keyed NIK hashes and truncation), :mod:`~processors.screening.index` (the
sorted index and its load report), :mod:`~processors.screening.loader` (building it from a folder) and
:mod:`~processors.screening.holder` (the index in use, swapped on reload). Import from the package.
"""

from processors.screening.hashing import (
    KEY_BYTES,
    MIN_PEPPER_BYTES,
    NikHasher,
    keys_of,
    nik_hash,
    nik_hash_hex,
    truncate,
)
from processors.screening.holder import RegistryHolder, ReloadOutcome
from processors.screening.index import LoadReport, RegistryIndex, SourceReport
from processors.screening.loader import RegistryLoadError, load_registry_dir
from processors.screening.sources import PRIORITY, REGISTRY_SUFFIXES, SOURCES, is_registry_file

__all__ = [
    "KEY_BYTES",
    "MIN_PEPPER_BYTES",
    "PRIORITY",
    "REGISTRY_SUFFIXES",
    "SOURCES",
    "LoadReport",
    "NikHasher",
    "RegistryHolder",
    "RegistryIndex",
    "RegistryLoadError",
    "ReloadOutcome",
    "SourceReport",
    "is_registry_file",
    "keys_of",
    "load_registry_dir",
    "nik_hash",
    "nik_hash_hex",
    "truncate",
]
