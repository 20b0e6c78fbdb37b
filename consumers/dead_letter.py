"""Dead-lettering: a record that can never succeed (bad envelope, an erased applicant's sealed record, a bug) or
whose retries are spent is appended,
key and value untouched, to the dead-letter topic with the error and its position (:mod:`consumers.headers`).
Reading and replaying that topic is :mod:`consumers.dlq`."""

from __future__ import annotations

from consumers.consumer import ConsumedRecord
from consumers.headers import ERROR, position_headers
from intake.kafka import QueueUnavailable, RecordSink
from intake.metrics import Metrics


class DeadLetters:
    """Appends records to ``topic`` through ``sink``."""

    def __init__(self, sink: RecordSink, topic: str, metrics: Metrics) -> None:
        self._sink, self._topic, self._metrics = sink, topic, metrics

    async def send(self, record: ConsumedRecord, error: str) -> bool:
        """True once Kafka acknowledged the dead letter (the record's offset may then be committed); False when
        it did not (the record must be redelivered). ``error`` is ``kind`` or ``kind:detail``; the kind labels
        the metrics. Raises nothing else."""
        headers = [(ERROR, error.encode()), *position_headers(record)]
        try:
            await self._sink.send(self._topic, record.key or b"", record.value or b"", headers)
        except QueueUnavailable:
            return False
        kind = error.split(":", 1)[0]
        self._metrics.dead_letters.labels(kind).inc()
        self._metrics.consumer_messages.labels(record.topic, "dead_letter", kind).inc()
        return True
