"""Refused uploads from clients that send ``Expect: 100-continue``: what the client sends and what the API spends.

A client that honours ``Expect`` (curl for large bodies, Go, Java and .NET clients) sends its request head, waits
for ``100 Continue`` or a final answer (curl: at most 1 s), and sends the body only after a 100. This script runs
the API on an in-memory sink and store (:mod:`loadtests.memory_api`) with every upload refused by the overload
gate (``INTAKE_MAX_LOOP_LAG_MS`` below any lag) and sends it ``--uploads`` uploads of ``--size`` bytes, each on a
new connection, in alternating rounds of:

* ``expect``: such a client;
* ``plain``: a client that sends head and body at once (browsers): the baseline, same run;
* ``expect-before`` (with ``--before DIR``, a checkout of an earlier commit): that commit's API, the same client.

It prints, per variant (medians of the rounds): the bytes the client sent per refused upload, the API's CPU per
refusal (psutil), the ratio to ``plain``, and refusals whose answer never reached the client (the connection was
reset before it: the server closed with the body still arriving).

    eval "$(deploy/local/stack.sh env)"      # the service's settings (keys); Kafka and S3 are not used
    .venv/bin/python -m loadtests.bench_expect [--uploads 300] [--size 500000] [--rounds 3] [--before DIR]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

from intake.auth import sign
from loadtests.bench_cpu import SHED_ENV
from loadtests.procs import REPO, free_port, python
from loadtests.signing import UPLOAD_PATH, load_key

WAIT_FOR_CONTINUE_S = 1.0
"""How long the ``expect`` client waits for ``100 Continue`` or an answer before it sends the body (curl's)."""


def _serve(checkout: Path, port: int) -> subprocess.Popen[bytes]:
    """The in-memory API of ``checkout`` on ``port``, refusing every upload; returns once its gate refuses."""
    env = {**os.environ, "INTAKE_HTTP_HOST": "127.0.0.1", "INTAKE_HTTP_PORT": str(port)}
    env.update(SHED_ENV, INTAKE_HTTP_PROCESSES="1")
    exe = checkout / ".venv" / "bin" / "python" if checkout != REPO else Path(python())
    server = subprocess.Popen([str(exe), "-m", "loadtests.memory_api"], cwd=checkout, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # up, and refusing: the gate sheds once it has sampled the loop's lag
        try:
            answer = _upload(port, b"x" * 1000, expect=False)[1]
        except OSError:
            answer = b""
        if answer.startswith(b"HTTP/1.1 503"):
            return server
        time.sleep(0.1)
    server.kill()
    raise SystemExit(f"the API of {checkout} did not start refusing uploads on port {port}")


def _upload(port: int, body: bytes, expect: bool) -> tuple[int, bytes]:
    """One upload on a new connection: (bytes sent, the start of the answer, empty when none could be read)."""
    auth = sign(load_key(), "POST", UPLOAD_PATH)["Authorization"]
    head = (
        f"POST {UPLOAD_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {len(body)}\r\nAuthorization: {auth}\r\n"
        + ("Expect: 100-continue\r\n" if expect else "")
        + "\r\n"
    ).encode()
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(WAIT_FOR_CONTINUE_S if expect else 10)
        try:
            sock.sendall(head)
            sent += len(head)
            first = b""
            if expect:
                try:
                    first = sock.recv(65536)
                except TimeoutError:
                    first = b""  # no answer in time: send the body anyway, as curl does
            if not expect or first == b"" or first.startswith(b"HTTP/1.1 100"):
                sock.settimeout(10)
                sent += _send_until_refused(sock, body)
                first = sock.recv(65536)
                while first.startswith(b"HTTP/1.1 100"):  # the interim answer, then the final one
                    first = first.partition(b"\r\n\r\n")[2] or sock.recv(65536)
        except OSError:  # reset before the answer could be read
            return sent, b""
    return sent, first if first.startswith(b"HTTP/1.1 ") else b""


def _send_until_refused(sock: socket.socket, body: bytes) -> int:
    """Send ``body``; stop at the first failure (the server answered and closed): bytes sent. The answer may still
    be readable then, as a client that reads while it sends would see it."""
    sent = 0
    view = memoryview(body)
    while sent < len(body):
        try:
            sent += sock.send(view[sent : sent + 65536])
        except OSError:
            break
    return sent


def measure(checkout: Path, args: argparse.Namespace, expect: bool) -> dict[str, float]:
    """One round of one variant: bytes sent and server CPU per refusal, and answers lost."""
    port = free_port()
    server = _serve(checkout, port)
    body = b"x" * args.size
    try:
        proc = psutil.Process(server.pid)
        before = proc.cpu_times()
        outcomes = [_upload(port, body, expect) for _ in range(args.uploads)]
        after = proc.cpu_times()
    finally:
        server.terminate()
        server.wait(30)
    cpu_s = (after.user + after.system) - (before.user + before.system)
    return {
        "sent_bytes": sum(sent for sent, _ in outcomes) / args.uploads,
        "cpu_ms": cpu_s / args.uploads * 1000,
        "lost": sum(not answer for _, answer in outcomes),
        "refused": sum(answer.startswith(b"HTTP/1.1 503") for _, answer in outcomes),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--uploads", type=int, default=300, help="refused uploads per variant and round")
    p.add_argument("--size", type=int, default=500_000, help="body bytes of each upload")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--before", type=Path, help="checkout of an earlier commit (with its .venv)")
    args = p.parse_args(argv)
    variants: list[tuple[str, Path, bool]] = [("plain", REPO, False), ("expect", REPO, True)]
    if args.before:
        variants.append(("expect-before", args.before.resolve(), True))
    rows: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in variants}
    for r in range(args.rounds):
        for name, checkout, expect in variants if r % 2 == 0 else reversed(variants):
            rows[name].append(measure(checkout, args, expect))
    med = {name: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for name, rs in rows.items()}
    print(
        f"{args.uploads} refused uploads of {args.size:,} B per variant and round, {args.rounds} rounds (medians); "
        "ratio = CPU per refusal ÷ plain's, same run\n"
    )
    print("| variant | client sent, B per refusal | API CPU ms per refusal | ÷ plain | answers lost (of all) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, m in med.items():
        lost = sum(int(x["lost"]) for x in rows[name])
        print(
            f"| {name} | {m['sent_bytes']:,.0f} | {m['cpu_ms']:.2f} | {m['cpu_ms'] / med['plain']['cpu_ms']:.2f} | "
            f"{lost} ({args.uploads * args.rounds}) |"
        )
    print("\ncommand: .venv/bin/python -m loadtests.bench_expect " + " ".join(argv or sys.argv[1:]))


if __name__ == "__main__":
    main()
