"""Rotating the key-encryption key (``intake keys rotate``): rewrap every stored data key under the active KEK, and
count the stored keys per KEK (``--check``) so the operator knows when an old KEK may leave ``INTAKE_DATA_KEKS``.

* **Bounded memory, whatever the bucket holds.** The keys bucket is listed :data:`LIST_PAGE` keys at a time
  (:meth:`intake.storage.ObjectStore.list_page`, each page starting after the last key of the one before), and each
  page's keys are handled ``INTAKE_KEY_ROTATION_WINDOW`` at a time, concurrently.
* **Idempotent, so resumable.** A key already under the active KEK is left alone (counted ``current``): a rotation
  stopped anywhere (Ctrl-C, a store outage) is finished by running it again.
* **Safe against erasure.** Each rewrap is a replace conditional on the ETag read (:meth:`KeyStore.rewrap`), so a
  key an erasure destroys meanwhile stays destroyed (counted ``gone``), as does a fresh key created after it;
  :func:`rotate_keys`'s caller first proves the store honours ``If-Match``
  (:func:`intake.store_probe.probe_conditional_replace`).
* **Failures.** A key that does not unwrap (wrapped by a KEK no longer listed, damaged) is counted ``failed`` and
  named by the first 16 hex digits of its keyed NIK hash (never a NIK); the walk goes on.
  :class:`intake.storage.StorageUnavailable` propagates: run it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from intake.crypto import KEY_PREFIX, CryptoError, KeyRing, KeyStore, applicant_of, wrapped_kek_id
from intake.storage import ObjectStore

LIST_PAGE = 1000
"""Keys listed per page: what one S3 ``ListObjectsV2`` answer holds at most (a property of the protocol)."""
MAX_NAMED_FAILURES = 20
"""Failed keys named in a summary (all are counted)."""

T = TypeVar("T")


@dataclass
class RotationSummary:
    """What a rotation did, key by key. ``failures`` names the first :data:`MAX_NAMED_FAILURES` failed keys."""

    active_kek: str
    scanned: int = 0
    rewrapped: int = 0
    current: int = 0
    """Already under the active KEK (new keys, or rewrapped by an earlier run)."""
    gone: int = 0
    """Destroyed (erased) or replaced between the listing and the rewrap: left as they are."""
    failed: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass
class KeyCensus:
    """The stored keys per id of the KEK that wrapped them (every listed KEK, 0 when none; an id found that is not
    listed too), and the objects that are not wrapped keys at all."""

    active_kek: str
    listed: tuple[str, ...]
    by_kek: dict[str, int]
    scanned: int = 0
    unreadable: int = 0

    @property
    def to_rewrap(self) -> int:
        """Keys under a listed KEK other than the active one: what ``intake keys rotate`` would rewrap."""
        return sum(n for kid, n in self.by_kek.items() if kid != self.active_kek and kid in self.listed)

    @property
    def unknown(self) -> int:
        """Keys under a KEK that is not listed: nothing can unwrap them (their applicants' records are unreadable)."""
        return sum(n for kid, n in self.by_kek.items() if kid not in self.listed)

    @property
    def removable(self) -> list[str]:
        """Listed KEKs, other than the active one, that wrap no stored key: their entries may leave
        ``INTAKE_DATA_KEKS``."""
        return [kid for kid in self.listed if kid != self.active_kek and self.by_kek.get(kid, 0) == 0]


async def key_pages(store: ObjectStore, bucket: str) -> AsyncIterator[list[str]]:
    """Every object key under ``keys/`` in ``bucket``, in key order, :data:`LIST_PAGE` at a time."""
    after = ""
    while True:
        page = await store.list_page(bucket, KEY_PREFIX, after, LIST_PAGE)
        if page:
            yield page
        if len(page) < LIST_PAGE:
            return
        after = page[-1]


async def rotate_keys(
    store: ObjectStore,
    bucket: str,
    ring: KeyRing,
    window: int,
    progress: Callable[[RotationSummary], None] | None = None,
) -> RotationSummary:
    """Rewrap every data key in ``bucket`` that is not under ``ring``'s active KEK; ``progress`` is called after
    every ``window`` keys. Raises :class:`intake.storage.StorageUnavailable` (the summary so far is lost, nothing
    is: run it again)."""
    keys = KeyStore(store, bucket, ring)
    summary = RotationSummary(ring.active.kid)

    async def one(name: str) -> str:
        applicant = applicant_of(name)
        if applicant is None:
            raise CryptoError("not a wrapped data key's object name")
        return await keys.rewrap(applicant)

    async for page in key_pages(store, bucket):
        for chunk in _windows(page, window):
            for name, outcome in zip(chunk, await _gather(one, chunk), strict=True):
                summary.scanned += 1
                if isinstance(outcome, CryptoError):
                    summary.failed += 1
                    if len(summary.failures) < MAX_NAMED_FAILURES:
                        summary.failures.append(f"{_named(name)}: {outcome}")
                elif outcome == "rewrapped":
                    summary.rewrapped += 1
                elif outcome == "current":
                    summary.current += 1
                else:
                    summary.gone += 1
            if progress is not None:
                progress(summary)
    return summary


async def census(
    store: ObjectStore,
    bucket: str,
    ring: KeyRing,
    window: int,
    progress: Callable[[KeyCensus], None] | None = None,
) -> KeyCensus:
    """Count the data keys in ``bucket`` per KEK id, changing nothing (``intake keys rotate --check``); a key
    erased meanwhile is not counted. Raises :class:`intake.storage.StorageUnavailable`."""
    listed = tuple(k.kid for k in ring.keks)
    result = KeyCensus(ring.active.kid, listed, dict.fromkeys(listed, 0))

    async def one(name: str) -> str | None:
        stored = await store.get(bucket, name)
        return None if stored is None else wrapped_kek_id(stored.data)

    async for page in key_pages(store, bucket):
        for chunk in _windows(page, window):
            for kid in await _gather(one, chunk):
                if kid is None:
                    continue
                result.scanned += 1
                if isinstance(kid, CryptoError):
                    result.unreadable += 1
                else:
                    result.by_kek[kid] = result.by_kek.get(kid, 0) + 1
            if progress is not None:
                progress(result)
    return result


def _windows(names: Sequence[str], size: int) -> list[Sequence[str]]:
    return [names[i : i + size] for i in range(0, len(names), size)]


async def _gather(call: Callable[[str], Awaitable[T]], names: Sequence[str]) -> list[T | CryptoError]:
    """``call`` on every name concurrently, each result or its :class:`CryptoError`, in order. Any other error is
    raised once every call finished (none is left running)."""
    out: list[T | CryptoError] = []
    for r in await asyncio.gather(*(call(n) for n in names), return_exceptions=True):
        if isinstance(r, BaseException) and not isinstance(r, CryptoError):
            raise r
        out.append(r)
    return out


def _named(object_key: str) -> str:
    """An object named by its first 16 characters after ``keys/`` (a keyed hash prefix, never a NIK)."""
    return f"{KEY_PREFIX}{object_key.removeprefix(KEY_PREFIX)[:16]}…"
