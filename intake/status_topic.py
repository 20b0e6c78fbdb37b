"""Publishing a status change to the compacted status topic (see :mod:`intake.topics`).

Every writer of a status object (the pipeline, the wave close, erasure) calls :func:`publish_status` after the
object store accepted the object, so the topic never runs ahead of the durable record. The key is the
submission id (compaction keeps the latest state per submission; one partition owns a submission, so its states
stay in order); the value is :meth:`StatusRecord.to_json`, the same bytes as the stored object.
"""

from __future__ import annotations

from intake.kafka import Delivery, RecordSink
from intake.status import StatusRecord


async def publish_status(sink: RecordSink, topic: str, record: StatusRecord) -> Delivery:
    """Append ``record`` to the status topic ``topic``; blocks until acknowledged, raises
    :class:`intake.kafka.QueueUnavailable` otherwise (the caller retries: the write is idempotent)."""
    return await sink.send(topic, record.submission_id.encode(), record.to_json())
