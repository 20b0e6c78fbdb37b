"""Keyed NIK hashes: HMAC-SHA256(pepper, normalised NIK), and their truncation to the index key.

NIKs are never stored or compared in the clear; the pepper is a secret of at least :data:`MIN_PEPPER_BYTES`
bytes. :func:`truncate` is the only place that truncates, for NIKs, prehashed files and lookups alike.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from processors.nik import normalize_nik

KEY_BYTES = 8
"""Bytes of the HMAC kept in the index."""
MIN_PEPPER_BYTES = 16

_SHA256_BLOCK = 64


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


def keys_of(nik_hashes: Iterable[bytes]) -> npt.NDArray[np.uint64]:
    """Truncate many digests into a ``uint64`` array for :meth:`RegistryIndex.lookup_keys`."""
    return np.fromiter((truncate(h) for h in nik_hashes), dtype=np.uint64)
