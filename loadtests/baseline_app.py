"""The ceiling of the HTTP layer: a bare aiohttp handler that reads the whole body and answers 202.

No multipart parsing, no validation, no Kafka: what one aiohttp process on this machine can take in. It answers
the same shape of JSON as the real API so the same load generators drive it unchanged. Run with
``.venv/bin/python -m loadtests.baseline_app --port 18181`` (127.0.0.1 only; SO_REUSEPORT like ``intake serve``).
"""

from __future__ import annotations

import argparse
import json
import secrets

from aiohttp import web

from intake.heap import tune_heap

_CHUNK = 64 * 1024


async def accept(request: web.Request) -> web.Response:
    """Read the body to its end (in chunks, as the real upload reader does), then answer 202."""
    size = 0
    while True:
        chunk = await request.content.read(_CHUNK)
        if not chunk:
            break
        size += len(chunk)
    sid = secrets.token_hex(16)
    body = {
        "submission_id": sid,
        "state": "received",
        "status_url": f"/v1/submissions/{sid}",
        "status_token": "baseline",
        "poll_after_seconds": 10,
        "bytes": size,
    }
    return web.Response(status=202, body=json.dumps(body).encode(), content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def create_app(max_body_bytes: int = 64 * 1024 * 1024) -> web.Application:
    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_post("/v1/registrations", accept)
    app.router.add_get("/healthz", healthz)
    return app


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=18181)
    p.add_argument(
        "--tune-heap", action="store_true", help="keep large buffers in the heap, as the API does (intake.heap)"
    )
    args = p.parse_args(argv)
    if args.tune_heap:
        tune_heap()
    web.run_app(create_app(), host=args.host, port=args.port, reuse_port=True, print=None, access_log=None)


if __name__ == "__main__":
    main()
