"""The start-up probe: prove that the object store does what the service relies on, or refuse to start.

Two properties are not universal among S3 servers and can fail silently: conditional create (``If-None-Match: *``,
which makes the one-claim-per-NIK-per-wave rule and the wave's selection atomic; Garage ignores it) and encryption
at rest (versitygw accepts a bucket encryption default and stores plaintext). So the API and every consumer, once
the buckets are ensured, write a probe object into each bucket, create it a second time (the store must refuse),
read back the encryption the server reports for it, and delete it.

:func:`probe_store` raises :class:`intake.storage.StoreUnfit` (never retried: the caller refuses to start) with a
message naming the property and the bucket. A store that answers the bucket calls but keeps failing the probe's
writes is unfit too: SeaweedFS without its SSE key accepts a bucket's encryption default and then answers every
write into it with ``500 InternalError``. It writes only under ``_probe/``, one fresh key per call, so processes
starting together never see each other's probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

from intake.storage import StorageUnavailable, StoredObject, StoreUnfit

PROBE_PREFIX = "_probe/"
ATTEMPTS = 3
"""Tries of each probe call before a transient-looking failure counts as the store's answer (0.5 s, then 1 s apart)."""

T = TypeVar("T")


class ProbedStore(Protocol):
    """The calls the probe makes."""

    async def put_if_absent(self, bucket: str, key: str, data: bytes, content_type: str) -> bool: ...

    async def server_side_encryption(self, bucket: str, key: str) -> str | None: ...

    async def delete(self, bucket: str, key: str) -> None: ...

    async def versioning(self, bucket: str) -> str | None: ...


async def probe_store(
    store: ProbedStore, buckets: Iterable[str], *, encrypt: bool, unversioned: Iterable[str] = ()
) -> None:
    """Check conditional create in every bucket and, with ``encrypt``, that each bucket's objects are encrypted;
    and that no bucket of ``unversioned`` (the data keys' bucket) has or had versioning, under which a deleted
    data key would survive as an older version and crypto-shredding would destroy nothing.

    Call it after ``ensure_buckets`` succeeded (the store answers). Blocks for a few round trips per bucket (a
    few seconds more when calls fail). Raises :class:`StoreUnfit`; deletes its probe objects on the way out (a
    delete that fails leaves one tiny object under ``_probe/``).
    """
    for bucket in buckets:
        await _probe_bucket(store, bucket, encrypt)
    for bucket in unversioned:
        await _probe_unversioned(store, bucket)


async def _probe_unversioned(store: ProbedStore, bucket: str) -> None:
    status = await _answer(bucket, lambda: store.versioning(bucket))
    if status is not None:
        raise StoreUnfit(
            f"object store: bucket {bucket!r} has versioning {status}: a data key deleted by an erasure would "
            "survive as an older version, so crypto-shredding would destroy nothing; use a bucket that never "
            "had versioning for INTAKE_BUCKET_KEYS (see README, 'Object storage')"
        )


async def _probe_bucket(store: ProbedStore, bucket: str, encrypt: bool) -> None:
    key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    try:
        created = await _answer(bucket, lambda: store.put_if_absent(bucket, key, b"probe", "text/plain"))
        if not created:
            raise StoreUnfit(
                f"object store: a conditional create of a fresh key in bucket {bucket!r} was refused; "
                "the server does not implement If-None-Match correctly"
            )
        if await _answer(bucket, lambda: store.put_if_absent(bucket, key, b"probe again", "text/plain")):
            raise StoreUnfit(
                f"object store: bucket {bucket!r} accepted a second create of one key with If-None-Match: * "
                "(it must answer 412 Precondition Failed), so the one-registration-per-NIK rule would not hold: "
                "use a server that supports conditional writes (see README, 'Object storage')"
            )
        if encrypt and await _answer(bucket, lambda: store.server_side_encryption(bucket, key)) is None:
            raise StoreUnfit(
                f"object store: an object written to bucket {bucket!r} reads back unencrypted although the "
                "bucket's default is SSE-S3: the server ignores server-side encryption; configure its KMS key "
                "(see README, 'Object storage')"
            )
    finally:
        with contextlib.suppress(StorageUnavailable):
            await store.delete(bucket, key)


async def _answer(bucket: str, call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, retried on StorageUnavailable; the last failure becomes StoreUnfit."""
    for attempt in range(ATTEMPTS):
        try:
            return await call()
        except StorageUnavailable as exc:
            if attempt == ATTEMPTS - 1:
                raise StoreUnfit(
                    f"object store: bucket {bucket!r} exists but the probe's write or read failed {ATTEMPTS} times "
                    f"({exc}); a server that cannot encrypt may refuse every write into an encrypted bucket "
                    "(SeaweedFS without WEED_S3_SSE_KEY does): configure its KMS key (see README, 'Object storage')"
                ) from exc
            await asyncio.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


class ReplacingStore(Protocol):
    """The calls :func:`probe_conditional_replace` makes."""

    async def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, bucket: str, key: str) -> StoredObject | None: ...

    async def put_if_match(self, bucket: str, key: str, data: bytes, content_type: str, etag: str) -> bool: ...

    async def delete(self, bucket: str, key: str) -> None: ...


async def probe_conditional_replace(store: ReplacingStore, bucket: str) -> None:
    """Prove that ``bucket`` honours ``If-Match`` on a PUT, which a key rotation relies on so that it never brings
    back a data key an erasure destroyed (:meth:`intake.crypto.KeyStore.rewrap`): a replace with the ETag read
    must succeed, one with a stale ETag and one of a deleted object must be refused (and create nothing).

    Not part of :func:`probe_store` (the API and consumers never replace conditionally). A few round trips; raises
    :class:`StoreUnfit` naming what failed, lets :class:`StorageUnavailable` propagate, and deletes its probe object
    (under ``_probe/``) on the way out."""
    key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    unfit = f"object store: bucket {bucket!r} does not honour If-Match on a PUT"
    try:
        await store.put(bucket, key, b"probe", "text/plain")
        read = await store.get(bucket, key)
        if read is None or not read.etag:
            raise StoreUnfit(f"{unfit}: it gave no ETag for an object just written")
        if not await store.put_if_match(bucket, key, b"probe, replaced", "text/plain", read.etag):
            raise StoreUnfit(f"{unfit}: it refused a replace carrying the current ETag")
        if await store.put_if_match(bucket, key, b"probe, stale", "text/plain", read.etag):
            raise StoreUnfit(f"{unfit}: it accepted a replace carrying a stale ETag")
        await store.delete(bucket, key)
        if await store.put_if_match(bucket, key, b"probe, deleted", "text/plain", read.etag) or await store.get(
            bucket, key
        ):
            raise StoreUnfit(f"{unfit}: a conditional replace re-created a deleted object")
    finally:
        with contextlib.suppress(StorageUnavailable):
            await store.delete(bucket, key)
