"""Overload at fixed offered rates: each admission setting of the API against the others, same rates, same run.

``loadtests.bench`` offers 250 % and 10× of a sustainable rate it measures first (a closed loop), so two runs, or
two settings, are never offered the same load: the closed loop itself is refused more or less depending on the
setting under test. Here the offered rates are given, and every variant (the API with some ``INTAKE_*``
settings) is offered each of them, in alternating rounds, by the Go open-loop generator (:mod:`loadtests.gogen`,
a connection per upload as each applicant's browser opens its own; with ``--expect`` clients that wait for
``100 Continue``). For each variant and rate it prints what the issue's targets are about: accepted/s, the
accepted and the shed answers' p50/p99, errors, the API's CPU per accepted upload and per answer, and the
generator's cores and lateness (a late generator did not offer the rate).

    .venv/bin/python -m loadtests.bench_overload --rates 250,650,2600 --duration 8 --rounds 2 \\
        --variant default: --variant in-flight-16:INTAKE_MAX_IN_FLIGHT=16 --variant lag-off:INTAKE_MAX_LOOP_LAG_MS=0
    .venv/bin/python -m loadtests.bench_overload --spike 2600 --spike-duration 20 --variant default: \\
        --variant lag-off:INTAKE_MAX_LOOP_LAG_MS=0

``--spike PEAK`` offers a wave's opening instead of (or after) the fixed rates: idle, a steep ramp to PEAK
uploads per second, a hold and a decay (:func:`loadtests.shapes.arrivals`), and reports it by the second, so a
second in which answers take seconds shows. Open loop: a refused upload is not retried (locust's spike in
``loadtests.bench`` retries; its users share a core with everything else).

With ``--consumers N`` each variant's API runs beside N ``intake consume`` processes with the same settings, as on
one machine at a wave's opening: the API's records keep their image pools busy from the first measured second
(their capacity is a fraction of the API's), so the figures show what the photo work's CPU does to the front.

A variant is ``NAME:INTAKE_X=V[,INTAKE_Y=W...]`` (``NAME:`` alone: the defaults). With ``--before DIR`` (a
checkout of an earlier commit, as ``bench_cpu --before``) every variant also runs as ``NAME-before``: that
commit's ``intake serve`` with the same settings, in the same alternating rounds. Runs on the benchmark's
private stack with its own topics and buckets; about (rates × (duration + 3 s) + 8 s) per variant and round.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from intake.topics import topic_names
from loadtests import bench, outcomes
from loadtests.bench_cpu import tree_cpu_s
from loadtests.procs import REPO, Child
from loadtests.samplers import BacklogSampler

WARM_RATE = 20.0
"""Uploads per second of the warm-up after each start (connections, metadata, first batches; not measured)."""
CONSUMER_START_S = 90.0
"""Longest wait for ``--consumers`` to commit their first records (their pools spawn and import OpenCV)."""


def parse_variant(spec: str) -> tuple[str, dict[str, str]]:
    """``NAME:INTAKE_X=V,...`` -> (name, settings). Raises ValueError for anything else."""
    name, sep, rest = spec.partition(":")
    if not sep or not name:
        raise ValueError(f"--variant {spec!r}: expected NAME:INTAKE_X=V[,...] or NAME:")
    env: dict[str, str] = {}
    for kv in filter(None, rest.split(",")):
        key, eq, value = kv.partition("=")
        if not eq or not key.startswith("INTAKE_"):
            raise ValueError(f"--variant {spec!r}: {kv!r} is not INTAKE_X=V")
        env[key] = value
    return name, env


class OverloadBench(bench.Bench):
    """Reuses the load benchmark's stack, processes and generator."""

    extra_env: dict[str, str] = {}  # noqa: RUF012 - replaced per variant

    def api_env(self, prefix: str, port: int) -> dict[str, str]:
        return {**super().api_env(prefix, port), **self.extra_env}

    def variant(self, name: str, env: dict[str, str], round_no: int) -> list[dict[str, Any]]:
        """Start the API with ``env``, warm it, offer each rate in turn; one row per rate."""
        a = self.args
        self.extra_env = env
        self.tree = a.before if name.endswith("-before") and a.before is not None else None
        prefix = f"{self.run_id}-o{round_no}-{len(self.topics)}"
        self.ensure_topics(prefix)
        url, children = self.start_api(f"r{round_no}-{name}", prefix)
        consumers: list[Child] = []
        rows = []
        try:
            consumers = self.start_consumers(f"r{round_no}-{name}", prefix, a.consumers)
            self.open_loop(f"r{round_no}-{name}-warm", url=url, rate=WARM_RATE, duration_s=2, size=a.photos,
                           out=self.out / f"r{round_no}-{name}-warm.csv")  # fmt: skip
            if consumers:
                self.wait_for_commits(prefix, consumers)
            pids = [c.popen.pid for c in children]
            offered = [(rate, False) for rate in a.rates] + ([(a.spike, True)] if a.spike else [])
            for rate, spike in offered:
                time.sleep(a.pause)  # the previous rate's stragglers and closes
                label = f"spike{rate:g}" if spike else f"{rate:g}"
                csv_path = self.out / f"r{round_no}-{name}-{label}.csv"
                srv0, t0 = tree_cpu_s(pids), time.time()
                ol = self.open_loop(f"r{round_no}-{name}-{label}", url=url, rate=rate, size=a.photos, out=csv_path,
                                    duration_s=a.spike_duration if spike else a.duration, spike=spike)  # fmt: skip
                srv1, t1 = tree_cpu_s(pids), time.time()
                cpu = self.cpu_per_request(t0, t1, max(int(ol["summary"]["accepted"]), 1))
                s = ol["summary"]
                answered = max(int(s["accepted"]) + int(s["shed"]), 1)
                row = {
                    "variant": name,
                    "round": round_no,
                    "rate": rate,
                    "spike": spike,
                    "accepted_per_s": s["accepted_per_s"],
                    "shed": s["shed"],
                    "errors": s["errors"],
                    "p50_ms": s["p50_ms"],
                    "p99_ms": s["p99_ms"],
                    "shed_p50_ms": s["shed_p50_ms"],
                    "shed_p99_ms": s["shed_p99_ms"],
                    "api_cores": (srv1 - srv0) / max(t1 - t0, 1e-9),
                    "api_ms_per_accepted": (srv1 - srv0) / max(int(s["accepted"]), 1) * 1000,
                    "api_ms_per_answer": (srv1 - srv0) / answered * 1000,
                    "generator_cores": cpu["cores"].get("generator", float("nan")),
                    "consumer_cores": cpu["cores"].get("consumer", 0.0),
                    "others_cores": cpu["others_cores"],
                    "late_p99_ms": ol["client_late_p99_ms"],
                    "not_sent": ol["planned"] - ol["launched"],
                    "by_outcome": s["by_outcome"],
                    "per_second": per_second(outcomes.read_all(csv_path)) if spike else [],
                }
                rows.append(row)
                bench._log(
                    f"{name} @ {'spike to ' if spike else ''}{rate:g}/s round {round_no}: accepted "
                    f"{row['accepted_per_s']:.1f}/s p99 "
                    f"{row['p99_ms']:.0f} ms, shed {row['shed']} p99 {row['shed_p99_ms']:.0f} ms, errors "
                    f"{row['errors']}, API {row['api_cores']:.2f} cores, generator late p99 {row['late_p99_ms']:.0f} ms"
                )
        finally:
            self.stop(consumers)
            self.stop(children)
            self.delete_topics([t for t in self.topics if t.startswith(prefix + ".")])
        return rows

    def wait_for_commits(self, prefix: str, consumers: list[Child]) -> None:
        """Block until the consumer group of ``prefix`` has committed a record of the warm-up (its members run and
        their pools work). Raises RuntimeError naming the logs after :data:`CONSUMER_START_S`, or when one of the
        ``consumers`` exits."""
        settings = self.settings(prefix)
        names = topic_names(settings)
        sampler = BacklogSampler(
            self.stack.bootstrap, names.submissions, settings.kafka.group_id, settings.kafka.partitions, 0.5
        )
        sampler.start()
        try:
            deadline = time.monotonic() + CONSUMER_START_S
            while time.monotonic() < deadline:
                row = sampler.latest()
                if row is not None and row.committed > 0:
                    return
                if any(c.popen.poll() is not None for c in consumers):
                    break
                time.sleep(0.5)
        finally:
            sampler.stop()
        raise RuntimeError(f"the consumers of {prefix} committed nothing (see {self.procs.log_dir})")

    def run_overload(self) -> Path:
        a = self.args
        rows = self.in_alternating_rounds(a.variants, a.rounds, lambda v, r: self.variant(v[0], v[1], r), a.keep_stack)
        text = render(rows, a)
        (self.out / "overload.json").write_text(json.dumps({"rows": rows}, indent=2))
        (self.out / "overload.md").write_text(text)
        print(text)
        return self.out / "overload.md"


_FIGURES = (
    ("accepted_per_s", "accepted/s", "{:.1f}"),
    ("p50_ms", "accepted p50 ms", "{:.0f}"),
    ("p99_ms", "accepted p99 ms", "{:.0f}"),
    ("shed_p50_ms", "shed p50 ms", "{:.0f}"),
    ("shed_p99_ms", "shed p99 ms", "{:.0f}"),
    ("errors", "errors", "{:.0f}"),
    ("api_cores", "API cores", "{:.2f}"),
    ("api_ms_per_answer", "API ms/answer", "{:.2f}"),
    ("generator_cores", "generator cores", "{:.2f}"),
    ("consumer_cores", "consumer cores", "{:.2f}"),
    ("late_p99_ms", "generator late p99 ms", "{:.0f}"),
    ("not_sent", "not sent", "{:.0f}"),
)


def per_second(rows: list[outcomes.Outcome]) -> list[dict[str, float]]:
    """By the second the requests were due: how many, accepted, shed, errors, and the accepted and shed p99."""
    if not rows:
        return []
    t0 = min(r.start for r in rows)
    by: dict[int, list[outcomes.Outcome]] = {}
    for r in rows:
        by.setdefault(int(r.start - t0), []).append(r)
    out = []
    for second in sorted(by):
        s = outcomes.summarise(by[second])
        out.append({"second": second, "offered": s.requests, "accepted": s.accepted, "shed": s.shed,
                    "errors": s.errors, "p99_ms": s.p99_ms, "shed_p99_ms": s.shed_p99_ms})  # fmt: skip
    return out


def _key(row: dict[str, Any]) -> tuple[str, float, bool]:
    return row["variant"], row["rate"], bool(row.get("spike"))


def summarise(rows: list[dict[str, Any]]) -> dict[tuple[str, float, bool], dict[str, float]]:
    """Per (variant, rate, spike): the median over rounds of each figure."""
    keys = sorted({_key(r) for r in rows}, key=lambda k: (k[2], k[1], k[0]))
    return {k: {f: statistics.median(float(r[f]) for r in rows if _key(r) == k) for f, _, _ in _FIGURES} for k in keys}


def render(rows: list[dict[str, Any]], a: argparse.Namespace) -> str:
    """The report: one row per offered rate and variant (medians over rounds)."""
    client = "clients that send `Expect: 100-continue`" if a.expect else "browser-like clients (no `Expect`)"
    lines = [
        f"Overload at fixed offered rates, {a.photos} photos, {a.duration:g} s per rate, {a.rounds} round(s) "
        f"(medians), {a.api_procs} API process(es)"
        + (f" beside {a.consumers} consumer(s)" if a.consumers else "")
        + f", the Go open-loop generator, a connection per upload, {client}. "
        "Variants: "
        + "; ".join(
            f"`{name}` {' '.join(f'{k}={v}' for k, v in env.items()) or '(defaults)'}" for name, env in a.variants
        ),
        "",
        "| offered/s | variant | " + " | ".join(title for _, title, _ in _FIGURES) + " |",
        "| ---: | --- | " + " | ".join("---:" for _ in _FIGURES) + " |",
    ]
    for (name, rate, spike), figures in summarise(rows).items():
        cells = " | ".join(fmt.format(figures[f]) for f, _, fmt in _FIGURES)
        lines.append(f"| {'spike to ' if spike else ''}{rate:g} | {name} | {cells} |")
    for r in rows:
        if r.get("per_second") and r["round"] == 0:
            lines += [
                "",
                f"`{r['variant']}`, spike to {r['rate']:g}/s over {a.spike_duration:g} s (round 0), by the second due:",
                "",
                "| s | offered | accepted | shed | errors | accepted p99 ms | shed p99 ms |",
                "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
                *(
                    f"| {x['second']} | {x['offered']} | {x['accepted']} | {x['shed']} | {x['errors']} | "
                    f"{x['p99_ms']:.0f} | {x['shed_p99_ms']:.0f} |"
                    for x in r["per_second"]
                ),
            ]
    lines += ["", "command: .venv/bin/python -m loadtests.bench_overload " + " ".join(a.argv)]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", default="", help="offered uploads per second, comma-separated")
    p.add_argument(
        "--spike",
        type=float,
        default=None,
        metavar="PEAK",
        help="also a wave's opening: arrivals ramp steeply to PEAK/s, hold and decay (loadtests.shapes)",
    )
    p.add_argument("--spike-duration", type=float, default=20.0, help="seconds of the spike's arrivals")
    p.add_argument("--variant", action="append", default=[], metavar="NAME:INTAKE_X=V,...", help="(repeatable)")
    p.add_argument("--duration", type=float, default=8.0, help="seconds of arrivals per rate")
    p.add_argument("--pause", type=float, default=2.0, help="seconds between two rates")
    p.add_argument("--rounds", type=int, default=1, help="rounds, alternating the order of the variants")
    p.add_argument("--photos", default="500k", help="photo size class (or mix)")
    p.add_argument("--expect", action="store_true", help="clients send Expect: 100-continue")
    p.add_argument("--api-procs", type=int, default=1, help="API processes of each variant (one port, SO_REUSEPORT)")
    p.add_argument(
        "--consumers", type=int, default=0, help="intake consume processes beside each variant's API (its settings)"
    )
    p.add_argument("--out", type=Path, default=None, help="folder for overload.md, overload.json, CSVs and logs")
    p.add_argument("--keep-stack", action="store_true", help="leave the private stack running")
    p.add_argument(
        "--before", type=Path, default=None, help="checkout of an earlier commit: each variant also as NAME-before"
    )
    args = p.parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    try:
        args.rates = [float(r) for r in args.rates.split(",") if r]
        args.variants = [parse_variant(v) for v in args.variant or ["default:"]]
        if args.before is not None:
            args.variants = [w for name, env in args.variants for w in ((f"{name}-before", env), (name, env))]
    except ValueError as exc:
        p.error(str(exc))
    if not args.rates and not args.spike:
        p.error("give --rates, --spike or both")
    if len({name for name, _ in args.variants}) != len(args.variants):
        p.error("variant names must differ")
    if args.out is None:
        args.out = REPO / "reports" / f"bench-overload-{time.strftime('%Y%m%d-%H%M%S')}"
    return bench.fixed_load(args, generator="go", api_env=[], consumers=args.consumers)


def main(argv: list[str] | None = None) -> None:
    bench.start_fixed_load(OverloadBench, parse_args(argv)).run_overload()


if __name__ == "__main__":
    main()
