"""A capacity model of a registration wave: per-core rates in, a fleet and a simulated wave out (pure, no I/O).

It is a model, not a measurement: it scales figures measured on one machine (``loadtests.capacity measure``)
linearly with cores, and its assumptions are stated where they are made:

* **Cores.** Rates are per CPU-second of the process under test, so they hold on a dedicated core whatever the
  measuring machine was doing. An API process uses one core; its core-seconds go first to status reads (cheap),
  then to uploads. A consumer process of ``cores_per_consumer`` image processes (``INTAKE_POOL_WORKERS``) is
  given that many cores and drains that many times the per-core rate: linear scaling, no loss to contention
  (on the 2-core measuring machine 2 image processes gave 1.35x one, with Kafka and MinIO on the same cores).
* **Arrivals** (:class:`Wave`): the wave's first minute carries ``peak_minute_share`` of the applicants, the rest of
  its first hour ``first_hour_share`` minus that, evenly, and the remaining applicants arrive evenly over the rest
  of ``duration_h``. Uploads beyond the API's capacity are shed (503) and retried by the clients in the next step.
* **Status.** Every applicant whose upload was accepted and not yet processed polls every ``poll_after_s``.
  Records are drained first in, first out across the fleet (partitions drain in parallel, keys spread evenly), so
  an applicant's time to status is when the cumulative drained count reaches their place in the arrivals.
* **Sizes.** Kafka disk = records retained (the wave, or ``retention_days`` of it) x record bytes x replication;
  broker CPU = (replication + 1 consumer read) copies of the peak ingress; object storage = stored bytes per
  applicant (card, frame, status) by photo size class. Everything is sized at ``utilisation`` of capacity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

STEP_S = 10.0
"""Simulation step, in s (the peak minute is six steps)."""


@dataclass(frozen=True)
class Rates:
    """Per-core rates measured in one run (``loadtests.capacity measure``), the model's only inputs from the machine."""

    ingest_per_core: float
    """Uploads accepted (202) per second per API core (photo mix of the measurement)."""
    status_per_core: float
    """Status reads answered per second per API core."""
    drain_per_core: dict[str, float]
    """Photos processed per CPU-second of a consumer (its event loop and its image processes), by photo size class."""
    broker_mb_per_core: float
    """MB appended per second per broker core (one copy: replication 1, acks=all)."""
    record_bytes: dict[str, float]
    """Mean submissions record (photo + envelope), in bytes, by size class."""
    stored_bytes: dict[str, float]
    """Object storage per applicant (card, frame and status), in bytes, by size class."""
    consumer_start_s: float = 0.0
    """From a consumer's launch to its first outcome (imports, pool, group join), in s."""


@dataclass(frozen=True)
class Wave:
    """A registration wave: how many apply, with which photos, when."""

    applicants: int
    mix: dict[str, float]
    """Share of applicants per photo size class (sums to 1)."""
    first_hour_share: float = 1 / 3
    peak_minute_share: float = 0.02
    duration_h: float = 72.0
    poll_after_s: float = 10.0
    retention_days: float = 7.0
    replication: int = 3

    def __post_init__(self) -> None:
        if self.applicants < 1:
            raise ValueError("a wave has at least one applicant")
        if abs(sum(self.mix.values()) - 1) > 1e-6 or min(self.mix.values()) < 0:
            raise ValueError(f"the photo mix must be shares summing to 1, not {self.mix}")
        if not 0 < self.peak_minute_share <= self.first_hour_share <= 1:
            raise ValueError("need 0 < peak_minute_share <= first_hour_share <= 1")
        if self.duration_h <= 1 and self.first_hour_share < 1:
            raise ValueError("a wave of one hour or less has all its applicants in the first hour")

    def arrivals(self, step_s: float = STEP_S) -> list[float]:
        """Applicants arriving in each step from the opening to the end of ``duration_h``."""
        n = self.applicants
        steps = max(1, round(self.duration_h * 3600 / step_s))
        minute, hour = round(60 / step_s), round(3600 / step_s)
        out = [0.0] * steps
        for i in range(min(minute, steps)):
            out[i] += n * self.peak_minute_share / minute
        for i in range(minute, min(hour, steps)):
            out[i] += n * (self.first_hour_share - self.peak_minute_share) / (hour - minute)
        rest = steps - hour
        for i in range(hour, steps):
            out[i] += n * (1 - self.first_hour_share) / rest
        return out

    def mean(self, per_class: dict[str, float]) -> float:
        """The mix-weighted mean of a per-class figure."""
        return sum(share * per_class[c] for c, share in self.mix.items())


def mix_drain_rate(rates: Rates, mix: dict[str, float]) -> float:
    """Photos per second of one consumer core on the mix: the harmonic mean (time per photo adds up)."""
    return 1 / sum(share / rates.drain_per_core[c] for c, share in mix.items() if share)


@dataclass(frozen=True)
class Timeline:
    """A simulated wave, one entry per step."""

    step_s: float
    arrivals: list[float]
    shed_queue: list[float]
    """Uploads refused and waiting for their client's retry."""
    backlog: list[float]
    """Accepted and not yet processed (Kafka consumer lag)."""
    time_to_status_s: list[float]
    """For an applicant arriving in this step: seconds until their status is final."""
    status_reads_per_s: list[float]
    all_status_s: float
    """From the opening until every applicant has a status, in s (inf if not within the simulated horizon)."""

    @property
    def peak_backlog(self) -> float:
        return max(self.backlog)

    @property
    def max_time_to_status_s(self) -> float:
        return max(self.time_to_status_s)


def simulate(
    rates: Rates, wave: Wave, api_processes: int, consumer_cores: float, *, step_s: float = STEP_S, tail_h: float = 72.0
) -> Timeline:
    """The wave through ``api_processes`` API cores and ``consumer_cores`` consumer cores, up to ``tail_h`` after
    its end."""
    arrivals = wave.arrivals(step_s)
    arrivals += [0.0] * round(tail_h * 3600 / step_s)
    drain = consumer_cores * mix_drain_rate(rates, wave.mix) * step_s
    start_steps = rates.consumer_start_s / step_s
    shed = backlog = arrived = done = 0.0
    shed_q, backlog_q, reads, cum_arrived, cum_done = [], [], [], [], []
    for i, a in enumerate(arrivals):
        arrived += a
        read_rate = backlog / wave.poll_after_s
        read_cores = min(api_processes, read_rate / rates.status_per_core)
        accept = min(shed + a, (api_processes - read_cores) * rates.ingest_per_core * step_s)
        shed = shed + a - accept
        backlog += accept
        capacity = drain * min(1.0, max(0.0, i + 1 - start_steps))
        drained = min(backlog, capacity)
        backlog -= drained
        done += drained
        shed_q.append(shed)
        backlog_q.append(backlog)
        reads.append(read_rate)
        cum_arrived.append(arrived)
        cum_done.append(done)
    tts: list[float] = []
    j = 0
    for i in range(len(wave.arrivals(step_s))):
        target = cum_arrived[i] * (1 - 1e-9)
        while j < len(cum_done) and cum_done[j] < target:
            j += 1
        tts.append((j - i + 1) * step_s if j < len(cum_done) else math.inf)
    n = wave.applicants * (1 - 1e-9)
    finished = next((k for k, d in enumerate(cum_done) if d >= n), None)
    return Timeline(
        step_s,
        arrivals,
        shed_q,
        backlog_q,
        tts,
        reads,
        (finished + 1) * step_s if finished is not None else math.inf,
    )


@dataclass(frozen=True)
class Fleet:
    """What a wave needs, sized by :func:`size_fleet`."""

    api_processes: int
    consumer_cores: int
    consumer_processes: int
    cores_per_consumer: int
    partitions: int
    brokers: int
    broker_cores: float
    kafka_disk_bytes: float
    """Across the cluster, replicas included."""
    object_bytes: float
    timeline: Timeline
    notes: list[str] = field(default_factory=list)


def size_fleet(
    rates: Rates,
    wave: Wave,
    *,
    status_within_s: float = 3600.0,
    cores_per_consumer: int = 4,
    cores_per_broker: int = 4,
    utilisation: float = 0.7,
    step_s: float = STEP_S,
) -> Fleet:
    """The cheapest fleet (API + consumer cores, each at ``utilisation``) that accepts the peak minute without
    shedding and gives every applicant a status within ``status_within_s`` of their upload. More consumers than
    the fewest that meet the target can be cheaper: a smaller backlog means fewer applicants polling their status."""
    peak_rate = max(wave.arrivals(step_s)) / step_s
    ingest_cores = peak_rate / rates.ingest_per_core / utilisation
    api_unbounded = 10 * max(1, math.ceil(ingest_cores))

    def trial(processes: int) -> Timeline:
        cores = processes * cores_per_consumer * utilisation
        return simulate(rates, wave, api_unbounded, cores, step_s=step_s, tail_h=24)

    # The fewest consumer processes whose simulated time to status stays within the target (binary search).
    lo, hi = 1, 1
    while trial(hi).max_time_to_status_s > status_within_s:
        lo, hi = hi, hi * 2
        if hi > 100_000:
            raise ValueError("no fleet gives a status within the target")
    while lo < hi:
        mid = (lo + hi) // 2
        if trial(mid).max_time_to_status_s <= status_within_s:
            hi = mid
        else:
            lo = mid + 1
    # ... up to enough to drain the peak minute as it arrives; the cheapest in total cores wins.
    most = max(hi, math.ceil(peak_rate / mix_drain_rate(rates, wave.mix) / utilisation / cores_per_consumer))
    stride = max(1, (most - hi) // 40)
    best: tuple[float, int, float, Timeline] | None = None
    for processes in range(hi, most + 1, stride):
        probe = trial(processes)
        read_cores = max(probe.status_reads_per_s) / rates.status_per_core / utilisation
        total = processes * cores_per_consumer + ingest_cores + read_cores
        if best is None or total < best[0]:
            best = (total, processes, read_cores, probe)
    assert best is not None
    _, consumer_processes, read_cores, probe = best
    consumer_cores = consumer_processes * cores_per_consumer
    api_processes = max(2, math.ceil(ingest_cores + read_cores))
    timeline = simulate(rates, wave, api_processes, consumer_cores, step_s=step_s)
    partitions = max(6, math.ceil(2 * consumer_processes / 6) * 6)
    record = wave.mean(rates.record_bytes)
    peak_mb_s = peak_rate * record / 1e6
    broker_cores = peak_mb_s * (wave.replication + 1) / rates.broker_mb_per_core / utilisation
    brokers = max(wave.replication, math.ceil(broker_cores / cores_per_broker))
    retained = wave.applicants * min(1.0, wave.retention_days * 24 / wave.duration_h)
    notes = [
        f"peak {peak_rate:,.0f} uploads/s ({peak_mb_s:,.0f} MB/s), {max(probe.status_reads_per_s):,.0f} status reads/s",
        f"mix drain {mix_drain_rate(rates, wave.mix):.2f} photos/s per consumer core",
    ]
    return Fleet(
        api_processes=api_processes,
        consumer_cores=consumer_cores,
        consumer_processes=consumer_processes,
        cores_per_consumer=cores_per_consumer,
        partitions=partitions,
        brokers=brokers,
        broker_cores=broker_cores,
        kafka_disk_bytes=retained * record * wave.replication,
        object_bytes=wave.applicants * wave.mean(rates.stored_bytes),
        timeline=timeline,
        notes=notes,
    )


def drain_time_s(rates: Rates, classes: list[str], consumer_cores: float) -> float:
    """Predicted time for ``consumer_cores`` to drain a backlog of photos of ``classes`` (one entry per photo),
    from the consumer's launch: start-up plus the photos' summed per-core times over the cores."""
    return rates.consumer_start_s + sum(1 / rates.drain_per_core[c] for c in classes) / consumer_cores
