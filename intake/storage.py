"""Object storage: the narrow interface the service uses, an S3 adapter, and an in-memory fake.

:class:`ObjectStore` is sized to the calls we make. Both implementations pass the same contract suite
(``tests/intake/test_storage_contract.py``), run against the fake and against each S3 server we claim
(MinIO and SeaweedFS, started by ``deploy/local/stack.sh``). The adapter speaks S3 through the ``minio`` SDK's
public API only; it is not tied to the MinIO server.

Contracts:
* ``put`` is idempotent for a given key and content (keys are deterministic), and awaits until the object
  is durably written; it raises :class:`StorageUnavailable` for transient failures (connection refused,
  timeouts, 5xx such as SlowDown) so the caller can retry, and lets other errors (bugs) propagate.
* Every call on a bucket that does not exist raises :class:`BucketMissing`, a :class:`StorageUnavailable`:
  the consumers create the buckets at start, so a missing bucket is a start-up order (the API may start first)
  or an operator's slip, healed by retrying, never a reason to drop or dead-letter a record.
* ``get`` returns ``None`` for a missing object.
* Blocking S3 calls run on a bounded thread pool owned by the adapter; whoever builds the adapter calls
  :meth:`MinioStore.close`.
* ``ensure_buckets`` creates the buckets private (no policy is ever set) and, with ``INTAKE_S3_ENCRYPT``,
  makes server-side encryption (SSE-S3 with the server's KMS key) their default, so every KTP image and status
  record is encrypted at rest; a server that refuses that raises :class:`StoreUnfit`. Whether the server then
  really encrypts, and really honours ``If-None-Match``, is proven by :mod:`intake.store_probe` at start.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import itertools
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Protocol, TypeVar

import urllib3
from minio import Minio
from minio.error import S3Error
from minio.sseconfig import Rule, SSEConfig

from intake.s3_create import Answer, ConditionalCreates
from intake.settings import Settings

T = TypeVar("T")


class StorageUnavailable(Exception):
    """A transient storage failure: retry later. The message names the operation, never object content."""


class BucketMissing(StorageUnavailable):
    """The bucket does not exist (S3 ``NoSuchBucket``). Retryable: whoever ensures the buckets may not have yet."""


class StoreUnfit(Exception):
    """The store answers but lacks what the service relies on (conditional create, encryption at rest).

    Never retried: the service refuses to start. The message says what is missing and what to do.
    """


@dataclass(frozen=True)
class StoredObject:
    """An object's bytes and content type, and the entity tag of this version of it."""

    data: bytes
    content_type: str
    etag: str | None = None
    """The server's ``ETag`` of the version read (as it sent it, quoted), for :meth:`ObjectStore.put_if_match`;
    None when the object was not read from a store."""


class ObjectStore(Protocol):
    """What the service needs from object storage."""

    async def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None: ...

    async def put_if_absent(self, bucket: str, key: str, data: bytes, content_type: str) -> bool:
        """Create the object only if no object has that key, atomically (S3 ``If-None-Match: *``).

        True when this call created it; False when one already existed (its content is left untouched).
        """
        ...

    async def get(self, bucket: str, key: str) -> StoredObject | None: ...

    async def delete(self, bucket: str, key: str) -> None: ...

    async def list_keys(self, bucket: str, prefix: str = "") -> list[str]: ...

    async def list_page(self, bucket: str, prefix: str, start_after: str, limit: int) -> list[str]:
        """At most ``limit`` keys starting with ``prefix`` and sorting after ``start_after`` ("" from the start), in
        key order: a bucket too large for :meth:`list_keys` is walked page by page (pass the last key of a page as
        the next ``start_after``) in bounded memory. Fewer than ``limit`` keys: the listing is complete."""
        ...

    async def put_if_match(self, bucket: str, key: str, data: bytes, content_type: str, etag: str) -> bool:
        """Replace the object only if it is still the version :meth:`get` read with ``etag``, atomically (S3
        ``If-Match``). True when this call replaced it; False when it changed or was deleted meanwhile (then
        nothing is written: a deleted object is never re-created)."""
        ...

    async def ensure_buckets(self, buckets: Iterable[str]) -> None: ...

    async def versioning(self, bucket: str) -> str | None:
        """The bucket's versioning as the server reports it: ``"Enabled"``, ``"Suspended"`` (older versions kept
        while it was enabled stay), or None when it was never enabled."""
        ...

    async def server_side_encryption(self, bucket: str, key: str) -> str | None:
        """The encryption the server reports for the stored object (``x-amz-server-side-encryption``: ``AES256``
        for SSE-S3, ``aws:kms`` for SSE-KMS), read back from the server; ``None`` when it reports none or the
        object (or its bucket: S3 answers a HEAD without a body, so the two cannot be told apart) does not exist."""
        ...


class MemoryStore:
    """In-memory :class:`ObjectStore` for unit tests. ``fail_next`` makes the next calls raise StorageUnavailable.

    It behaves as a server whose buckets encrypt by default (``ensure_buckets``) and that honours conditional
    create; test doubles of servers that do not override :meth:`put_if_absent` or :meth:`server_side_encryption`.
    """

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.buckets: set[str] = set()
        self.versioned: dict[str, str] = {}
        """Buckets whose versioning was turned on (the tests set it), and its status."""
        self.fail_next = 0
        self.puts = 0

    def _maybe_fail(self, op: str) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise StorageUnavailable(f"{op}: injected failure")

    def _bucket(self, bucket: str) -> None:
        if bucket not in self.buckets:
            raise BucketMissing(f"no such bucket {bucket!r}")

    async def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        self._maybe_fail("put")
        self._bucket(bucket)
        self.puts += 1
        self.objects[(bucket, key)] = StoredObject(bytes(data), content_type)

    async def put_if_absent(self, bucket: str, key: str, data: bytes, content_type: str) -> bool:
        self._maybe_fail("put")
        self._bucket(bucket)
        if (bucket, key) in self.objects:
            return False
        self.puts += 1
        self.objects[(bucket, key)] = StoredObject(bytes(data), content_type)
        return True

    async def get(self, bucket: str, key: str) -> StoredObject | None:
        self._maybe_fail("get")
        self._bucket(bucket)
        stored = self.objects.get((bucket, key))
        return None if stored is None else replace(stored, etag=_memory_etag(stored.data))

    async def delete(self, bucket: str, key: str) -> None:
        self._maybe_fail("delete")
        self._bucket(bucket)
        self.objects.pop((bucket, key), None)

    async def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        self._maybe_fail("list")
        self._bucket(bucket)
        return sorted(k for b, k in self.objects if b == bucket and k.startswith(prefix))

    async def list_page(self, bucket: str, prefix: str, start_after: str, limit: int) -> list[str]:
        self._maybe_fail("list")
        self._bucket(bucket)
        keys = (k for b, k in self.objects if b == bucket and k.startswith(prefix) and k > start_after)
        return sorted(keys)[:limit]

    async def put_if_match(self, bucket: str, key: str, data: bytes, content_type: str, etag: str) -> bool:
        self._maybe_fail("put")
        self._bucket(bucket)
        stored = self.objects.get((bucket, key))
        if stored is None or _memory_etag(stored.data) != etag:
            return False
        self.puts += 1
        self.objects[(bucket, key)] = StoredObject(bytes(data), content_type)
        return True

    async def ensure_buckets(self, buckets: Iterable[str]) -> None:
        self.buckets.update(buckets)

    async def versioning(self, bucket: str) -> str | None:
        self._maybe_fail("versioning")
        self._bucket(bucket)
        return self.versioned.get(bucket)

    def close(self) -> None:
        """Nothing to release (the same call as :meth:`MinioStore.close`)."""

    async def server_side_encryption(self, bucket: str, key: str) -> str | None:
        self._maybe_fail("stat")
        return "AES256" if (bucket, key) in self.objects else None


def _memory_etag(data: bytes) -> str:
    """The fake's entity tag: the MD5 of the bytes, quoted, as S3 gives for an unencrypted single-part object."""
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


_TRANSIENT_S3_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "XMinioServerNotInitialized",
        "XMinioStorageFull",
        "OperationTimedOut",
    }
)


_PRECONDITION_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
"""S3 answers to a conditional create that lost: 412, or 409 while a concurrent create of the key completes."""

_SSE_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")
_CONNECT_TIMEOUT_S = 3.0
_READ_TIMEOUT_S = 20.0


class MinioStore:
    """:class:`ObjectStore` over the MinIO Python SDK (any S3 server), with blocking calls on a bounded thread pool,
    except conditional creates: those run on the event loop (``creates``, :mod:`intake.s3_create`), because a new
    applicant's upload makes one and the SDK's thread hand-off cost the API five times as much CPU.
    """

    def __init__(self, client: Minio, threads: int, creates: ConditionalCreates, encrypt: bool = True) -> None:
        self._client = client
        self._creates = creates
        self._encrypt = encrypt
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="s3")

    def close(self) -> None:
        """Stop the thread pool (waits for calls under way) and close the idle connections of conditional creates
        (call it from the event loop that used the store, while it runs)."""
        self._creates.close()
        self._pool.shutdown(wait=True)

    async def _run(self, op: str, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn)
        except S3Error as exc:
            raise _classified(op, exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageUnavailable(f"{op}: {type(exc).__name__}") from exc

    async def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        await self._run(
            "put", partial(self._client.put_object, bucket, key, io.BytesIO(data), len(data), content_type=content_type)
        )

    async def put_if_absent(self, bucket: str, key: str, data: bytes, content_type: str) -> bool:
        """A PUT with ``If-None-Match: *`` (:class:`intake.s3_create.ConditionalCreates`: the SDK's ``put_object``
        cannot send the header)."""
        error = await _refusal("put_if_absent", self._creates.create(bucket, key, data, content_type))
        if error is None:
            return True
        if error.code in _PRECONDITION_CODES:
            return False
        raise _classified("put_if_absent", error) from error

    async def get(self, bucket: str, key: str) -> StoredObject | None:
        def _get() -> StoredObject | None:
            try:
                resp = self._client.get_object(bucket, key)
            except S3Error as exc:
                if exc.code == "NoSuchKey":
                    return None
                raise
            try:
                content_type = resp.headers.get("Content-Type", "application/octet-stream")
                return StoredObject(resp.read(), content_type, resp.headers.get("ETag"))
            finally:
                resp.close()
                resp.release_conn()

        return await self._run("get", _get)

    async def delete(self, bucket: str, key: str) -> None:
        await self._run("delete", partial(self._client.remove_object, bucket, key))

    async def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        def _list() -> list[str]:
            return sorted(
                o.object_name
                for o in self._client.list_objects(bucket, prefix=prefix, recursive=True)
                if o.object_name is not None
            )

        return await self._run("list", _list)

    async def list_page(self, bucket: str, prefix: str, start_after: str, limit: int) -> list[str]:
        """One ``ListObjectsV2`` call (1,000 keys at most per S3 response; the SDK cannot ask for fewer, so a
        smaller ``limit`` reads one response and keeps its first keys)."""

        def _page() -> list[str]:
            listed = self._client.list_objects(bucket, prefix=prefix, recursive=True, start_after=start_after or None)
            return [o.object_name for o in itertools.islice(listed, limit) if o.object_name is not None]

        return await self._run("list", _page)

    async def put_if_match(self, bucket: str, key: str, data: bytes, content_type: str, etag: str) -> bool:
        """A PUT with ``If-Match: <etag>`` on the event loop, as :meth:`put_if_absent`
        (:meth:`intake.s3_create.ConditionalCreates.replace`). S3 answers 412 when the object changed and 404
        ``NoSuchKey`` when it is gone: both are False. SeaweedFS answers ``NoSuchKey`` for a missing bucket too, so
        a refusal checks that the bucket exists (:class:`BucketMissing` otherwise)."""
        error = await _refusal("put_if_match", self._creates.replace(bucket, key, data, content_type, etag))
        if error is None:
            return True
        if error.code not in _PRECONDITION_CODES and error.code != "NoSuchKey":
            raise _classified("put_if_match", error) from error
        if not await self._run("put_if_match", partial(self._client.bucket_exists, bucket)):
            raise BucketMissing(f"put_if_match: no such bucket {bucket!r}")
        return False

    async def ensure_buckets(self, buckets: Iterable[str]) -> None:
        def _ensure(names: list[str]) -> None:
            for name in names:
                if not self._client.bucket_exists(name):
                    try:
                        self._client.make_bucket(name)
                    except S3Error as exc:
                        if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                            raise
                if self._encrypt:
                    try:
                        self._client.set_bucket_encryption(name, SSEConfig(Rule.new_sse_s3_rule()))
                    except S3Error as exc:
                        if exc.code in _TRANSIENT_S3_CODES:
                            raise
                        raise StoreUnfit(
                            f"the S3 server refused default encryption (SSE-S3) on bucket {name!r} ({exc.code}): "
                            "configure its KMS key (see README, 'Object storage') or set INTAKE_S3_ENCRYPT=false "
                            "for a development store"
                        ) from exc

        await self._run("ensure_buckets", partial(_ensure, list(buckets)))

    async def versioning(self, bucket: str) -> str | None:
        config = await self._run("versioning", partial(self._client.get_bucket_versioning, bucket))
        return config.status or None

    async def server_side_encryption(self, bucket: str, key: str) -> str | None:
        def _stat() -> str | None:
            try:
                stat = self._client.stat_object(bucket, key)
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                    return None
                raise
            value = (stat.metadata or {}).get("x-amz-server-side-encryption")
            return value if value in _SSE_ALGORITHMS else None

        return await self._run("stat", _stat)


async def _refusal(op: str, sending: Awaitable[Answer]) -> S3Error | None:
    """None when the conditional write ``sending`` was done (2xx); else the S3 error it was answered with.
    Raises :class:`StorageUnavailable` when no answer came."""
    try:
        answer = await sending
    except OSError as exc:
        raise StorageUnavailable(f"{op}: {type(exc).__name__}") from exc
    if 200 <= answer.status < 300:
        return None
    return _s3_error(urllib3.HTTPResponse(body=answer.body, status=answer.status, headers=answer.headers))


def _classified(op: str, exc: S3Error) -> Exception:
    """What an S3 error means to the caller: :class:`BucketMissing`, :class:`StorageUnavailable` (transient), or
    the error itself (a bug or a refusal)."""
    if exc.code == "NoSuchBucket":
        return BucketMissing(f"{op}: NoSuchBucket")
    if exc.code in _TRANSIENT_S3_CODES:
        return StorageUnavailable(f"{op}: {exc.code}")
    return exc


def _s3_error(resp: urllib3.BaseHTTPResponse) -> S3Error:
    """The S3 error a raw response carries (its XML body), or one named after the HTTP status when it has none."""
    try:
        return S3Error.fromxml(resp)
    except (ET.ParseError, UnicodeDecodeError):
        code = "ServiceUnavailable" if resp.status >= 500 else {412: "PreconditionFailed"}.get(resp.status)
        return S3Error(resp, code or f"HTTP{resp.status}", f"HTTP {resp.status}", None, None, None)


def build_store(settings: Settings) -> MinioStore:
    """The one place a concrete S3 client is built. Buckets are private (no policy is ever set)."""
    s3 = settings.s3
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=_CONNECT_TIMEOUT_S, read=_READ_TIMEOUT_S),
        maxsize=s3.io_threads,
        retries=urllib3.Retry(total=0),
    )
    client = Minio(
        s3.endpoint,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        secure=s3.secure,
        region=s3.region,
        http_client=http,
    )
    creates = ConditionalCreates(
        s3.endpoint,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        region=s3.region,
        secure=s3.secure,
        connections=s3.io_threads,
        connect_timeout_s=_CONNECT_TIMEOUT_S,
        read_timeout_s=_READ_TIMEOUT_S,
    )
    return MinioStore(client, s3.io_threads, creates, encrypt=s3.encrypt)
