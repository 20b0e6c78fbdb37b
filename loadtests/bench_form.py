"""CPU per upload read: the API's two reading paths on the same bodies, in the same process, alternating.

The bodies carry one photo of the class, each with a fresh registration.

* ``whole``: a body with a Content-Length (what browsers and HTTP libraries send) is read whole and split in memory
  (:mod:`ingest.form_split`);
* ``streamed``: the same body without one (chunked) is read by aiohttp's multipart reader as it arrives, the way
  every upload was read before the splitter.

Both run :func:`ingest.upload.read_upload` itself on a request whose payload stream is fed the body in 256 KiB
pieces (as asyncio's reads deliver it), so the figure is the reading's CPU alone: no socket, no HTTP parsing, no
validation. Prints µs per read for each path, per round and the median, and whole ÷ streamed.

    .venv/bin/python -m loadtests.bench_form [--photos 500k] [--reads 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from unittest import mock

from aiohttp import StreamReader, web
from aiohttp.test_utils import make_mocked_request

from ingest.upload import FromMemory, read_upload
from intake.heap import tune_heap
from intake.settings import Limits
from loadtests.payloads import BodyFactory, fresh_registration, photo_set

PIECE = 256 * 1024
"""Bytes per piece fed to the payload stream: asyncio's read size once an upload is admitted."""


def _stream(body: bytes) -> StreamReader:
    """A payload stream holding ``body`` in 256 KiB pieces, then its end."""
    loop = asyncio.get_running_loop()
    stream = StreamReader(FromMemory(loop), 2**16, loop=loop)
    for at in range(0, len(body), PIECE):
        stream.feed_data(body[at : at + PIECE])
    stream.feed_eof()
    return stream


def _request(body: bytes, content_type: str, limits: Limits, *, declared: bool) -> web.Request:
    """A request for ``body`` (declared length: the whole-body path; else the streamed one). Making one costs far
    more than reading it (aiohttp's mocked request is built of mocks), so a round makes one and gives it a fresh
    payload stream for each read (:func:`read_once`)."""
    headers = {"Content-Type": content_type, **({"Content-Length": str(len(body))} if declared else {})}
    protocol = mock.Mock(max_field_size=8190, max_headers=128)
    return make_mocked_request(
        "POST", "/v1/registrations", headers=headers, payload=_stream(body), protocol=protocol,
        client_max_size=limits.max_body_bytes,
    )  # fmt: skip


async def read_once(request: web.Request, body: bytes, limits: Limits) -> int:
    """Read ``body`` through ``request`` with :func:`read_upload`; answers the photo's size."""
    request._payload = _stream(body)  # a fresh body for the same request (see _request) ...
    request._cache.pop("content", None)  # ... which ``request.content`` (cached) must give
    upload = await read_upload(request, limits, 30.0)
    return len(upload.photo)


async def _round(bodies: list[bytes], content_type: str, limits: Limits, declared: bool) -> float:
    request = _request(bodies[0], content_type, limits, declared=declared)
    start = time.process_time()
    for body in bodies:
        await read_once(request, body, limits)
    return (time.process_time() - start) / len(bodies) * 1e6


async def run(photos: str, reads: int, rounds: int) -> dict[str, list[float]]:
    factory = BodyFactory()
    rng = random.Random(14)
    pool = photo_set([photos])[photos]
    bodies = [factory.body(fresh_registration(rng), pool[0]) for _ in range(min(reads, 20))]
    bodies = (bodies * (reads // len(bodies) + 1))[:reads]
    limits = Limits()
    for declared in (True, False):  # both paths read the photo (the test suite checks they answer alike)
        request = _request(bodies[0], factory.content_type, limits, declared=declared)
        assert await read_once(request, bodies[0], limits) == len(pool[0])
    results: dict[str, list[float]] = {"whole": [], "streamed": []}
    for r in range(rounds):
        order = (True, False) if r % 2 == 0 else (False, True)
        for declared in order:
            results["whole" if declared else "streamed"].append(
                await _round(bodies, factory.content_type, limits, declared)
            )
    return results


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", default="500k", help="photo size class")
    p.add_argument("--reads", type=int, default=300, help="reads per path and round")
    p.add_argument("--rounds", type=int, default=5, help="rounds, alternating which path goes first")
    args = p.parse_args(argv)
    tune_heap()  # as the API's process
    results = asyncio.run(run(args.photos, args.reads, args.rounds))
    for name, figures in results.items():
        print(f"{name:9s} µs CPU per read: " + " ".join(f"{f:.0f}" for f in figures))
    whole, streamed = statistics.median(results["whole"]), statistics.median(results["streamed"])
    print(f"median: whole {whole:.0f} µs, streamed {streamed:.0f} µs, whole ÷ streamed {whole / streamed:.2f}")


if __name__ == "__main__":
    main()
