"""Open-loop load: requests launched on a fixed schedule whatever the server does, so tail latency is honest.

A closed loop (locust's users) sends the next request only after the previous answer, so when the server slows
down the offered load drops with it and the slow period is sampled less (coordinated omission). Here request
``i`` is due at ``start + i / rate``; it is launched at that time even if earlier ones are still waiting, and its
latency is measured from the time it was *due*, so any delay of the client itself is counted too.

Bounded: at most ``max_requests`` requests, ``max_outstanding`` at once (a request due while that many are
open is not sent and counted as ``client_saturated``), each with a timeout, the whole run within
``duration + timeout``. Loopback only: the URL must point to 127.0.0.1 or localhost.

CLI: ``.venv/bin/python -m loadtests.openloop --url http://127.0.0.1:8080 --rate 100 --duration 10
--photos 500k --out reports/ol.csv``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from intake.auth import ClientKey
from intake.heap import tune_heap
from loadtests import outcomes
from loadtests.payloads import (
    BodyFactory,
    fresh_registration,
    idempotency_key,
    parse_classes,
    photo_set,
    pick_class,
    synthetic_address,
)
from loadtests.shapes import SpikeSchedule, arrivals
from loadtests.signing import load_key, upload_headers

RequestFactory = Callable[[int], tuple[bytes, dict[str, str], str]]
"""``i -> (body, headers, size class)`` for the ``i``-th request."""


def schedule(rate: float, duration_s: float, max_requests: int) -> list[float]:
    """Offsets (seconds from the start) at which requests are due: evenly spaced at ``rate`` per second."""
    if rate <= 0 or duration_s <= 0:
        return []
    n = min(max_requests, math.floor(rate * duration_s + 1e-9))
    return [i / rate for i in range(n)]


def check_loopback(url: str) -> None:
    """Refuse any target that is not this machine."""
    host = urlsplit(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"open-loop traffic goes to loopback only, not {host!r}")


@dataclass(frozen=True)
class OpenLoopResult:
    rows: list[outcomes.Outcome]
    planned: int
    launched: int
    late_ms_p99: float
    """How late the client launched requests (its own scheduling delay), 99th percentile."""


async def run_open_loop(
    url: str,
    offsets: list[float],
    make_request: RequestFactory,
    *,
    timeout_s: float = 30.0,
    max_outstanding: int = 2000,
    expect: bool = False,
) -> OpenLoopResult:
    """POST to ``url`` at each offset (seconds from now); returns one outcome per planned request. With ``expect``
    each request sends ``Expect: 100-continue`` and its body only after the go-ahead (a refused one never sends it),
    as curl, Go, Java and .NET clients do; browsers do not."""
    check_loopback(url)
    loop = asyncio.get_running_loop()
    rows: list[outcomes.Outcome] = []
    late: list[float] = []
    tasks: set[asyncio.Task[None]] = set()
    connector = aiohttp.TCPConnector(limit=max_outstanding, limit_per_host=max_outstanding)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    launched = 0
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        t0 = loop.time() + 0.05
        wall0 = time.time() + 0.05

        async def one(due: float, body: bytes, headers: dict[str, str], label: str) -> None:
            status, payload, outcome = 0, b"", ""
            try:
                async with session.post(url, data=body, headers=headers, expect100=expect) as resp:
                    status = resp.status
                    payload = await resp.read()
            except TimeoutError:
                outcome = "client_timeout"
            except aiohttp.ClientError as exc:
                outcome = type(exc).__name__
            latency_ms = (loop.time() - (t0 + due)) * 1000.0
            rows.append(
                outcomes.Outcome(
                    start=wall0 + due,
                    latency_ms=round(latency_ms, 3),
                    kind="register",
                    status=status,
                    outcome=outcome or outcomes.classify(status, payload),
                    size_class=label,
                    bytes=len(body),
                )
            )

        for i, due in enumerate(offsets):
            delay = t0 + due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            late.append(max(0.0, (loop.time() - (t0 + due)) * 1000.0))
            body, headers, label = make_request(i)
            if len(tasks) >= max_outstanding:
                rows.append(outcomes.Outcome(wall0 + due, 0.0, "register", 0, "client_saturated", label, len(body)))
                continue
            task = asyncio.create_task(one(due, body, headers, label))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            launched += 1
        if tasks:
            await asyncio.wait(set(tasks), timeout=timeout_s + 5.0)
        for task in list(tasks):  # only if aiohttp's own timeout failed to fire
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
    return OpenLoopResult(rows, len(offsets), launched, outcomes.percentile(late, 99))


def registration_factory(photo_spec: str, seed: int | None = None, key: ClientKey | None = None) -> RequestFactory:
    """Fresh applicants with photos of ``photo_spec`` (a size class or ``mix``), one Idempotency-Key and one
    source address (``X-Forwarded-For``) each; signed with ``key`` when given (made when launched, so fresh)."""
    photos = photo_set(parse_classes(photo_spec))
    bodies = BodyFactory()
    rng = random.Random(seed)

    def make(i: int) -> tuple[bytes, dict[str, str], str]:
        label = pick_class(rng, photo_spec)
        body = bodies.body(fresh_registration(rng), rng.choice(photos[label]))
        return body, request_headers(bodies, rng, key), label

    return make


def request_headers(
    bodies: BodyFactory, rng: random.Random, key: ClientKey | None, timestamp: int | None = None
) -> dict[str, str]:
    """The headers of one upload attempt of a body from ``bodies``: its Idempotency-Key, a source address, and its
    signature by ``key`` (when given) for ``timestamp`` (default: now)."""
    idem = idempotency_key()
    return {
        "Content-Type": bodies.content_type,
        "Idempotency-Key": idem,
        "X-Forwarded-For": synthetic_address(rng),
        **(upload_headers(idem, key, timestamp) if key is not None else {}),
    }


def arguments(description: str | None) -> argparse.ArgumentParser:
    """The command line of an open-loop generator (this one and :mod:`loadtests.gogen`)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080", help="base URL (loopback only)")
    p.add_argument("--path", default="/v1/registrations")
    offered = p.add_mutually_exclusive_group(required=True)
    offered.add_argument("--rate", type=float, help="requests per second")
    offered.add_argument(
        "--spike-peak",
        type=float,
        help="instead of a fixed rate: a wave's opening over --duration s, idle, a steep ramp to this many uploads "
        "per second, a hold and a decay (loadtests.shapes.SpikeSchedule.for_duration, read as arrivals per second)",
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds of arrivals")
    p.add_argument("--max-requests", type=int, default=20_000)
    p.add_argument("--max-outstanding", type=int, default=2000)
    p.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, s")
    p.add_argument("--photos", default="500k", help="size class or mix")
    p.add_argument("--out", type=Path, required=True, help="outcomes CSV")
    p.add_argument("--expect", action="store_true", help="send Expect: 100-continue (the body after the go-ahead)")
    return p


def offsets_of(args: argparse.Namespace) -> list[float]:
    """When each request of a generator's command line is due: a fixed rate, or the spike (``--spike-peak``)."""
    if args.spike_peak is not None:
        return arrivals(SpikeSchedule.for_duration(args.duration, round(args.spike_peak)))[: args.max_requests]
    return schedule(args.rate, args.duration, args.max_requests)


def summary_line(
    args: argparse.Namespace, planned: int, launched: int, rows: list[outcomes.Outcome], late_p99: float
) -> str:
    """The line a generator prints at its end; ``loadtests.bench`` reads its ``client lateness p99``."""
    s = outcomes.summarise(rows)
    offered = f"spike to {args.spike_peak:g}/s" if args.spike_peak is not None else f"{args.rate:g}/s"
    return (
        f"open loop {offered} x {args.duration:g}s: planned {planned}, launched {launched}, "
        f"accepted {s.accepted} ({s.accepted_per_s:.1f}/s), shed {s.shed}, errors {s.errors}, "
        f"p50 {s.p50_ms:.1f} p90 {s.p90_ms:.1f} p99 {s.p99_ms:.1f} ms, shed p99 {s.shed_p99_ms:.1f} ms, "
        f"client lateness p99 {late_p99:.1f} ms"
    )


def main(argv: list[str] | None = None) -> None:
    args = arguments(__doc__).parse_args(argv)
    tune_heap()  # bodies of 0.2-5 MB per request: keep them in the heap (see loadtests/locustfile.py)
    url = args.url.rstrip("/") + args.path
    offsets = offsets_of(args)
    result = asyncio.run(
        run_open_loop(
            url,
            offsets,
            registration_factory(args.photos, key=load_key()),
            timeout_s=args.timeout,
            max_outstanding=args.max_outstanding,
            expect=args.expect,
        )
    )
    outcomes.write(args.out, result.rows)
    print(summary_line(args, result.planned, result.launched, result.rows, result.late_ms_p99))


if __name__ == "__main__":
    main()
