"""The applicant's data key at the edge: what the API seals each submissions record with.

:meth:`EdgeKeys.key_for` answers the applicant's data key (:mod:`intake.crypto`): from a bounded, time-limited
in-process cache (:class:`intake.crypto.KeyCache`: a resend of one applicant never reads the store again), else
from the key store (``INTAKE_BUCKET_KEYS``), creating it on the applicant's first upload (an atomic
create-if-absent: every API process agrees on one key).

A key store that fails or does not answer within ``INTAKE_DATA_KEY_TIMEOUT_S`` raises :class:`KeysUnavailable`
(the handler answers ``503 storage_unavailable`` with Retry-After: nothing was queued), and for as long again
every upload that needs the store fails at once, without waiting for it: during an outage the API answers
quickly, uploads whose key is cached still go through, and a stalled store never holds requests (or the store's
threads) for the S3 client's own timeouts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from intake.crypto import KeyCache, KeyDestroyed, KeyStore
from intake.metrics import Metrics
from intake.storage import StorageUnavailable


class KeysUnavailable(Exception):
    """The key store failed or did not answer in time: the upload cannot be sealed now (retryable)."""


class EdgeKeys:
    """Data keys for sealing, cached. One per API process, used from its event loop."""

    def __init__(
        self,
        store: KeyStore,
        cache: KeyCache,
        timeout_s: float,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store, self._cache, self._timeout_s = store, cache, timeout_s
        self._metrics, self._clock = metrics, clock
        self._down_until = 0.0

    async def key_for(self, applicant: str) -> bytes:
        """The applicant's data key (keyed NIK hash ``applicant``). Blocks at most ``timeout_s``; raises
        :class:`KeysUnavailable` when the store failed (now or within the last ``timeout_s``)."""
        dek = self._cache.get(applicant)
        if dek is not None:
            self._metrics.data_keys.labels("cached").inc()
            return dek
        if self._clock() < self._down_until:
            self._metrics.data_keys.labels("unavailable").inc()
            raise KeysUnavailable("the key store failed moments ago")
        started = self._clock()
        try:
            async with asyncio.timeout(self._timeout_s):
                dek = await self._get_or_create(applicant)
        except (StorageUnavailable, TimeoutError) as exc:
            self._down_until = self._clock() + self._timeout_s
            self._metrics.data_keys.labels("unavailable").inc()
            raise KeysUnavailable(f"key store: {type(exc).__name__}") from exc
        finally:
            self._metrics.data_key_duration.observe(self._clock() - started)
        self._metrics.data_keys.labels("stored").inc()
        self._cache.put(applicant, dek)
        return dek

    async def _get_or_create(self, applicant: str) -> bytes:
        try:
            return await self._store.get_or_create(applicant)
        except KeyDestroyed:  # erased between the create and the read: the next create makes a fresh key
            return await self._store.get_or_create(applicant)
