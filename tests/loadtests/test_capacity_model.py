"""The capacity model: arrivals, simulation and sizing (pure, no stack)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from loadtests.capacity import fleet_table, plot, rates_from
from loadtests.capacity_model import Rates, Wave, drain_time_s, mix_drain_rate, simulate, size_fleet

MIX = {"small": 0.5, "big": 0.5}
RATES = Rates(
    ingest_per_core=100.0,
    status_per_core=1000.0,
    drain_per_core={"small": 20.0, "big": 5.0},
    broker_mb_per_core=50.0,
    record_bytes={"small": 200_000.0, "big": 3_000_000.0},
    stored_bytes={"small": 300_000.0, "big": 500_000.0},
    consumer_start_s=2.0,
)


def test_arrivals_follow_the_curve() -> None:
    wave = Wave(600_000, MIX, first_hour_share=1 / 3, peak_minute_share=0.02, duration_h=72)
    steps = wave.arrivals(10.0)
    assert len(steps) == 72 * 360
    assert sum(steps) == pytest.approx(600_000)
    assert sum(steps[:6]) == pytest.approx(12_000)  # the peak minute
    assert sum(steps[:360]) == pytest.approx(200_000)  # a third in the first hour
    assert max(steps) == steps[0]


def test_a_wave_that_does_not_add_up_is_refused() -> None:
    with pytest.raises(ValueError, match="mix"):
        Wave(10, {"small": 0.7})
    with pytest.raises(ValueError, match="peak_minute_share"):
        Wave(10, MIX, first_hour_share=0.01, peak_minute_share=0.02)


def test_the_mix_rate_is_the_harmonic_mean() -> None:
    assert mix_drain_rate(RATES, MIX) == pytest.approx(1 / (0.5 / 20 + 0.5 / 5))
    assert drain_time_s(RATES, ["small", "big", "big"], 2) == pytest.approx(2 + (1 / 20 + 2 / 5) / 2)


def test_simulation_conserves_applicants_and_orders_status() -> None:
    wave = Wave(500_000, MIX, duration_h=4)
    t = simulate(RATES, wave, api_processes=4, consumer_cores=8)
    assert t.backlog[-1] == pytest.approx(0, abs=1e-6)
    assert t.shed_queue[-1] == pytest.approx(0, abs=1e-6)
    # 8 cores drain 64 photos/s; the peak minute brings 167/s (a backlog), the rest of the first hour 44/s (none).
    assert 5_000 < t.peak_backlog < 10_000
    assert math.isfinite(t.all_status_s)
    assert t.all_status_s >= 4 * 3600
    # The peak minute's applicants wait longest; those at the end of the wave almost not at all.
    assert t.time_to_status_s[0] > t.time_to_status_s[-1]


def test_too_few_consumers_never_finish_within_the_horizon() -> None:
    wave = Wave(1_000_000, MIX, duration_h=2)
    t = simulate(RATES, wave, api_processes=100, consumer_cores=1, tail_h=1)
    assert t.all_status_s == math.inf
    assert t.max_time_to_status_s == math.inf


def test_an_api_too_small_sheds_and_catches_up() -> None:
    wave = Wave(600_000, MIX, duration_h=2)  # a 200/s peak minute on one API core (100/s)
    t = simulate(RATES, wave, api_processes=1, consumer_cores=100)
    assert max(t.shed_queue) > 0
    assert t.shed_queue[-1] == pytest.approx(0, abs=1e-6)


def test_sizing_meets_its_target_and_grows_with_the_wave() -> None:
    small = size_fleet(RATES, Wave(600_000, MIX), status_within_s=3600)
    large = size_fleet(RATES, Wave(5_500_000, MIX), status_within_s=3600)
    for fleet in (small, large):
        assert fleet.timeline.max_time_to_status_s <= 3600
        assert fleet.partitions >= fleet.consumer_processes
        assert fleet.brokers >= 3
        assert max(fleet.timeline.shed_queue) == 0  # the peak minute is absorbed
    assert large.consumer_cores > small.consumer_cores
    assert large.api_processes > small.api_processes
    assert large.kafka_disk_bytes == pytest.approx(small.kafka_disk_bytes * 5_500_000 / 600_000)
    assert small.object_bytes == pytest.approx(600_000 * 400_000)
    assert "model" in fleet_table(Wave(600_000, MIX), small)


def test_rates_from_a_measurement_fill_unmeasured_classes() -> None:
    report = {
        "classes": {
            "200k": {"cpu_s_per_photo": 1 / 30, "record_bytes": 210e3, "stored_bytes": 290e3, "start_up_s": 1.0},
            "3m": {"cpu_s_per_photo": 1 / 9, "record_bytes": 3_010e3, "stored_bytes": 530e3, "start_up_s": 3.0},
        },
        "api": {"accepted": 300, "api_cpu_s_uploads": 3.0, "reads_ok": 3000, "api_cpu_s_reads": 2.0,
                "appended_bytes": 300e6, "kafka_cpu_s_uploads": 6.0},
    }  # fmt: skip
    rates = rates_from(report)
    assert rates.ingest_per_core == 100
    assert rates.status_per_core == 1500
    assert rates.broker_mb_per_core == 50
    assert rates.drain_per_core["500k"] == pytest.approx(30.0)  # nearest measured: 200k
    assert rates.drain_per_core["5m"] == pytest.approx(9.0)
    assert rates.record_bytes["5m"] == pytest.approx(3_010_000 * 5 / 3)
    assert rates.consumer_start_s == 2.0


def test_plot_writes_a_png(tmp_path: Path) -> None:
    t = simulate(RATES, Wave(5_000, MIX, duration_h=2), api_processes=2, consumer_cores=2, tail_h=1)
    out = tmp_path / "wave.png"
    plot(t, "test", out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
