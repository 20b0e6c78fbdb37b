"""The start-up probe: prove that the object store does what the service relies on, or refuse to start.

Two properties are not universal among S3 servers and fail silently where missing: conditional create
(``If-None-Match: *``, which makes the one-claim-per-NIK-per-wave rule and the wave's selection atomic; Garage
ignores it) and encryption at rest (versitygw accepts a bucket encryption default and stores plaintext). So the
API and every consumer, once the buckets are ensured, write a probe object into each bucket, create it a second
time (the store must refuse), read back the encryption the server reports for it, and delete it.

:func:`probe_store` raises :class:`intake.storage.StoreUnfit` (never retried: the caller refuses to start) with a
message naming the property and the bucket, and :class:`intake.storage.StorageUnavailable` when the store does
not answer (the caller decides whether that may wait). It writes only under ``_probe/``, one fresh key per call,
so processes starting together never see each other's probes.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable
from typing import Protocol

from intake.storage import StorageUnavailable, StoreUnfit

PROBE_PREFIX = "_probe/"


class ProbedStore(Protocol):
    """The calls the probe makes."""

    async def put_if_absent(self, bucket: str, key: str, data: bytes, content_type: str) -> bool: ...

    async def server_side_encryption(self, bucket: str, key: str) -> str | None: ...

    async def delete(self, bucket: str, key: str) -> None: ...


async def probe_store(store: ProbedStore, buckets: Iterable[str], *, encrypt: bool) -> None:
    """Check conditional create in every bucket and, with ``encrypt``, that each bucket's objects are encrypted.

    Blocks for a few round trips per bucket. Raises :class:`StoreUnfit` or :class:`StorageUnavailable` (see the
    module docstring); deletes its probe objects on the way out (a delete that fails leaves one tiny object).
    """
    for bucket in buckets:
        key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        try:
            if not await store.put_if_absent(bucket, key, b"probe", "text/plain"):
                raise StoreUnfit(
                    f"object store: a conditional create of a fresh key in bucket {bucket!r} was refused; "
                    "the server does not implement If-None-Match correctly"
                )
            if await store.put_if_absent(bucket, key, b"probe again", "text/plain"):
                raise StoreUnfit(
                    f"object store: bucket {bucket!r} accepted a second create of one key with If-None-Match: * "
                    "(it must answer 412 Precondition Failed); the one-registration-per-NIK rule would not hold "
                    "on this server: use one that supports conditional writes (see README, 'Object storage')"
                )
            if encrypt:
                algorithm = await store.server_side_encryption(bucket, key)
                if algorithm is None:
                    raise StoreUnfit(
                        f"object store: an object written to bucket {bucket!r} reads back unencrypted although "
                        "the bucket's default is SSE-S3; the server ignores server-side encryption: configure its "
                        "KMS key (see README, 'Object storage')"
                    )
        finally:
            with contextlib.suppress(StorageUnavailable):
                await store.delete(bucket, key)
