"""Photos per second from the Kafka submissions topic to MinIO, with 1 and with 2 image processes (issue #3).

    .venv/bin/python -m loadtests.bench_drain                          # 300 photos of 12 MP (3m), 1 then 2 workers
    .venv/bin/python -m loadtests.bench_drain --photos mix --count 400 --rounds 2

"Workers" are the processes of one consumer's image pool (``INTAKE_POOL_WORKERS``, see
``consumers.runner.build_pool``); there is always exactly one ``intake consume`` process. All on 127.0.0.1, on the
benchmark's private stack (``loadtests.procs.Stack``: Kafka 29092, MinIO 29000, folder ``/tmp/lt-stack``; started
if it is down and then stopped at the end), never the default one on 19092/19000. For each phase (a worker count;
``--rounds`` repeats the list, alternating):

1. a fresh topic prefix ``lt-<run>-d<round>w<workers>`` (so a fresh consumer group) and fresh buckets;
2. ``--count`` submissions are appended to that prefix's submissions topic *before* the consumer starts, as the
   ingest API writes them (:func:`sealed_submission_record`: the registration parsed and normalised, sealed with
   the applicant's data key in ``intake.envelope``'s version 2, the keyed NIK hash as key, acks=all through
   ``intake.kafka.running_sink``). Every phase
   gets the same applicants and the same photos in the same order (``--seed``), so each drains the same work:
   card detection in the pool, images and status written to MinIO, outcome published;
3. one ``intake consume`` with ``INTAKE_POOL_WORKERS=<workers>`` runs until its group's committed offsets reach
   the topic's end, then is stopped;
4. the outcomes it published are read back from the results topic, and the phase's topics are deleted.

Completion signal and clock. *When to stop* is decided by the group's lag on the submissions topic reaching 0
(``loadtests.samplers.BacklogSampler``, every 0.5 s): the worker commits an offset only after the pipeline wrote
the images and the status to MinIO and published the outcome (or dead-lettered or parked the record), so lag 0
means nothing is left. *The figures* come from the outcomes on the results topic, not from that poll: one per
submission, published as the pipeline's last step, its Kafka timestamp (CreateTime) set by the consumer's
producer as it sends it. That is each photo's completion time to the millisecond, free of the sampling period and
of the commit batching (one commit per batch of ``INTAKE_CONSUMER_MAX_BATCH`` records). Distinct submission ids
are counted, so a redelivery is not counted twice; a missing outcome (dead letter, retry) shows as a shortfall.

* ``photos/s`` = (n - 1) / (last outcome - first outcome): the steady drain rate, start-up excluded;
* ``from start`` = n / (last outcome - launch of ``intake consume``): with the start-up (imports, the spawned
  pool, joining the group, the first fetch), also printed on its own.

The last line is the ratio of each worker count's rate to the first one's (the baseline, measured in the same
run; with ``--rounds`` the medians). CPU used by other processes on the machine over each phase is printed too:
on 2 shared cores it says whether a figure was taken on a quiet box.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import statistics
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka.structs import ConsumerRecord

from consumers.pipeline import Outcome
from ingest import records
from ingest.tokens import new_submission_id
from intake.crypto import KeyStore, parse_keks
from intake.kafka import read_topic, running_sink
from intake.settings import Settings, load_settings
from intake.storage import build_store
from intake.topics import topic_names
from loadtests import bench
from loadtests.payloads import PHOTOS_PER_CLASS, fresh_registration, parse_classes, photo_set, pick_class
from loadtests.procs import REPO, python, tree_cpu_s
from loadtests.samplers import BacklogSampler
from processors.registration import Registration, parse_registration
from processors.waves import Wave

CLIENT_ID = "load"
"""The API client the records say they came from (the bench's own key, ``INTAKE_CLIENT_KEYS``)."""
IN_FLIGHT = 16
"""Records being appended at once while pre-loading (the API has many requests in flight)."""


# ----------------------------------------------------------------------------------------------------- records
def submission_record(
    settings: Settings, raw_registration: dict[str, Any], photo: bytes, dek: bytes | None = None
) -> tuple[bytes, bytes]:
    """(key, value) of the submissions record the ingest API appends for this upload (``ingest.records``): the
    registration validated and normalised for the configured wave, a random submission id, the keyed NIK hash as
    the key, sealed with ``dek`` (plaintext without). Raises ``processors.reasons.Rejected`` for a registration the
    API would refuse."""
    registration = _parsed(settings, raw_registration)
    return _record(settings, registration, photo, dek)


async def sealed_submission_record(
    settings: Settings, raw_registration: dict[str, Any], photo: bytes, keys: KeyStore
) -> tuple[bytes, bytes]:
    """:func:`submission_record` sealed as the API seals it, with the applicant's data key from ``keys`` (created
    there on first use)."""
    registration = _parsed(settings, raw_registration)
    dek = await keys.get_or_create(records.applicant_of(settings, registration))
    return _record(settings, registration, photo, dek)


def _parsed(settings: Settings, raw_registration: dict[str, Any]) -> Registration:
    w = settings.wave
    return parse_registration(raw_registration, on=Wave(w.number, w.opens_at, w.closes_at, w.quota).opening_date)


def _record(settings: Settings, registration: Registration, photo: bytes, dek: bytes | None) -> tuple[bytes, bytes]:
    submission_id = new_submission_id(settings.security.status_token_key.encode(), CLIENT_ID, None)
    digest, value = records.submission_record(
        settings,
        registration,
        photo,
        submission_id=submission_id,
        client_id=CLIENT_ID,
        received_at=datetime.now(UTC),
        dek=dek,
    )
    return digest.encode(), value


def uploads(spec: str, count: int, seed: int, wave: int) -> list[tuple[dict[str, Any], str, int]]:
    """``count`` uploads as (raw registration, size class, photo index), the same for the same arguments."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        label = pick_class(rng, spec)
        out.append((fresh_registration(rng, wave), label, rng.randrange(PHOTOS_PER_CLASS)))
    return out


async def preload(settings: Settings, spec: str, count: int, seed: int) -> int:
    """Append ``count`` submissions (see :func:`uploads`) to the submissions topic; returns the bytes appended."""
    photos = photo_set(parse_classes(spec))
    topic = topic_names(settings).submissions
    gate = asyncio.Semaphore(IN_FLIGHT)
    appended = 0
    async with contextlib.AsyncExitStack() as resources:
        store = build_store(settings)  # the applicants' data keys: records are sealed as the API seals them
        resources.callback(store.close)
        await store.ensure_buckets([settings.s3.bucket_keys])
        keys = KeyStore(store, settings.s3.bucket_keys, parse_keks(settings.security.data_keks))
        sink = await resources.enter_async_context(running_sink(settings))
        deadline = time.monotonic() + 60
        while not sink.ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kafka at {settings.kafka.bootstrap} did not answer within 60 s")
            await asyncio.sleep(0.1)

        async def one(raw: dict[str, Any], label: str, index: int) -> None:
            nonlocal appended
            async with gate:  # records are built here, not all at once: a 3 MB photo each
                photo = photos[label][index % len(photos[label])]
                key, value = await sealed_submission_record(settings, raw, photo, keys)
                await sink.send(topic, key, value)
                appended += len(value)

        await asyncio.gather(*(one(*u) for u in uploads(spec, count, seed, settings.wave.number)))
    return appended


# ----------------------------------------------------------------------------------------------------- figures
@dataclass(frozen=True)
class Drain:
    """One phase: distinct outcomes, first and last outcome times and the consumer's launch (epoch s)."""

    workers: int
    photos: int
    first: float
    last: float
    launched: float
    states: dict[str, int] = field(default_factory=dict)
    cpu_s: float = float("nan")
    """CPU-seconds of the consumer and its image pool from the first outcome to the last (psutil, sampled with
    the backlog and interpolated), when measured: the steady cost of ``photos - 1`` photos, start-up excluded."""

    @property
    def per_s(self) -> float:
        """Steady rate: (n - 1) completions between the first outcome and the last."""
        span = self.last - self.first
        return (self.photos - 1) / span if self.photos > 1 and span > 0 else float("nan")

    @property
    def from_start_per_s(self) -> float:
        span = self.last - self.launched
        return self.photos / span if self.photos and span > 0 else float("nan")

    @property
    def start_up_s(self) -> float:
        return self.first - self.launched if self.photos else float("nan")


def parse_outcome(value: bytes | None) -> Outcome:
    """An outcome record of the results topic (``consumers.pipeline.Pipeline._publish``)."""
    body = json.loads(value or b"{}")
    return Outcome(str(body["submission_id"]), str(body["state"]), body.get("reason"))


def drain_figures(workers: int, launched: float, published: Iterable[tuple[Outcome, float]]) -> Drain:
    """The phase's figures from (outcome, timestamp in s) pairs; a submission published twice (a redelivery)
    counts once, at its first publication."""
    first_seen: dict[str, tuple[Outcome, float]] = {}
    for outcome, at in sorted(published, key=lambda p: p[1]):
        first_seen.setdefault(outcome.submission_id, (outcome, at))
    times = [at for _, at in first_seen.values()]
    states: dict[str, int] = {}
    for outcome, _ in first_seen.values():
        label = outcome.state if outcome.reason is None else f"{outcome.state}:{outcome.reason}"
        states[label] = states.get(label, 0) + 1
    nan = float("nan")
    return Drain(workers, len(times), min(times, default=nan), max(times, default=nan), launched, states)


def cpu_at(samples: list[tuple[float, float]], at: float) -> float:
    """CPU-seconds used by ``at`` (epoch s), linearly interpolated between (time, cumulative CPU-s) samples;
    nan without samples around it."""
    for (t0, c0), (t1, c1) in itertools.pairwise(samples):
        if t0 <= at <= t1:
            return c0 + (c1 - c0) * ((at - t0) / (t1 - t0) if t1 > t0 else 0.0)
    return float("nan")


def ratios(drains: list[Drain]) -> dict[int, tuple[float, float]]:
    """Per worker count, (steady, from start) rate over the first worker count's (medians over rounds)."""
    medians: dict[int, tuple[float, float]] = {}
    for w in dict.fromkeys(d.workers for d in drains):
        mine = [d for d in drains if d.workers == w]
        medians[w] = (statistics.median(d.per_s for d in mine), statistics.median(d.from_start_per_s for d in mine))
    if not medians:
        return {}
    base = next(iter(medians.values()))
    return {w: (steady / base[0], start / base[1]) for w, (steady, start) in medians.items()}


def worker_counts(text: str) -> list[int]:
    """``--workers``: a comma-separated list of pool sizes, each >= 1."""
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("worker counts must be >= 1")
    return counts


def phase_line(d: Drain, count: int, spec: str, others_cores: float) -> str:
    """One printed line per phase."""
    short = f" ({count - d.photos} without an outcome)" if d.photos < count else ""
    states = ", ".join(f"{n} {s}" for s, n in sorted(d.states.items()))
    return (
        f"{d.workers} worker(s): {d.photos}/{count} photos ({spec}){short} in {d.last - d.first:.1f} s: "
        f"{d.per_s:.2f} photos/s; from consumer start {d.from_start_per_s:.2f} photos/s "
        f"(start-up {d.start_up_s:.1f} s); {states}; other processes {others_cores:.2f} cores"
    )


# ------------------------------------------------------------------------------------------------------ driver
class DrainBench:
    """The phases on the private stack; stack, processes, topics, buckets and CPU sampling are ``bench.Bench``'s."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.b = bench.Bench(
            bench.parse_args(
                ["--shape", "none", "--skip-ceilings", "--out", str(args.out), "--log-level", args.log_level]
            )
        )
        self.drains: list[Drain] = []
        self.appended: list[int] = []
        """Bytes pre-loaded per phase (the records' values), in phase order."""

    def consumer_env(self, prefix: str, workers: int) -> dict[str, str]:
        return {
            **self.b.api_env(prefix, 1),
            "INTAKE_POOL_WORKERS": str(workers),
            "INTAKE_BUCKET_PHOTOS": f"{prefix}-ktp",  # fresh claims: each phase does the same work
            "INTAKE_BUCKET_STATUS": f"{prefix}-status",
            "INTAKE_BUCKET_REGISTRATIONS": f"{prefix}-registrations",
        }

    def drain(self, workers: int, round_no: int) -> Drain:
        args, b = self.args, self.b
        prefix = f"{b.run_id}-d{round_no}w{workers}"
        env = self.consumer_env(prefix, workers)
        settings = load_settings(env)
        names = topic_names(settings)
        b.ensure_topics(prefix)
        t = time.time()
        size = asyncio.run(preload(settings, args.photos, args.count, args.seed))
        self.appended.append(size)
        b.phase(f"{workers} worker(s): pre-load {args.count} records, {size / 1e6:.0f} MB", t, time.time())
        sampler = BacklogSampler(
            b.stack.bootstrap, names.submissions, settings.kafka.group_id, settings.kafka.partitions, interval_s=0.5
        )
        sampler.start()
        launched = time.time()
        child = b.procs.start(f"{prefix}-consume", [python(), "-m", "intake.cli", "consume"], env)
        cpu: list[tuple[float, float]] = []
        try:
            while True:
                last = sampler.latest()
                if last is not None and last.end_offsets >= args.count and last.backlog == 0:
                    break
                if child.popen.poll() is not None:
                    b.notes.append(f"{workers} worker(s): the consumer exited (see logs/{prefix}-consume.log)")
                    break
                if time.time() - launched > args.timeout:
                    b.notes.append(f"{workers} worker(s): not drained within {args.timeout:.0f} s")
                    break
                cpu.append((time.time(), tree_cpu_s(child.popen.pid)))
                time.sleep(0.2)
            cpu.append((time.time(), tree_cpu_s(child.popen.pid)))
        finally:
            b.procs.stop(child)
            sampler.stop()
        if sampler.error:
            b.notes.append(f"{workers} worker(s): backlog sampler: {sampler.error}")
        published = [
            (parse_outcome(r.value), r.timestamp / 1000) for r in asyncio.run(_records(settings, names.results))
        ]
        dead = asyncio.run(_records(settings, names.dead_letter))
        if dead:
            b.notes.append(f"{workers} worker(s): {len(dead)} dead letter(s)")
        b.delete_topics([n for n in b.topics if n.startswith(prefix + ".")])
        d = drain_figures(workers, launched, published)
        d = replace(d, cpu_s=cpu_at(cpu, d.last) - cpu_at(cpu, d.first))
        if d.photos:
            b.phase(f"{workers} worker(s): drain", d.first, d.last)
        return d

    def run(self) -> None:
        args, b = self.args, self.b
        b.cpu.start()
        try:
            photo_set(parse_classes(args.photos))
            bench._log("starting the private stack")
            b.stack.start()
            b.service_env = b.stack.service_env()
            b.purge_stale_topics()
            b.purge_buckets(only_this_run=False)
            for round_no in range(1, args.rounds + 1):
                order = args.workers if round_no % 2 else list(reversed(args.workers))
                for workers in order:
                    d = self.drain(workers, round_no)
                    self.drains.append(d)
                    print(phase_line(d, args.count, args.photos, b.cpu.mean_between(d.first, d.last)[1]), flush=True)
        finally:
            b.clean_up(keep_stack=args.keep_stack)
        base = self.drains[0].workers if self.drains else 0
        for workers, (steady, start) in ratios(self.drains).items():
            if workers != base:
                print(f"ratio {workers}/{base} workers: {steady:.2f} (photos/s), {start:.2f} (from consumer start)")
        for note in b.notes:
            print(f"note: {note}")
        (args.out / "results.json").write_text(
            json.dumps(
                {"command": " ".join(sys.argv), "drains": [asdict(d) for d in self.drains], "notes": b.notes},
                indent=2,
            )
        )


async def _records(settings: Settings, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    return [record async for record in read_topic(settings, topic)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", default="3m", help="a size class (3m = 12 MP, the default) or mix")
    p.add_argument("--count", type=int, default=300, help="submissions drained per phase (300)")
    p.add_argument("--workers", type=worker_counts, default=[1, 2], help="pool sizes, the first is the baseline")
    p.add_argument("--rounds", type=int, default=1, help="repeat the phases, alternating their order (1)")
    p.add_argument("--timeout", type=float, default=240.0, help="longest drain of one phase, in s (240)")
    p.add_argument("--seed", type=int, default=1, help="applicants and photos (the same in every phase)")
    p.add_argument("--out", type=Path, default=None, help="folder for logs and results.json (reports/drain-<date>)")
    p.add_argument("--keep-stack", action="store_true", help="leave the private stack running")
    p.add_argument("--log-level", default="WARNING", help="INTAKE_LOG_LEVEL of the consumer")
    args = p.parse_args(argv)
    try:
        parse_classes(args.photos)
    except ValueError as exc:
        p.error(str(exc))
    if args.count < 2 or args.rounds < 1:
        p.error("--count must be >= 2 and --rounds >= 1")
    if args.out is None:
        args.out = REPO / "reports" / f"drain-{datetime.now():%Y%m%d-%H%M%S}"
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    bench.interrupt_on_sigterm()
    DrainBench(args).run()


if __name__ == "__main__":
    main()
