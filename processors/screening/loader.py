"""Loading an index from a registry folder: ``<source>.txt`` (NIKs) and ``<source>.hashes`` (keyed hashes).

Never logs or reports line contents: errors and reports name files and line numbers only.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from processors.screening.hashing import KEY_BYTES, MIN_PEPPER_BYTES, NikHasher
from processors.screening.index import LoadReport, RegistryIndex, SourceReport
from processors.screening.sources import PRIORITY, SOURCES, is_registry_file

_HEX_LINE = re.compile(rb"[0-9a-fA-F]{64}|[0-9a-fA-F]{16}")
_MAX_LINE = 256


class RegistryLoadError(Exception):
    """A registry directory or file that cannot be trusted. The message names files and line numbers only."""


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
        if not is_registry_file(file):
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
