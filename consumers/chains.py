"""Per-key chains of a fetched batch, and the offsets a batch may commit.

Records with the same key (the same applicant) run one after another in offset order, so the first submission
of a NIK claims its place first, and a record that failed holds back the later records of its key; different
keys run concurrently. Per partition, only the longest prefix that finished may be committed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from consumers.consumer import ConsumedRecord, TopicPartitionLike

Position = tuple[int, int]
"""(index of the partition in the batch, index of the record in its partition)."""


def key_chains(parts: Sequence[Sequence[ConsumedRecord]]) -> list[list[tuple[Position, ConsumedRecord]]]:
    """The batch's records grouped by (partition, key), each group in offset order."""
    chains: dict[tuple[int, bytes | None], list[tuple[Position, ConsumedRecord]]] = {}
    for p, records in enumerate(parts):
        for i, record in enumerate(records):
            chains.setdefault((p, record.key), []).append(((p, i), record))
    return list(chains.values())


def finished_prefix(count: int, finished: Mapping[Position, bool], p: int) -> int:
    """How many of partition ``p``'s ``count`` records finished in a row from the first."""
    done = 0
    while done < count and finished.get((p, done), False):
        done += 1
    return done


def next_offsets(
    parts: Sequence[tuple[TopicPartitionLike, Sequence[ConsumedRecord]]], finished: Mapping[Position, bool]
) -> dict[TopicPartitionLike, int]:
    """Partition -> the offset after its finished prefix, for the partitions with one."""
    out: dict[TopicPartitionLike, int] = {}
    for p, (tp, records) in enumerate(parts):
        done = finished_prefix(len(records), finished, p)
        if done:
            out[tp] = records[done - 1].offset + 1
    return out
