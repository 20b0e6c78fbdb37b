"""The place in the queue, the wait estimate, the polling pace and the applicant's line (pure)."""

from __future__ import annotations

import math

from processors.queue import Place, place, place_messages, poll_after


def test_place_counts_what_is_ahead_in_the_partition() -> None:
    assert place(2, 100, 101, 5.0) is None  # processed
    first = place(2, 100, 100, 5.0)
    assert first is not None and (first.ahead, first.position, first.wait_s) == (0, 1, 0.0)
    later = place(2, 1100, 100, 5.0)
    assert later is not None and (later.ahead, later.position, later.wait_s) == (1000, 1001, 200.0)


def test_no_estimate_without_a_measured_rate() -> None:
    for rate in (None, math.nan, -1.0, 0.0):
        where = place(0, 50, 10, rate)
        assert where is not None and where.wait_s is None
    ids, en = place_messages(Place(0, 50, 40, None))
    assert ids == "Anda di antrean ke-41; perkiraan waktu tunggu belum tersedia."
    assert en == "You are number 41 in the queue; no wait estimate yet."


def test_messages_in_both_languages() -> None:
    ids, en = place_messages(Place(1, 0, 12_344, 10.0))  # 1234.4 s -> 21 min
    assert ids == "Anda di antrean ke-12.345, perkiraan 21 menit."
    assert en == "You are number 12,345 in the queue, estimated wait 21 min."
    assert place_messages(Place(1, 0, 1, 100.0))[0].endswith("perkiraan 1 menit.")  # never "0 menit"


def test_poll_after_grows_with_the_queue_and_is_bounded() -> None:
    base, cap, fraction = 10, 300, 0.5
    assert poll_after(None, base, cap, fraction) == base
    hints = [poll_after(Place(0, 0, ahead, 10.0), base, cap, fraction) for ahead in (0, 100, 400, 2000, 200_000)]
    assert hints == [10, 10, 20, 100, 300]
    assert hints == sorted(hints)
    # Without a rate: as if one record drained per base interval, within the same bounds.
    assert [poll_after(Place(0, 0, a, None), base, cap, fraction) for a in (1, 10, 1000)] == [10, 50, 300]


def test_total_polling_bound_holds() -> None:
    """Simulate N applicants behind a queue draining D/s: the polls per second stay under the README's bound."""
    n, drain, base, cap, fraction = 600_000, 300.0, 10, 300, 0.5
    total = sum(1 / poll_after(Place(0, 0, i, drain), base, cap, fraction) for i in range(n))
    bound = (drain / fraction) * (1 + math.log(cap / base)) + n / cap
    assert total <= bound
    assert total < n / base / 5  # far below everyone polling every base seconds
