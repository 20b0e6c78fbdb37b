"""The load shapes give the planned user counts over time; the locust shape classes follow them."""

from __future__ import annotations

import collections

import pytest

from loadtests.shapes import SoakSchedule, SpikeSchedule, arrivals


def test_spike_is_idle_then_peaks_within_seconds_holds_and_decays() -> None:
    s = SpikeSchedule(peak=1000, idle_s=2, ramp_s=5, hold_s=30, decay_s=20, floor=150)
    assert s.duration_s == 57
    assert [s.users_at(t) for t in (0, 1.9)] == [0, 0]
    assert s.users_at(2.0) == 1  # the first user at once
    assert s.users_at(4.5) == 500
    assert s.users_at(6.99) == 998
    assert [s.users_at(t) for t in (7, 20, 36.9)] == [1000, 1000, 1000]
    assert s.users_at(47) == 575  # halfway down
    assert s.users_at(56.99) == pytest.approx(150, abs=1)
    assert s.users_at(57) is None  # the run ends
    assert s.users_at(-1) is None
    assert s.spawn_rate() == 200  # the whole peak within the ramp


def test_spike_counts_never_exceed_the_peak_and_rise_monotonically_on_the_ramp() -> None:
    s = SpikeSchedule(peak=600, idle_s=1, ramp_s=3, hold_s=10, decay_s=5, floor=90)
    ramp = [s.users_at(1 + i / 10) or 0 for i in range(30)]
    assert ramp == sorted(ramp)
    assert all(u is not None and 0 <= u <= 600 for u in (s.users_at(t / 4) for t in range(int(s.duration_s * 4))))


def test_spike_fitted_to_a_duration() -> None:
    s = SpikeSchedule.for_duration(60, 1500)
    assert s.duration_s == pytest.approx(60)
    assert s.ramp_s <= 10 and s.idle_s >= 1
    assert s.users_at(s.idle_s + s.ramp_s + 1) == 1500
    assert s.floor == 225


def test_soak_ramps_then_holds() -> None:
    s = SoakSchedule(users=200, ramp_s=10, hold_s=600)
    assert s.users_at(0) == 1
    assert s.users_at(5) == 100
    assert [s.users_at(t) for t in (10, 300, 609.9)] == [200, 200, 200]
    assert s.users_at(610) is None
    assert SoakSchedule.for_duration(120, 50).duration_s == pytest.approx(120)


@pytest.mark.parametrize("schedule", [SpikeSchedule(peak=321, idle_s=1.5, ramp_s=4), SoakSchedule(users=77, hold_s=42)])
def test_schedules_round_trip_through_the_environment(schedule: SpikeSchedule | SoakSchedule) -> None:
    assert type(schedule).from_env(schedule.env()) == schedule


def test_defaults_from_an_empty_environment() -> None:
    assert SpikeSchedule.from_env({}) == SpikeSchedule()
    assert SoakSchedule.from_env({}) == SoakSchedule()


def test_arrivals_follow_the_spike_read_as_a_rate() -> None:
    spike = SpikeSchedule.for_duration(20, 1000)
    times = arrivals(spike)
    per_second = collections.Counter(int(t) for t in times)
    assert per_second[0] == 0  # idle
    assert per_second[1] == 250 and per_second[2] == 750  # the steep ramp
    assert all(per_second[s] == 1000 for s in range(3, 13))  # the hold
    assert 150 < per_second[19] < per_second[14] < 1000  # the decay to the floor
    assert times == sorted(times) and times[-1] < spike.duration_s
    assert len(arrivals(SoakSchedule(users=10, ramp_s=1, hold_s=2))) == pytest.approx(25, abs=1)
