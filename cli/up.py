"""``intake up``: the local stack, the API and consumers, until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cli.common import load_or_exit

REPO = Path(__file__).resolve().parents[1]
STACK = REPO / "deploy" / "local" / "stack.sh"


def _stack(*argv: str) -> str:
    return subprocess.run([str(STACK), *argv], check=True, stdout=subprocess.PIPE, text=True).stdout


def _stack_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in _stack("env").splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line[len("export ") :].partition("=")
            env[name] = value
    return env


def cmd_up(args: argparse.Namespace) -> int:
    """Run everything locally until Ctrl-C; leaves no process behind."""
    _stack("start")
    env = {**_stack_env(), **os.environ} if args.keep_env else {**os.environ, **_stack_env()}
    os.environ.update(env)
    settings = load_or_exit()
    from intake.kafka import ensure_topics

    asyncio.run(ensure_topics(settings))
    exe = [sys.executable, "-m", "cli"]
    children = [subprocess.Popen([*exe, "serve"], env=env)]
    port = settings.consumer.metrics_port
    children += [
        subprocess.Popen([*exe, "consume"], env={**env, "INTAKE_CONSUMER_METRICS_PORT": str(port + i)} if port else env)
        for i in range(args.consumers)
    ]
    print(
        f"intake: API on http://{settings.http.host}:{settings.http.port} with {args.consumers} consumer(s); "
        "Ctrl-C stops everything",
        file=sys.stderr,
    )
    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stopping and all(c.poll() is None for c in children):
            time.sleep(0.5)  # supervision poll; a signal interrupts it
    finally:
        for c in children:
            if c.poll() is None:
                c.send_signal(signal.SIGTERM)
        for c in children:
            try:
                c.wait(timeout=30)
            except subprocess.TimeoutExpired:
                c.kill()
                c.wait()
        if not args.keep_stack:
            _stack("stop")
    return 0 if stopping else 1
