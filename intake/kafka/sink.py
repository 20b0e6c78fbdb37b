"""What the edges send through: :class:`RecordSink` (append one record, wait for the acknowledgement), where
the record went (:class:`Delivery`) and the one failure (:class:`QueueUnavailable`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

Headers = Sequence[tuple[str, bytes]]
"""Kafka record headers."""


class Delivery(NamedTuple):
    """Where Kafka appended an acknowledged record: its partition and offset (no personal data)."""

    partition: int
    offset: int | None
    """``None`` only from a sink that cannot tell. The service's sinks never acknowledge without one: a producer's
    success without an offset (librdkafka's implicit ack after a failed request) is answered as not confirmed
    (``KeptSink._confirmed``)."""


class QueueUnavailable(Exception):
    """Kafka did not acknowledge the record in time: it is not confirmed (never answer 202). A record that timed
    out inside the producer may still be appended later; a resend with the same Idempotency-Key is harmless."""


class RecordSink(Protocol):
    """Appends records durably. Implemented by :class:`ConfluentSink`, :class:`RdkafkaSink`, :class:`AIOKafkaSink`
    and by test fakes."""

    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers = ()) -> Delivery:
        """Return where the record was appended once it is acknowledged; raise :class:`QueueUnavailable`
        otherwise."""
        ...

    def ready(self) -> bool:
        """Whether the sink currently has fresh contact with the cluster."""
        ...

    def pending(self) -> int:
        """Records sent and not yet acknowledged (or failed)."""
        ...
