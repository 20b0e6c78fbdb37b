"""Tests for processors.waves."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from processors.reasons import Rejected
from processors.waves import WIB, Wave, select

OPENS = datetime(2024, 3, 1, 0, 0, tzinfo=WIB)
CLOSES = datetime(2024, 3, 4, 23, 59, 59, tzinfo=WIB)


def wave(quota: int = 3) -> Wave:
    return Wave(number=65, opens_at=OPENS, closes_at=CLOSES, quota=quota)


def submissions(n: int) -> list[tuple[str, datetime]]:
    base = datetime(2024, 3, 1, 1, 0, tzinfo=UTC)
    return [(f"sub-{i:04d}", base + timedelta(seconds=i)) for i in range(n)]


def test_is_open_half_open_interval() -> None:
    w = wave()
    assert not w.is_open(OPENS - timedelta(microseconds=1))
    assert w.is_open(OPENS)
    assert w.is_open(OPENS.astimezone(UTC))  # same instant, other zone
    assert w.is_open(CLOSES - timedelta(microseconds=1))
    assert not w.is_open(CLOSES)
    with pytest.raises(ValueError, match="aware"):
        w.is_open(datetime(2024, 3, 2))


def test_check_open() -> None:
    w = wave()
    w.check_open(OPENS)
    with pytest.raises(Rejected) as info:
        w.check_open(CLOSES)
    assert info.value.code == "wave_not_open"


def test_opening_date_is_in_wib() -> None:
    # 2024-02-29 18:00 UTC is 2024-03-01 01:00 WIB.
    w = Wave(1, datetime(2024, 2, 29, 18, 0, tzinfo=UTC), CLOSES, 10)
    assert w.opening_date == date(2024, 3, 1)


@pytest.mark.parametrize(
    ("number", "opens", "closes", "quota"),
    [
        (0, OPENS, CLOSES, 1),
        (1, CLOSES, OPENS, 1),
        (1, OPENS, OPENS, 1),
        (1, OPENS, CLOSES, -1),
        (1, datetime(2024, 3, 1), CLOSES, 1),
    ],
)
def test_wave_validation(number: int, opens: datetime, closes: datetime, quota: int) -> None:
    with pytest.raises(ValueError):
        Wave(number, opens, closes, quota)


def test_select_by_order_of_completion() -> None:
    eligible = submissions(10)
    selected, rejected = select(eligible, 3, None)
    assert selected == ["sub-0000", "sub-0001", "sub-0002"]
    assert rejected == [f"sub-{i:04d}" for i in range(3, 10)]


def test_order_tie_break_by_submission_id_and_time_zones() -> None:
    t = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    plus7 = timezone(timedelta(hours=7))
    eligible = [
        ("b", t),
        ("a", t.astimezone(plus7)),  # same instant, written in WIB
        ("c", t - timedelta(milliseconds=1)),
    ]
    assert select(eligible, 2, None) == (["c", "a"], ["b"])


def test_select_exact_quota_and_edges() -> None:
    eligible = submissions(5)
    for quota in range(7):
        selected, rejected = select(eligible, quota, None)
        assert len(selected) == min(quota, 5)
        assert len(selected) + len(rejected) == 5
        assert not set(selected) & set(rejected)
    assert select([], 3, None) == ([], [])
    assert select([], 3, "seed") == ([], [])


def test_select_is_independent_of_input_order() -> None:
    eligible = submissions(200)
    expected_order = select(eligible, 50, None)
    expected_lottery = select(eligible, 50, "published-seed-2024-65")
    rng = random.Random(1234)
    for _ in range(5):
        shuffled = eligible[:]
        rng.shuffle(shuffled)
        assert select(shuffled, 50, None) == expected_order
        assert select(iter(shuffled), 50, "published-seed-2024-65") == expected_lottery


def test_lottery_ranks_by_hmac_of_seed_and_id() -> None:
    """A known answer, checkable by anyone with the published seed: HMAC-SHA256(seed, id) ascending. The first
    hex digits, from ``printf sub-0004 | openssl dgst -sha256 -hmac seed-65``: sub-0004 36184946,
    sub-0005 57b46b92, sub-0003 74e9dd95, sub-0007 8a25de82, sub-0000 a2a01cd9, sub-0001 bb50bd39,
    sub-0002 d507c7ba, sub-0006 d95139af."""
    eligible = submissions(8)
    selected, rejected = select(eligible, 3, "seed-65")
    assert selected == ["sub-0004", "sub-0005", "sub-0003"]
    assert rejected == ["sub-0007", "sub-0000", "sub-0001", "sub-0002", "sub-0006"]
    # Completion time plays no part in the lottery.
    later = [(sid, ts + timedelta(days=1) if i % 2 else ts) for i, (sid, ts) in enumerate(eligible)]
    assert select(later, 3, "seed-65") == (selected, rejected)


def test_lottery_depends_on_seed() -> None:
    eligible = submissions(100)
    assert select(eligible, 10, "seed-a")[0] != select(eligible, 10, "seed-b")[0]
    assert select(eligible, 10, "seed-a")[0] != select(eligible, 10, None)[0]


def test_wave_select_uses_quota() -> None:
    assert wave(quota=2).select(submissions(4)) == (["sub-0000", "sub-0001"], ["sub-0002", "sub-0003"])
    assert wave(quota=2).select(submissions(4), "s") == select(submissions(4), 2, "s")


@pytest.mark.parametrize(
    ("eligible", "quota", "seed"),
    [
        ([("a", OPENS)], -1, None),
        ([("a", OPENS)], 1, ""),
        ([("a", OPENS), ("a", CLOSES)], 1, None),
        ([("", OPENS)], 1, None),
        ([("x" * 257, OPENS)], 1, None),
        ([("a", datetime(2024, 3, 1))], 1, None),
    ],
)
def test_select_rejects_bad_input(eligible: list[tuple[str, datetime]], quota: int, seed: str | None) -> None:
    with pytest.raises(ValueError):
        select(eligible, quota, seed)
