"""The parser of the ``intake`` command: each subcommand and its arguments, dispatched to its module."""

from __future__ import annotations

import argparse

import cli
from cli.audit import cmd_audit
from cli.consume import cmd_consume
from cli.dlq import cmd_dlq
from cli.erase import cmd_erase
from cli.keys import cmd_keys_rotate
from cli.serve import cmd_serve
from cli.settings import cmd_settings
from cli.sign import cmd_sign
from cli.topics import cmd_topics
from cli.up import cmd_up
from cli.waves import cmd_waves, cmd_waves_export


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="intake", description=cli.__doc__, formatter_class=argparse.RawTextHelpFormatter)
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
    dlq.add_argument(
        "--offset",
        action="append",
        metavar="P:N",
        help="replay the dead letter at partition P, offset N (repeatable; N alone when one partition has N)",
    )
    dlq.add_argument(
        "--include-erased",
        action="store_true",
        help="replay `erased` letters too (skipped by default: their data key is destroyed, they can never be read)",
    )
    dlq.set_defaults(func=cmd_dlq)
    erase = sub.add_parser("erase", help="erase applicants' data (NIKs on standard input)")
    erase.add_argument("--nik-hash", action="append", help="keyed NIK hash (hex) instead of NIKs on stdin")
    erase.set_defaults(func=cmd_erase)
    keys = sub.add_parser("keys", help="the applicants' data keys")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    rotate = keys_sub.add_parser("rotate", help="rewrap the data keys under the active key-encryption key")
    rotate.add_argument("--check", action="store_true", help="count the keys per key-encryption key id; change nothing")
    rotate.set_defaults(func=cmd_keys_rotate)
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
