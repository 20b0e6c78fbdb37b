"""The ceiling of the HTTP layer: a bare aiohttp handler that reads the whole body and answers 202.

No multipart parsing, no validation, no Kafka: what one aiohttp process on this machine can take in. It answers
the same shape of JSON as the real API so the same load generators drive it unchanged. Run with
``.venv/bin/python -m loadtests.baseline_app --port 18181`` (127.0.0.1 only; SO_REUSEPORT like ``intake serve``).

With ``--produce`` it also appends each body, whole, to the submissions topic through the service's own producer
(:func:`intake.kafka.running_sink`, settings from the environment as for ``intake serve``) and answers 202 after
Kafka's acknowledgement (503 when there is none): the floor of any front that forwards what it reads to Kafka,
before parsing, validation, sealing or a data key.

With ``--refuse`` it refuses every upload instead: ``503 overloaded`` with Retry-After, a constant body, no body
byte read, the connection closed at once (no lingering read): the floor of the API's refusal
(``loadtests.bench_cpu --shed``).
"""

from __future__ import annotations

import argparse
import json
import secrets
from collections.abc import AsyncIterator

from aiohttp import web

from intake.heap import tune_heap
from intake.kafka import QueueUnavailable, RecordSink, running_sink
from intake.settings import load_settings
from intake.topics import topic_names

_CHUNK = 64 * 1024
SINK = web.AppKey("sink", RecordSink)
TOPIC = web.AppKey("topic", str)


async def accept(request: web.Request) -> web.Response:
    """Read the body to its end (in chunks, as the real upload reader does), append it to Kafka when the app has a
    sink (``--produce``), then answer 202."""
    size = 0
    chunks: list[bytes] = []
    sink = request.app.get(SINK)
    while True:
        chunk = await request.content.read(_CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if sink is not None:
            chunks.append(chunk)
    sid = secrets.token_hex(16)
    if sink is not None:
        try:
            await sink.send(request.app[TOPIC], sid.encode(), b"".join(chunks))
        except QueueUnavailable:
            return web.Response(status=503, headers={"Retry-After": "1"})
    body = {
        "submission_id": sid,
        "state": "received",
        "status_url": f"/v1/submissions/{sid}",
        "status_token": "baseline",
        "poll_after_seconds": 10,
        "bytes": size,
    }
    return web.Response(status=202, body=json.dumps(body).encode(), content_type="application/json")


REFUSAL = json.dumps({"error": {"code": "overloaded", "message": "Server busy, retry later."}}).encode()
"""The refusal's body: what a client needs to classify it (``loadtests.outcomes.classify``), nothing more."""


async def refuse(request: web.Request) -> web.Response:
    """Answer 503 at once, the body unread; the connection is closed after the answer."""
    response = web.Response(status=503, body=REFUSAL, content_type="application/json", headers={"Retry-After": "5"})
    response.force_close()
    return response


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def create_app(
    max_body_bytes: int = 64 * 1024 * 1024, produce: bool = False, refusing: bool = False
) -> web.Application:
    """The bare reader; with ``produce``, its bodies go to the submissions topic (settings from the environment);
    ``refusing``, every upload is refused (:func:`refuse`)."""
    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_post("/v1/registrations", refuse if refusing else accept)
    app.router.add_get("/healthz", healthz)
    if produce:
        app.cleanup_ctx.append(_producing)
    return app


async def _producing(app: web.Application) -> AsyncIterator[None]:
    settings = load_settings()
    async with running_sink(settings, connect_timeout_s=30) as sink:
        app[SINK], app[TOPIC] = sink, topic_names(settings).submissions
        yield


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=18181)
    p.add_argument(
        "--tune-heap", action="store_true", help="keep large buffers in the heap, as the API does (intake.heap)"
    )
    p.add_argument("--produce", action="store_true", help="append each body to the submissions topic (see above)")
    p.add_argument("--refuse", action="store_true", help="refuse every upload, body unread (see above)")
    args = p.parse_args(argv)
    if args.tune_heap:
        tune_heap()
    web.run_app(
        create_app(produce=args.produce, refusing=args.refuse),
        host=args.host,
        port=args.port,
        reuse_port=True,
        print=None,
        access_log=None,
        lingering_time=0.0,  # as the API's INTAKE_LINGER_S: an unread body is not read before the close
    )


if __name__ == "__main__":
    main()
