"""Per-key chains of a batch and the offsets it may commit (consumers.chains)."""

from __future__ import annotations

from consumers.chains import finished_prefix, key_chains, next_offsets
from intake.memory_kafka import MemoryRecord, Partition


def _recs(partition: int, keys: list[bytes], first: int = 0) -> list[MemoryRecord]:
    return [MemoryRecord("t", partition, first + i, k, b"v") for i, k in enumerate(keys)]


def test_records_of_one_key_in_one_partition_form_one_chain_in_offset_order() -> None:
    parts = [_recs(0, [b"a", b"b", b"a"]), _recs(1, [b"a"])]
    chains = key_chains(parts)
    assert [[(pos, r.offset) for pos, r in chain] for chain in chains] == [
        [((0, 0), 0), ((0, 2), 2)],
        [((0, 1), 1)],
        [((1, 0), 0)],  # the same key in another partition is another chain
    ]


def test_only_the_finished_prefix_of_a_partition_is_committed() -> None:
    parts = [(Partition("t", 0), _recs(0, [b"a", b"b", b"c"], first=40)), (Partition("t", 1), _recs(1, [b"d"]))]
    finished = {(0, 0): True, (0, 1): False, (0, 2): True, (1, 0): False}
    assert finished_prefix(3, finished, 0) == 1
    assert finished_prefix(1, finished, 1) == 0
    assert next_offsets(parts, finished) == {Partition("t", 0): 41}
