"""`cidwatch inventory push|withdraw`: the command line over streams/inventory_topic.py."""

from __future__ import annotations

import argparse
from pathlib import Path

from cidwatch.cli import CliError
from cidwatch.kafka_options import add_kafka_arguments, kafka_settings
from rules.inventory import InventoryError, load_inventory
from streams.inventory_topic import push


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("inventory", help="publish the number inventory to the workers")
    commands = parser.add_subparsers(dest="inventory_command", metavar="ACTION", required=True)
    push_parser = commands.add_parser("push", help="validate FILE and publish it; it replaces the previous one")
    push_parser.add_argument("file", type=Path, metavar="FILE", help="inventory, YAML or CSV")
    add_kafka_arguments(push_parser)
    push_parser.set_defaults(func=run_push)
    withdraw = commands.add_parser("withdraw", help="publish 'no inventory': inventory clauses are skipped")
    add_kafka_arguments(withdraw)
    withdraw.set_defaults(func=run_withdraw)


def run_push(args: argparse.Namespace) -> int:
    try:
        inventory = load_inventory(args.file)
    except InventoryError as exc:
        raise CliError(str(exc)) from exc
    settings = kafka_settings(args)
    push(settings, inventory)
    print(f"pushed {len(inventory)} numbers to {settings.topic('inventory')}")
    return 0


def run_withdraw(args: argparse.Namespace) -> int:
    settings = kafka_settings(args)
    push(settings, None)
    print(f"withdrew the inventory on {settings.topic('inventory')}")
    return 0


