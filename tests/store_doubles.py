"""Test doubles of S3 servers that silently lack what the service relies on (for the start-up probe's tests)."""

from __future__ import annotations

from intake.storage import MemoryStore


class IgnoresIfNoneMatch(MemoryStore):
    """Like Garage 2.5.0: a create with ``If-None-Match: *`` overwrites an existing object and reports success."""

    async def put_if_absent(self, bucket: str, key: str, data: bytes, content_type: str) -> bool:
        await self.put(bucket, key, data, content_type)
        return True


class IgnoresSse(MemoryStore):
    """Like versitygw v1.8.0: accepts a bucket's encryption default and stores the objects of ``plaintext_buckets``
    (every bucket when empty) unencrypted."""

    def __init__(self, *plaintext_buckets: str) -> None:
        super().__init__()
        self.plaintext_buckets = set(plaintext_buckets)

    async def server_side_encryption(self, bucket: str, key: str) -> str | None:
        if not self.plaintext_buckets or bucket in self.plaintext_buckets:
            return None
        return await super().server_side_encryption(bucket, key)


class FailsWritesInto(MemoryStore):
    """Like SeaweedFS without its SSE key: every write into ``bucket`` answers 500 (StorageUnavailable)."""

    def __init__(self, bucket: str) -> None:
        super().__init__()
        self.failing = bucket

    async def put_if_absent(self, bucket: str, key: str, data: bytes, content_type: str) -> bool:
        if bucket == self.failing:
            self.fail_next = 1
        return await super().put_if_absent(bucket, key, data, content_type)


class IgnoresIfMatch(MemoryStore):
    """A server that ignores ``If-Match``: a conditional replace always writes (re-creating a deleted object)."""

    async def put_if_match(self, bucket: str, key: str, data: bytes, content_type: str, etag: str) -> bool:
        await self.put(bucket, key, data, content_type)
        return True
