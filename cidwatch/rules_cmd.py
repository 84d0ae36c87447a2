"""`cidwatch rules list|check|explain`: what the engine will enforce, whether a user's pack is sound, and
one rule in one sentence."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from cidwatch.cli import CliError
from rules.pack import PACKS_DIR, PackError, Rule, load_pack_file, load_packs
from rules.registry import registry
from rules.threshold import Spec, explain, span_text


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("rules", help="list, check or explain rule packs")
    commands = parser.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    rules_help = "directory of rule packs (env CIDWATCH_RULES; default: the shipped packs)"
    listing = commands.add_parser("list", help="print the rules that will run")
    listing.add_argument("--rules", type=Path, metavar="DIR", default=os.environ.get("CIDWATCH_RULES"),
                         help=rules_help)
    listing.set_defaults(func=list_rules)
    check = commands.add_parser("check", help="validate rule pack files (every field; errors name file, rule, field)")
    check.add_argument("files", type=Path, metavar="FILE", nargs="*",
                       help="pack files (default: every *.yaml of --rules DIR)")
    check.add_argument("--rules", type=Path, metavar="DIR", default=os.environ.get("CIDWATCH_RULES"),
                       help=rules_help)
    check.set_defaults(func=check_pack)
    explain_cmd = commands.add_parser("explain", help="print one rule in one sentence")
    explain_cmd.add_argument("rule", metavar="RULE", help="a rule id, e.g. fr.daily_limit")
    explain_cmd.add_argument("--rules", type=Path, metavar="DIR", default=os.environ.get("CIDWATCH_RULES"),
                             help=rules_help)
    explain_cmd.set_defaults(func=explain_rule)


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
        zone = f" ({rule.timezone})" if rule.window in ("local_day", "days") else ""
        window = rule.window
        if isinstance(rule.config, Spec) and rule.window in ("sliding", "days"):
            window = f"sliding {span_text(rule.config.seconds)}" if rule.config.sliding else f"{rule.config.span} days"
        print(f"{rule.id:<26} {level:<46} window {window}{zone}")
        print(f"{'':<26} {rule.description}")
        print(f"{'':<26} source: {rule.source}")
    return 0


def check_pack(args: argparse.Namespace) -> int:
    directory = args.rules or PACKS_DIR
    files = args.files or sorted(Path(directory).glob("*.yaml")) + sorted(Path(directory).glob("*.yml"))
    if not files:
        raise CliError(f"{directory}: no *.yaml rule packs found")
    for path in files:
        try:
            rules = load_pack_file(path)
        except PackError as exc:
            raise CliError(str(exc)) from exc
        print(f"{path}: OK, {len(rules)} enabled rule(s){': ' if rules else ''}{', '.join(r.id for r in rules)}")
    return 0


def explain_rule(args: argparse.Namespace) -> int:
    """The rule as its pack row states it (an example pack's disabled row too: one reads it before enabling)."""
    try:
        pack = load_packs(args.rules, examples=True)
    except PackError as exc:
        raise CliError(str(exc)) from exc
    rule = pack.get(args.rule)
    if rule is None:
        raise CliError(f"rules explain: no rule {args.rule!r} in the packs; known: {', '.join(pack.rules)}")
    print(sentence(rule))
    return 0


def sentence(rule: Rule) -> str:
    """One rule in one sentence: a threshold rule from its measure, window and levels; another from its row."""
    spec = registry().get(rule.id)
    if isinstance(rule.config, Spec):
        doc = spec.check.__doc__ if spec is not None else None  # its first sentence: which calls count
        first = " ".join(doc.split(".")[0].split()) if doc else None
        return f"{rule.id}: {explain(rule, first[:1].lower() + first[1:] if first else None)}"
    if rule.thresholds:
        levels = ", ".join(f"{t.kind} ({t.severity}) at {t.at:g}" for t in rule.thresholds)
        return f"{rule.id}: {levels} per {rule.window} window: {rule.description}"
    window = "until lifted" if rule.window == "standing" else f"once per {rule.window.replace('_', ' ')}"
    return f"{rule.id}: {rule.kind} ({rule.severity}) {window} when: {rule.description}"
