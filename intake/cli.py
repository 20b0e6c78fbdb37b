"""The ``intake`` command line.

    intake up                 start the local stack, create topics and buckets, run the API and a consumer;
                              Ctrl-C stops everything it started (children, then the stack)
    intake serve              run the API only (INTAKE_HTTP_HOST/PORT)
    intake consume            run one consumer group member
    intake topics create      create the topics (idempotent)
    intake topics describe    print partitions and limits of the topics, as the broker reports them
    intake topics manifest    print the topics as Strimzi KafkaTopic objects (--cluster, --users), no broker needed
    intake dlq list|replay    show the dead-letter topic; replay --all or --offset N to the submissions topic
    intake erase              erase the data of the applicants whose NIKs are given on standard input
    intake waves close N      close wave N: select (order of completion, or --seed lottery), mark the rest
                              quota_exceeded, publish outcomes; idempotent and resumable
    intake waves export N     write wave N's selected applicants (registration records) to --output as JSONL
                              or CSV, with a progress bar; streaming and resumable (a checkpoint beside it)
    intake audit list         print the audit log of KTP image reads (--submission ID for one submission)
    intake sign METHOD PATH   print headers signing one API request (--scope, --actor), e.g. for curl
    intake settings           print every environment variable with its default and meaning

Settings are read from the environment once, at start, and validated before anything runs.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from intake.logs import configure_logging
from intake.settings import Settings, SettingsError, documented, load_settings, markdown_table

if TYPE_CHECKING:
    pass

REPO = Path(__file__).resolve().parents[1]
STACK = REPO / "deploy" / "local" / "stack.sh"


_CONNECT_S = 30.0
"""How long a batch command (waves close, dlq replay, erase) waits for Kafka before giving up (exit 5)."""


def _settings() -> Settings:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"intake: invalid settings: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level)
    return settings


def cmd_settings(args: argparse.Namespace) -> int:
    if args.markdown:
        print(markdown_table())
    else:
        for d in documented():
            print(f"{d.env}={d.default}\n    {d.doc}")
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from intake.kafka import describe_topics, ensure_topics

    settings = _settings()
    if args.action == "manifest":
        from intake.topic_manifest import kafka_topics, kafka_users, to_yaml_stream

        objects = kafka_topics(settings, args.cluster) + (kafka_users(settings, args.cluster) if args.users else [])
        print(to_yaml_stream(objects), end="")
        return 0
    if args.action == "create":
        created = asyncio.run(ensure_topics(settings))
        print(json.dumps({"created": created}))
    else:
        print(json.dumps(asyncio.run(describe_topics(settings)), indent=2))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ingest.server import process_count, serve, serve_processes

    settings = _settings()
    if process_count(settings) > 1:
        return serve_processes(settings)
    asyncio.run(serve(settings))
    return 0


def cmd_consume(args: argparse.Namespace) -> int:
    from consumers.runner import run_consumer

    settings = _settings()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_consumer(settings, stop)

    asyncio.run(main())
    return 0


def cmd_waves(args: argparse.Namespace) -> int:
    """Close a wave: select, mark the rest quota_exceeded, publish outcomes. Idempotent and resumable."""
    from consumers.selection import WaveStillOpen, close_wave
    from intake.kafka import QueueUnavailable, running_sink
    from intake.storage import build_store
    from processors.waves import Wave

    settings = _settings()
    w = settings.wave
    if args.number != w.number:
        print(
            f"intake: the service is configured for wave {w.number} (INTAKE_WAVE_NUMBER); set INTAKE_WAVE_* "
            f"for wave {args.number} to close it",
            file=sys.stderr,
        )
        return 2
    wave = Wave(w.number, w.opens_at, w.closes_at, args.quota if args.quota is not None else w.quota)

    async def main() -> int:
        store = build_store(settings)
        try:
            async with running_sink(settings, probe_interval_s=30.0, connect_timeout_s=_CONNECT_S) as producer:
                summary = await close_wave(settings, store, producer, wave, seed=args.seed)
        except WaveStillOpen as exc:
            print(f"intake: {exc}", file=sys.stderr)
            return 3
        except QueueUnavailable as exc:
            print(f"intake: {exc}; nothing was closed, run it again", file=sys.stderr)
            return 5
        finally:
            store.close()
        print(json.dumps(dataclasses.asdict(summary)))
        return 0

    return asyncio.run(main())


def cmd_waves_export(args: argparse.Namespace) -> int:
    """Export a closed wave's selected applicants. Exit 3: the wave's close has not finished; 4: some selected
    applicants' registration records are missing (the summary counts them)."""
    from consumers.dlq import progress_bar
    from consumers.export import WaveNotClosed, export_wave
    from consumers.selection import Selection, selection_key
    from intake.storage import build_store

    settings = _settings()
    output = Path(args.output)

    async def main() -> int:
        store = build_store(settings)
        try:
            stored = await store.get(settings.s3.bucket_status, selection_key(args.number))
            total = len(Selection.from_json(stored.data).selected) if stored is not None else 0
            summary = await export_wave(
                settings, store, args.number, output, fmt=args.format, progress=progress_bar(total)
            )
        except WaveNotClosed as exc:
            print(f"intake: {exc}", file=sys.stderr)
            return 3
        finally:
            store.close()
        print(json.dumps({**dataclasses.asdict(summary), "output": str(output)}))
        return 4 if summary.missing else 0

    return asyncio.run(main())


def cmd_dlq(args: argparse.Namespace) -> int:
    """List or replay dead letters."""
    from consumers.dlq import progress_bar, read_dead_letters, replay
    from intake.kafka import QueueUnavailable, running_sink

    settings = _settings()

    async def main() -> int:
        letters = [d async for d in read_dead_letters(settings)]
        if args.action == "list":
            print(f"{'partition':>9} {'offset':>8} {'bytes':>9}  {'error':<28} source")
            for d in letters:
                print(f"{d.partition:>9} {d.offset:>8} {len(d.value):>9}  {d.error:<28} {d.source}")
            print(f"{len(letters)} dead letter(s)")
            return 0
        chosen = letters if args.all else [d for d in letters if d.offset in set(args.offset or [])]
        if not chosen:
            print("intake: nothing to replay (give --all or --offset N)", file=sys.stderr)
            return 2
        try:
            async with running_sink(settings, probe_interval_s=30.0, connect_timeout_s=_CONNECT_S) as sink:
                count = await replay(settings, sink, chosen, progress_bar(len(chosen)))
        except QueueUnavailable as exc:
            print(f"intake: {exc}; replay again (a replayed record may then be appended twice)", file=sys.stderr)
            return 5
        print(json.dumps({"replayed": count}))
        return 0

    return asyncio.run(main())


def cmd_erase(args: argparse.Namespace) -> int:
    """Erase applicants' data. NIKs are read from standard input (one per line), never from the command line,
    so they stay out of shell history and process lists; ``--nik-hash`` takes keyed hashes instead. Needs Kafka
    too (the ``erased`` registration records): exit 5, nothing erased, when it does not answer."""
    from consumers.erasure import erase_applicant
    from intake.kafka import running_sink
    from intake.storage import build_store
    from processors.screening import nik_hash_hex

    settings = _settings()
    pepper = settings.security.nik_pepper.encode()
    hashes = list(args.nik_hash or [])
    if not hashes:
        hashes = [nik_hash_hex("".join(line.split()), pepper) for line in sys.stdin if line.strip()]
    if not hashes:
        print("intake: give NIKs on standard input or --nik-hash", file=sys.stderr)
        return 2

    async def main() -> int:
        store = build_store(settings)
        try:
            async with running_sink(settings, probe_interval_s=30.0) as sink:
                if not await sink.wait_connected(_CONNECT_S):
                    print("intake: Kafka is not reachable; nothing was erased", file=sys.stderr)
                    return 5
                for digest in hashes:
                    report = await erase_applicant(settings, store, digest, sink)
                    print(json.dumps({"nik_hash": digest[:16], **dataclasses.asdict(report)}))
        finally:
            store.close()
        return 0

    return asyncio.run(main())


def cmd_audit(args: argparse.Namespace) -> int:
    """Print the audit log of KTP image reads (JSON lines, oldest first)."""
    from intake.audit import read_audit

    settings = _settings()

    async def main() -> int:
        count = 0
        async for record in read_audit(settings, args.submission):
            print(record.to_json().decode())
            count += 1
        print(f"{count} read(s)", file=sys.stderr)
        return 0

    return asyncio.run(main())


def cmd_sign(args: argparse.Namespace) -> int:
    """Print the headers that sign one request (for curl: ``-H "$line"`` each), with a key of ``--scope``."""
    from intake.auth import sign, signing_key

    settings = _settings()
    key = signing_key(settings.security.client_keys, args.scope)
    headers = sign(key, args.method, args.path, idempotency_key=args.idempotency_key, actor=args.actor)
    if args.idempotency_key:
        headers["Idempotency-Key"] = args.idempotency_key
    for name, value in headers.items():
        print(f"{name}: {value}")
    return 0


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
    settings = _settings()
    from intake.kafka import ensure_topics

    asyncio.run(ensure_topics(settings))
    exe = [sys.executable, "-m", "intake.cli"]
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="intake", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the stack, the API and consumers locally")
    up.add_argument("--consumers", type=int, default=1, help="consumer processes (default 1)")
    up.add_argument("--keep-stack", action="store_true", help="leave Kafka and MinIO running on exit")
    up.add_argument("--keep-env", action="store_true", help="let INTAKE_* variables already set win over the stack's")
    up.set_defaults(func=cmd_up)
    sub.add_parser("serve", help="run the API").set_defaults(func=cmd_serve)
    sub.add_parser("consume", help="run one consumer group member").set_defaults(func=cmd_consume)
    topics = sub.add_parser("topics", help="create or describe the topics")
    topics.add_argument("action", choices=["create", "describe", "manifest"])
    topics.add_argument("--cluster", default="intake-kafka", help="Strimzi Kafka cluster of the manifest's topics")
    topics.add_argument("--users", action="store_true", help="manifest: also the KafkaUsers with their ACLs")
    topics.set_defaults(func=cmd_topics)
    dlq = sub.add_parser("dlq", help="inspect or replay the dead-letter topic")
    dlq.add_argument("action", choices=["list", "replay"])
    dlq.add_argument("--all", action="store_true", help="replay every dead letter")
    dlq.add_argument("--offset", type=int, action="append", help="replay the dead letter at this offset (repeatable)")
    dlq.set_defaults(func=cmd_dlq)
    erase = sub.add_parser("erase", help="erase applicants' data (NIKs on standard input)")
    erase.add_argument("--nik-hash", action="append", help="keyed NIK hash (hex) instead of NIKs on stdin")
    erase.set_defaults(func=cmd_erase)
    audit = sub.add_parser("audit", help="print the audit log of KTP image reads")
    audit.add_argument("action", choices=["list"])
    audit.add_argument("--submission", default=None, help="only the reads of this submission id")
    audit.set_defaults(func=cmd_audit)
    sign = sub.add_parser("sign", help="print headers signing one API request (valid a few minutes, once)")
    sign.add_argument("method", choices=["GET", "POST"])
    sign.add_argument("path", help="e.g. /v1/submissions/<id>/ktp/card")
    sign.add_argument("--scope", default="read_ktp", choices=["submit", "read_ktp"])
    sign.add_argument("--actor", default=None, help="the operator, for image reads (Intake-Actor)")
    sign.add_argument("--idempotency-key", default=None)
    sign.set_defaults(func=cmd_sign)
    waves = sub.add_parser("waves", help="wave operations")
    waves_sub = waves.add_subparsers(dest="action", required=True)
    close = waves_sub.add_parser("close", help="select among the eligible and mark the rest quota_exceeded")
    close.add_argument("number", type=int, help="the wave's number (must match INTAKE_WAVE_NUMBER)")
    close.add_argument("--quota", type=int, default=None, help="places (default INTAKE_WAVE_QUOTA)")
    close.add_argument("--seed", default=None, help="published lottery seed (default: order of completion)")
    close.set_defaults(func=cmd_waves)
    export = waves_sub.add_parser("export", help="write a closed wave's selected applicants (JSONL or CSV)")
    export.add_argument("number", type=int, help="the wave's number (closed with `intake waves close`)")
    export.add_argument("--output", required=True, help="file to write; a checkpoint is kept beside it to resume")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="default jsonl")
    export.set_defaults(func=cmd_waves_export)
    st = sub.add_parser("settings", help="print the environment variables")
    st.add_argument("--markdown", action="store_true", help="as the README's Markdown table")
    st.set_defaults(func=cmd_settings)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
