"""Tests for processors.screening."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from processors.reasons import REASONS
from processors.screening import (
    KEY_BYTES,
    PRIORITY,
    SOURCES,
    NikHasher,
    RegistryHolder,
    RegistryIndex,
    RegistryLoadError,
    keys_of,
    load_registry_dir,
    nik_hash,
    nik_hash_hex,
    truncate,
)
from tests.support import make_nik

PEPPER = b"unit-test-pepper-not-a-secret"


def nik_for(i: int) -> str:
    """A distinct synthetic NIK per ``i``."""
    return make_nik(date(1970 + i % 40, 1 + i % 12, 1 + i % 28), serial=1 + i)


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def registry_dir(tmp_path: Path) -> Path:
    """One NIK per source (``nik_for(index in PRIORITY)``), ASN as prehashed digests."""
    for i, source in enumerate(PRIORITY):
        if source == "asn":
            write(tmp_path / "asn.hashes", ["# prehashed by the ministry", nik_hash_hex(nik_for(i), PEPPER)])
        else:
            write(tmp_path / f"{source}.txt", ["# header comment", "", nik_for(i), "   "])
    return tmp_path


def test_nik_hash_is_hmac_sha256_of_normalised_nik() -> None:
    nik = nik_for(1)
    expected = hmac.new(PEPPER, nik.encode(), hashlib.sha256).digest()
    assert nik_hash(nik, PEPPER) == expected
    assert nik_hash(f"{nik[:6]} {nik[6:12]}-{nik[12:]}", PEPPER) == expected
    assert nik_hash_hex(nik, PEPPER) == expected.hex()
    assert len(expected) == 32
    assert nik_hash(nik, PEPPER + b"x") != expected


@pytest.mark.parametrize("bad", ["123", "31710117089000O1", "", "3" * 100])
def test_nik_hash_rejects_non_niks_without_echoing(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        nik_hash(bad, PEPPER)
    assert bad not in str(info.value) or not bad


@pytest.mark.parametrize("pepper", [PEPPER, b"p" * 16, b"q" * 64, b"r" * 65, bytes(range(256)) * 2])
def test_nik_hasher_matches_nik_hash(pepper: bytes) -> None:
    hasher = NikHasher(pepper)
    for i in range(20):
        nik = nik_for(i)
        assert hasher(nik) == nik_hash(nik, pepper) == hmac.digest(pepper, nik.encode(), "sha256")
    assert hasher(f" {nik_for(3)[:8]} {nik_for(3)[8:]} ") == nik_hash(nik_for(3), pepper)
    with pytest.raises(ValueError):
        hasher("not a nik")


def test_nik_hash_rejects_short_pepper() -> None:
    with pytest.raises(ValueError, match="pepper"):
        NikHasher(b"short")
    with pytest.raises(ValueError, match="pepper"):
        nik_hash(nik_for(1), b"short")


def test_truncate() -> None:
    digest = nik_hash(nik_for(1), PEPPER)
    assert truncate(digest) == int.from_bytes(digest[:8], "big")
    assert truncate(digest[:KEY_BYTES]) == truncate(digest)
    with pytest.raises(ValueError):
        truncate(digest[:16])


def test_screen_hits_every_source(registry_dir: Path) -> None:
    index = load_registry_dir(registry_dir, PEPPER)
    assert len(index) == len(PRIORITY)
    for i, source in enumerate(PRIORITY):
        code = index.screen(nik_hash(nik_for(i), PEPPER))
        assert code == f"registry_{source}"
        assert code in REASONS
    assert index.counts() == dict.fromkeys(PRIORITY, 1)
    assert index.report.missing == ()
    assert index.report.sources["asn"].files == ("asn.hashes",)


def test_screen_misses(registry_dir: Path) -> None:
    index = load_registry_dir(registry_dir, PEPPER)
    for i in range(100, 150):
        assert index.screen(nik_hash(nik_for(i), PEPPER)) is None
    # Same NIK, another pepper: no match.
    other = b"another-pepper-0123456789"
    assert index.screen(nik_hash(nik_for(0), other)) is None


def test_screen_accepts_truncated_digest(registry_dir: Path) -> None:
    index = load_registry_dir(registry_dir, PEPPER)
    assert index.screen(nik_hash(nik_for(1), PEPPER)[:KEY_BYTES]) == "registry_asn"


def test_screen_many_and_lookup_keys(registry_dir: Path) -> None:
    index = load_registry_dir(registry_dir, PEPPER)
    hashes = [nik_hash(nik_for(i), PEPPER) for i in (0, 100, 3, 101, len(PRIORITY) - 1)]
    assert index.screen_many(hashes) == [
        f"registry_{PRIORITY[0]}",
        None,
        f"registry_{PRIORITY[3]}",
        None,
        f"registry_{PRIORITY[-1]}",
    ]
    assert index.lookup_keys(keys_of(hashes)).tolist() == [0, -1, 3, -1, len(PRIORITY) - 1]


def test_priority_order_for_nik_in_several_registries(tmp_path: Path) -> None:
    nik = nik_for(7)
    write(tmp_path / "bansos.txt", [nik])
    write(tmp_path / "pddikti.txt", [nik])
    write(tmp_path / "polri.hashes", [nik_hash_hex(nik, PEPPER)])
    index = load_registry_dir(tmp_path, PEPPER)
    assert index.screen(nik_hash(nik, PEPPER)) == "registry_polri"
    assert len(index) == 1
    assert index.report.total_entries == 1
    assert set(index.report.missing) == SOURCES - {"bansos", "pddikti", "polri"}


def test_txt_and_hashes_for_the_same_source_are_merged(tmp_path: Path) -> None:
    write(tmp_path / "tni.txt", [nik_for(1)])
    write(tmp_path / "tni.hashes", [nik_hash_hex(nik_for(2), PEPPER), nik_hash(nik_for(3), PEPPER)[:8].hex().upper()])
    index = load_registry_dir(tmp_path, PEPPER)
    for i in (1, 2, 3):
        assert index.screen(nik_hash(nik_for(i), PEPPER)) == "registry_tni"
    assert index.report.sources["tni"].entries == 3


def test_invalid_lines_counted_not_reported(tmp_path: Path) -> None:
    good = [nik_for(i) for i in range(300)]
    bad_nik = "3171011708900O01"
    lines = ["\ufeff" + good[0], *good[1:150], bad_nik, *good[150:], "12345", "3171-0117-0890-0999\r"]
    write(tmp_path / "bsu.txt", lines)
    index = load_registry_dir(tmp_path, PEPPER)
    report = index.report.sources["bsu"]
    assert report.entries == 301
    assert report.invalid == 2
    assert report.invalid_lines == (("bsu.txt", 151), ("bsu.txt", 302))
    assert bad_nik not in repr(index.report)
    assert index.screen(nik_hash(good[0], PEPPER)) == "registry_bsu"  # BOM stripped
    assert index.screen(nik_hash("3171011708900999", PEPPER)) == "registry_bsu"


def test_too_many_invalid_lines_fail(tmp_path: Path) -> None:
    write(tmp_path / "asn.txt", [nik_for(1), "Budi,3171011708900001", "x"])
    with pytest.raises(RegistryLoadError) as info:
        load_registry_dir(tmp_path, PEPPER)
    assert "asn.txt" in str(info.value)
    assert "3171011708900001" not in str(info.value)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no registry files"),
        ({"asm.txt": ["3171011708900001"]}, "unknown registry file"),
        ({"asn.txt": ["# only a comment", ""]}, "no entries"),
        ({"asn.hashes": ["zz" * 32]}, "invalid"),
    ],
)
def test_bad_directories(tmp_path: Path, files: dict[str, list[str]], message: str) -> None:
    for name, lines in files.items():
        write(tmp_path / name, lines)
    with pytest.raises(RegistryLoadError, match=message):
        load_registry_dir(tmp_path, PEPPER)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(RegistryLoadError):
        load_registry_dir(tmp_path / "absent", PEPPER)


def test_other_files_ignored(registry_dir: Path) -> None:
    write(registry_dir / "README.md", ["not a registry"])
    (registry_dir / "archive").mkdir()
    assert len(load_registry_dir(registry_dir, PEPPER)) == len(PRIORITY)


def test_reload_swaps_and_keeps_old_index_on_bad_file(registry_dir: Path) -> None:
    holder = RegistryHolder(registry_dir, PEPPER)
    first = holder.index
    new_nik = nik_for(200)
    assert holder.screen(nik_hash(new_nik, PEPPER)) is None

    write(registry_dir / "dprd.txt", [nik_for(PRIORITY.index("dprd")), new_nik])
    outcome = holder.reload()
    assert outcome.ok
    assert outcome.report is not None
    assert outcome.report.sources["dprd"].entries == 2
    assert holder.index is not first
    assert holder.screen(nik_hash(new_nik, PEPPER)) == "registry_dprd"

    second = holder.index
    write(registry_dir / "dprd.txt", ["garbage", "more garbage"])
    outcome = holder.reload()
    assert not outcome.ok
    assert outcome.error is not None
    assert "dprd.txt" in outcome.error
    assert holder.index is second
    assert holder.screen(nik_hash(new_nik, PEPPER)) == "registry_dprd"

    (registry_dir / "dprd.txt").chmod(0o000)
    try:
        outcome = holder.reload()
    finally:
        (registry_dir / "dprd.txt").chmod(0o644)
    assert holder.index is second
    assert outcome.ok or outcome.error is not None  # root can read mode-000 files


def test_reload_keeps_old_index_on_unexpected_error(registry_dir: Path) -> None:
    calls = 0

    def loader(path: Path, pepper: bytes) -> RegistryIndex:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise MemoryError("details that must not be echoed")
        return load_registry_dir(path, pepper)

    holder = RegistryHolder(registry_dir, PEPPER, loader=loader)
    before = holder.index
    outcome = holder.reload()
    assert (outcome.ok, outcome.error) == (False, "MemoryError")
    assert holder.index is before


def test_initial_load_failure_raises(tmp_path: Path) -> None:
    with pytest.raises(RegistryLoadError):
        RegistryHolder(tmp_path, PEPPER)


def test_from_keys_dedupes_by_priority_and_empty_index() -> None:
    keys = np.array([5, 3, 5, 9, 3, 2**64 - 1], dtype=np.uint64)
    sources = np.array([4, 2, 1, 0, 7, 12], dtype=np.uint8)
    index = RegistryIndex.from_keys(keys, sources)
    assert len(index) == 4
    assert 4 * 9 <= index.nbytes <= 4 * 9 + 64
    assert index.lookup_keys(np.array([3, 5, 9, 2**64 - 1, 0, 4, 10], dtype=np.uint64)).tolist() == [
        2,
        1,
        0,
        12,
        -1,
        -1,
        -1,
    ]
    assert index.screen((2**64 - 1).to_bytes(8, "big")) == f"registry_{PRIORITY[12]}"
    empty = RegistryIndex.empty()
    assert empty.screen(bytes(32)) is None
    assert empty.lookup_keys(np.array([1], dtype=np.uint64)).tolist() == [-1]
    with pytest.raises(ValueError):
        RegistryIndex.from_keys(np.array([1], dtype=np.uint64), np.array([13], dtype=np.uint8))
    with pytest.raises(ValueError, match="increasing"):
        RegistryIndex(np.array([2, 1], dtype=np.uint64), np.array([0, 0], dtype=np.uint8))
    with pytest.raises(ValueError, match="increasing"):
        RegistryIndex(np.array([1, 1], dtype=np.uint64), np.array([0, 0], dtype=np.uint8))
    caller_keys = np.array([3, 1, 2], dtype=np.uint64)
    RegistryIndex.from_keys(caller_keys, np.zeros(3, dtype=np.uint8))
    assert caller_keys.tolist() == [3, 1, 2]
    assert caller_keys.flags.writeable


@pytest.mark.parametrize("size", [1, 63, 64, 65, 1000, 100_000])
def test_single_and_batch_lookups_agree(size: int) -> None:
    rng = np.random.default_rng(size)
    edges = np.array([0, 1, 2**63 - 1, 2**63, 2**64 - 2, 2**64 - 1], dtype=np.uint64)
    stored = np.concatenate([rng.integers(0, 2**64, size, dtype=np.uint64, endpoint=False), edges[: size % 7]])
    index = RegistryIndex.from_keys(stored, rng.integers(0, len(PRIORITY), len(stored), dtype=np.uint8))
    absent = rng.integers(0, 2**64, 2000, dtype=np.uint64, endpoint=False)
    # Keys at and around bucket boundaries, plus the stored keys and their neighbours.
    boundaries = np.array(
        [(b << (64 - s)) + d for s in (1, 8, 16, 24) for b in (1, (1 << s) - 1) for d in (0, 1)], dtype=np.uint64
    )
    queries = np.concatenate([stored[:3000], stored[:500] + np.uint64(1), absent, boundaries, edges])
    batch = index.lookup_keys(queries).tolist()
    singles = [index.screen(int(q).to_bytes(8, "big")) for q in queries]
    assert singles == [f"registry_{PRIORITY[s]}" if s >= 0 else None for s in batch]
    assert all(s >= 0 for s in batch[: min(3000, len(stored))])


def test_every_source_has_a_reason_code() -> None:
    assert len(PRIORITY) == len(SOURCES) == 13
    for source in PRIORITY:
        assert f"registry_{source}" in REASONS
