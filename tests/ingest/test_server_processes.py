"""``intake serve`` with several processes: they share one port (SO_REUSEPORT), all answer, and a SIGTERM to
the parent stops every one of them. No broker is needed: readiness is not asked for here."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import psutil
from aiohttp import ClientSession
from aiohttp.test_utils import unused_port

from intake.settings import to_environ
from tests.support import unit_settings


async def test_processes_share_the_port_and_stop_together() -> None:
    port = unused_port()
    env = {
        **os.environ,
        **to_environ(unit_settings()),
        "INTAKE_HTTP_PORT": str(port),
        "INTAKE_HTTP_PROCESSES": "2",
        "INTAKE_KAFKA_BOOTSTRAP": f"127.0.0.1:{unused_port()}",  # nothing there: liveness does not need it
        "INTAKE_S3_ENDPOINT": f"127.0.0.1:{unused_port()}",
        "INTAKE_DRAIN_DELAY_S": "0",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    parent = subprocess.Popen(  # noqa: ASYNC220 - a server under test, stopped below
        [sys.executable, "-m", "cli", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        listeners: set[int] = set()
        while time.monotonic() < deadline and len(listeners) < 2:
            await asyncio.sleep(0.3)
            children = psutil.Process(parent.pid).children()
            listeners = {
                c.pid
                for c in children
                if any(
                    conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN
                    for conn in c.net_connections(kind="tcp")
                )
            }
        assert len(listeners) == 2, "two processes listen on the same port"
        async with ClientSession() as session:
            statuses = [(await session.get(f"http://127.0.0.1:{port}/healthz")).status for _ in range(20)]
        assert statuses == [200] * 20
        parent.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(parent.wait, 60) == 0
        assert not [pid for pid in listeners if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    finally:
        if parent.poll() is None:
            parent.kill()
