"""The headers the worker puts on a record it hands on (to the retry or the dead-letter topic), and reads back.

``intake.attempt`` (deliveries from the retry topic so far), ``intake.not_before`` (unix time before which a
parked record is not processed), ``intake.error`` (why it was handed on: an error type, never data) and
``intake.source.{topic,partition,offset}`` (where the record was first consumed).
"""

from __future__ import annotations

from consumers.consumer import ConsumedRecord

ATTEMPT = "intake.attempt"
NOT_BEFORE = "intake.not_before"
ERROR = "intake.error"
SOURCE_PREFIX = "intake.source."


def header_float(record: ConsumedRecord, name: str) -> float | None:
    """The first header ``name`` of ``record`` as a number; None when absent or not a number."""
    for key, value in record.headers or ():
        if key == name:
            try:
                return float(value.decode())
            except (UnicodeDecodeError, ValueError):
                return None
    return None


def position_headers(record: ConsumedRecord) -> list[tuple[str, bytes]]:
    """Where ``record`` itself was consumed, as ``intake.source.*`` headers."""
    return [
        (SOURCE_PREFIX + "topic", record.topic.encode()),
        (SOURCE_PREFIX + "partition", str(record.partition).encode()),
        (SOURCE_PREFIX + "offset", str(record.offset).encode()),
    ]


def first_source_headers(record: ConsumedRecord) -> list[tuple[str, bytes]]:
    """The ``intake.source.*`` headers ``record`` carries (from its first parking), else its own position."""
    kept = {k: v for k, v in (record.headers or ()) if k.startswith(SOURCE_PREFIX)}
    return list(kept.items()) or position_headers(record)
