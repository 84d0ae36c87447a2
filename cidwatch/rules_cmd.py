"""`cidwatch rules list|check`: what the engine will enforce, and whether a user's pack is sound."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from cidwatch.cli import CliError
from rules.pack import PackError, load_pack_file, load_packs


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("rules", help="list or check rule packs")
    commands = parser.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    listing = commands.add_parser("list", help="print the rules that will run")
    listing.add_argument("--rules", type=Path, metavar="DIR", default=os.environ.get("CIDWATCH_RULES"),
                         help="directory of rule packs (env CIDWATCH_RULES; default: the shipped packs)")
    listing.set_defaults(func=list_rules)
    check = commands.add_parser("check", help="validate a rule pack file")
    check.add_argument("file", type=Path, metavar="FILE")
    check.set_defaults(func=check_pack)


def list_rules(args: argparse.Namespace) -> int:
    try:
        pack = load_packs(args.rules)
    except PackError as exc:
        raise CliError(str(exc)) from exc
    for rule in pack.rules.values():
        if rule.thresholds:
            level = ", ".join(f"{t.kind} {t.severity} at {t.at:g}" for t in rule.thresholds)
        else:
            level = f"{rule.kind} {rule.severity}"
        zone = f" ({rule.timezone})" if rule.window == "local_day" else ""
        print(f"{rule.id:<26} {level:<46} window {rule.window}{zone}")
        print(f"{'':<26} {rule.description}")
        print(f"{'':<26} source: {rule.source}")
    return 0


def check_pack(args: argparse.Namespace) -> int:
    try:
        rules = load_pack_file(args.file)
    except PackError as exc:
        raise CliError(str(exc)) from exc
    print(f"{args.file}: OK, {len(rules)} enabled rule(s): {', '.join(rule.id for rule in rules)}")
    return 0
