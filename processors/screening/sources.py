"""The exclusion registries: their sources, the order screening reports them in, and their files' names."""

from __future__ import annotations

from pathlib import Path

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

REASONS: tuple[str, ...] = tuple(f"registry_{source}" for source in PRIORITY)
"""The reason code of each source, in :data:`PRIORITY` order."""

REGISTRY_SUFFIXES = (".txt", ".hashes")
"""A registry file is ``<source>.txt`` (NIKs) or ``<source>.hashes`` (keyed hashes); other files are ignored."""


def is_registry_file(path: Path) -> bool:
    """Whether ``path`` is a file with a registry suffix (its source name is checked by the loader)."""
    return path.suffix in REGISTRY_SUFFIXES and path.is_file()
