"""Object storage: the narrow interface the service uses, a MinIO adapter, and an in-memory fake.

:class:`ObjectStore` is sized to the calls we make. Both implementations pass the same contract suite
(``tests/intake/test_storage_contract.py``), run against the fake and against the real MinIO.

Contracts:
* ``put`` is idempotent for a given key and content (keys are deterministic), and awaits until the object
  is durably written; it raises :class:`StorageUnavailable` for transient failures (connection refused,
  timeouts, 5xx such as SlowDown) so the caller can retry, and lets other errors (bugs) propagate.
* ``get`` returns ``None`` for a missing object.
* Blocking S3 calls run on a bounded thread pool owned by the adapter; whoever builds the adapter calls
  :meth:`MinioStore.close`.
* ``ensure_buckets`` creates the buckets private (no policy is ever set) and, with ``INTAKE_S3_ENCRYPT``,
  makes server-side encryption (SSE-S3 with the server's KMS key) their default, so every KTP image and status
  record is encrypted at rest; a server that cannot encrypt fails it.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Protocol, TypeVar

import urllib3
from minio import Minio
from minio.error import S3Error
from minio.sseconfig import Rule, SSEConfig

from intake.settings import Settings

T = TypeVar("T")


class StorageUnavailable(Exception):
    """A transient storage failure: retry later. The message names the operation, never object content."""


@dataclass(frozen=True)
class StoredObject:
    """An object's bytes and content type."""

    data: bytes
    content_type: str


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

    async def ensure_buckets(self, buckets: Iterable[str]) -> None: ...


class MemoryStore:
    """In-memory :class:`ObjectStore` for unit tests. ``fail_next`` makes the next calls raise StorageUnavailable."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.buckets: set[str] = set()
        self.fail_next = 0
        self.puts = 0

    def _maybe_fail(self, op: str) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise StorageUnavailable(f"{op}: injected failure")

    def _bucket(self, bucket: str) -> None:
        if bucket not in self.buckets:
            raise LookupError(f"no such bucket {bucket!r}")

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
        return self.objects.get((bucket, key))

    async def delete(self, bucket: str, key: str) -> None:
        self._maybe_fail("delete")
        self._bucket(bucket)
        self.objects.pop((bucket, key), None)

    async def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        self._maybe_fail("list")
        self._bucket(bucket)
        return sorted(k for b, k in self.objects if b == bucket and k.startswith(prefix))

    async def ensure_buckets(self, buckets: Iterable[str]) -> None:
        self.buckets.update(buckets)


_TRANSIENT_S3_CODES = frozenset(
    {
        "SlowDown",
        "NoSuchBucket",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "XMinioServerNotInitialized",
        "XMinioStorageFull",
        "OperationTimedOut",
    }
)


class MinioStore:
    """:class:`ObjectStore` over the MinIO Python SDK, with blocking calls on a bounded thread pool."""

    def __init__(self, client: Minio, threads: int, encrypt: bool = True) -> None:
        self._client = client
        self._encrypt = encrypt
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="s3")

    def close(self) -> None:
        """Stop the thread pool (waits for calls under way)."""
        self._pool.shutdown(wait=True)

    async def _run(self, op: str, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn)
        except S3Error as exc:
            if exc.code in _TRANSIENT_S3_CODES:
                raise StorageUnavailable(f"{op}: {exc.code}") from exc
            raise
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageUnavailable(f"{op}: {type(exc).__name__}") from exc

    async def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        await self._run(
            "put", partial(self._client.put_object, bucket, key, io.BytesIO(data), len(data), content_type=content_type)
        )

    async def put_if_absent(self, bucket: str, key: str, data: bytes, content_type: str) -> bool:
        def _put() -> bool:
            try:
                # The SDK's public put_object cannot send If-None-Match; its PutObject call can.
                self._client._put_object(
                    bucket, key, data, headers={"Content-Type": content_type, "If-None-Match": "*"}
                )
            except S3Error as exc:
                if exc.code in ("PreconditionFailed", "ConditionalRequestConflict"):
                    return False
                raise
            return True

        return await self._run("put_if_absent", _put)

    async def get(self, bucket: str, key: str) -> StoredObject | None:
        def _get() -> StoredObject | None:
            try:
                resp = self._client.get_object(bucket, key)
            except S3Error as exc:
                if exc.code == "NoSuchKey":
                    return None
                raise
            try:
                return StoredObject(resp.read(), resp.headers.get("Content-Type", "application/octet-stream"))
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
                    self._client.set_bucket_encryption(name, SSEConfig(Rule.new_sse_s3_rule()))

        await self._run("ensure_buckets", partial(_ensure, list(buckets)))


def build_store(settings: Settings) -> MinioStore:
    """The one place a concrete S3 client is built. Buckets are private (no policy is ever set)."""
    s3 = settings.s3
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=3.0, read=20.0),
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
    return MinioStore(client, s3.io_threads, encrypt=s3.encrypt)
