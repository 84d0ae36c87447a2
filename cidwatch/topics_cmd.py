"""`cidwatch topics create`: the command line over streams/topics.py."""

from __future__ import annotations

import argparse

from cidwatch.kafka_options import add_kafka_arguments, kafka_settings
from streams.topics import create_topics


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cidwatch topics create`."""
    parser = subparsers.add_parser("topics", help="manage the Kafka topics cidwatch uses")
    actions = parser.add_subparsers(dest="topics_action", metavar="ACTION", required=True)
    create = actions.add_parser(
        "create", help="create the topics (idempotent)",
        description="Create cdr, decisions, alerts, blocks, dlq, inventory and the workers' cdr.by-subject "
                    "under the topic prefix "
                    "(env CIDWATCH_TOPIC_PREFIX) on the broker (env CIDWATCH_BROKER). blocks and "
                    "inventory are compacted; inventory has one partition.")
    create.add_argument("--partitions", type=int, default=8,
                        help="partitions per topic (default 8; inventory always has 1)")
    add_kafka_arguments(create, replication=True)
    create.set_defaults(func=_cmd_create)


def _cmd_create(args: argparse.Namespace) -> int:
    settings = kafka_settings(args)
    result = create_topics(settings, partitions=args.partitions)
    for name in result.created:
        print(f"created  {name}  ({result.replication} replica(s))")
    for name in result.existing:
        print(f"exists   {name}")
    return 0
