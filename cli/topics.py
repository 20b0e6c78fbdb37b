"""``intake topics create|describe|manifest``."""

from __future__ import annotations

import argparse
import asyncio
import json

from cli.common import load_or_exit


def cmd_topics(args: argparse.Namespace) -> int:
    from intake.kafka import describe_topics, ensure_topics

    settings = load_or_exit()
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
