"""The audit log of KTP image reads: who read which submission's image, when, and with what outcome.

Records go to the audit topic (``{prefix}.audit.v1``, one partition, long retention, acks=all) before a single
byte of the image is sent: a read that cannot be audited is refused (fail closed). A record names the client,
its key id, the operator (``Intake-Actor``), the submission id and the image kind; never a NIK or an image.
``intake audit list`` reads them back.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass

from intake.kafka import RecordSink, read_topic
from intake.settings import Settings
from intake.topics import topic_names


@dataclass(frozen=True)
class AuditRecord:
    """One read attempt. ``outcome``: ``served`` or ``not_found``."""

    at: str
    client_id: str
    key_id: str
    actor: str
    submission_id: str
    kind: str
    outcome: str
    source_address: str

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> AuditRecord:
        """Parse a stored record. Raises ``ValueError``/``TypeError`` on a record of another shape."""
        return cls(**json.loads(raw))


async def append(sink: RecordSink, settings: Settings, record: AuditRecord) -> None:
    """Append ``record``; returns once Kafka acknowledged it. Raises ``QueueUnavailable`` otherwise."""
    await sink.send(topic_names(settings).audit, record.submission_id.encode(), record.to_json())


async def read_audit(settings: Settings, submission_id: str | None = None) -> AsyncIterator[AuditRecord]:
    """Every audit record present when this started (optionally of one submission), oldest first."""
    async for raw in read_topic(settings, topic_names(settings).audit):
        record = AuditRecord.from_json(raw.value or b"{}")
        if submission_id is None or record.submission_id == submission_id:
            yield record
