"""Load shapes: the wave-opening spike and the soak, as pure schedules (no locust import here).

A schedule maps seconds since the start to a target user count; the ``LoadTestShape`` classes in
``loadtests/locustfile.py`` return ``(users, spawn_rate)`` from it, or ``None`` once the run is over. Parameters
come from the environment, so the benchmark and a person at the locust UI (``--class-picker``) get the same
shapes:

* spike: ``INTAKE_SPIKE_PEAK`` users (default 1500), ``INTAKE_SPIKE_IDLE_S`` seconds at zero (2), then up to
  the peak in ``INTAKE_SPIKE_RAMP_S`` (5), held for ``INTAKE_SPIKE_HOLD_S`` (30), then down linearly to
  ``INTAKE_SPIKE_FLOOR`` (15 % of the peak) in ``INTAKE_SPIKE_DECAY_S`` (20): idle to peak in seconds, as when a
  wave opens and every applicant who waited submits at once.
* soak: ``INTAKE_SOAK_USERS`` (200) reached in ``INTAKE_SOAK_RAMP_S`` (10) and held for ``INTAKE_SOAK_S`` (600).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    return float(raw) if raw not in (None, "") else default


@dataclass(frozen=True)
class SpikeSchedule:
    """Idle, a steep ramp to the peak, a hold, a linear decay to a floor, then the end."""

    peak: int = 1500
    idle_s: float = 2.0
    ramp_s: float = 5.0
    hold_s: float = 30.0
    decay_s: float = 20.0
    floor: int = 225

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SpikeSchedule:
        e = os.environ if env is None else env
        peak = int(_env_float(e, "INTAKE_SPIKE_PEAK", 1500))
        return cls(
            peak=peak,
            idle_s=_env_float(e, "INTAKE_SPIKE_IDLE_S", 2.0),
            ramp_s=max(_env_float(e, "INTAKE_SPIKE_RAMP_S", 5.0), 0.1),
            hold_s=_env_float(e, "INTAKE_SPIKE_HOLD_S", 30.0),
            decay_s=_env_float(e, "INTAKE_SPIKE_DECAY_S", 20.0),
            floor=int(_env_float(e, "INTAKE_SPIKE_FLOOR", 0.15 * peak)),
        )

    @classmethod
    def for_duration(cls, duration_s: float, peak: int) -> SpikeSchedule:
        """Fit the phases to ``duration_s``: 3 % idle, 8 % ramp (2..10 s), 50 % hold, the rest decay."""
        idle = max(1.0, 0.03 * duration_s)
        ramp = min(max(2.0, 0.08 * duration_s), 10.0)
        hold = 0.5 * duration_s
        return cls(peak, idle, ramp, hold, max(duration_s - idle - ramp - hold, 1.0), int(0.15 * peak))

    @property
    def duration_s(self) -> float:
        return self.idle_s + self.ramp_s + self.hold_s + self.decay_s

    def users_at(self, t: float) -> int | None:
        """Target users at ``t`` seconds, ``None`` after the end."""
        if t < 0 or t >= self.duration_s:
            return None
        if t < self.idle_s:
            return 0
        t -= self.idle_s
        if t < self.ramp_s:
            return max(1, math.ceil(self.peak * t / self.ramp_s))
        t -= self.ramp_s
        if t < self.hold_s:
            return self.peak
        t -= self.hold_s
        return round(self.peak - (self.peak - self.floor) * t / self.decay_s)

    def spawn_rate(self) -> float:
        """Users started per second: the whole peak within the ramp."""
        return max(self.peak / self.ramp_s, 1.0)

    def env(self) -> dict[str, str]:
        """The environment variables that reproduce this schedule in a locust process."""
        return {
            "INTAKE_SPIKE_PEAK": str(self.peak),
            "INTAKE_SPIKE_IDLE_S": str(self.idle_s),
            "INTAKE_SPIKE_RAMP_S": str(self.ramp_s),
            "INTAKE_SPIKE_HOLD_S": str(self.hold_s),
            "INTAKE_SPIKE_DECAY_S": str(self.decay_s),
            "INTAKE_SPIKE_FLOOR": str(self.floor),
        }


@dataclass(frozen=True)
class SoakSchedule:
    """A ramp to a steady number of users, held for a long time."""

    users: int = 200
    ramp_s: float = 10.0
    hold_s: float = 600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SoakSchedule:
        e = os.environ if env is None else env
        return cls(
            users=int(_env_float(e, "INTAKE_SOAK_USERS", 200)),
            ramp_s=max(_env_float(e, "INTAKE_SOAK_RAMP_S", 10.0), 0.1),
            hold_s=_env_float(e, "INTAKE_SOAK_S", 600.0),
        )

    @classmethod
    def for_duration(cls, duration_s: float, users: int) -> SoakSchedule:
        ramp = min(max(2.0, 0.1 * duration_s), 10.0)
        return cls(users, ramp, max(duration_s - ramp, 1.0))

    @property
    def duration_s(self) -> float:
        return self.ramp_s + self.hold_s

    def users_at(self, t: float) -> int | None:
        if t < 0 or t >= self.duration_s:
            return None
        if t < self.ramp_s:
            return max(1, math.ceil(self.users * t / self.ramp_s))
        return self.users

    def spawn_rate(self) -> float:
        return max(self.users / self.ramp_s, 1.0)

    def env(self) -> dict[str, str]:
        return {
            "INTAKE_SOAK_USERS": str(self.users),
            "INTAKE_SOAK_RAMP_S": str(self.ramp_s),
            "INTAKE_SOAK_S": str(self.hold_s),
        }


def arrivals(shape: SpikeSchedule | SoakSchedule, step_s: float = 0.001) -> list[float]:
    """Open-loop arrival times (s from the start) that follow ``shape`` read as arrivals per second instead of
    users: at each moment the rate is its user count then (the spike's idle, steep ramp, hold and decay)."""
    out: list[float] = []
    t, due = 0.0, 0.0
    while (rate := shape.users_at(t)) is not None:
        due += rate * step_s
        while due >= 1.0:
            out.append(round(t, 6))
            due -= 1.0
        t += step_s
    return out


SHAPES: dict[str, type[SpikeSchedule] | type[SoakSchedule]] = {"spike": SpikeSchedule, "soak": SoakSchedule}
"""Schedules by the name used in ``INTAKE_LOAD_SHAPE`` and ``bench --shape``."""
