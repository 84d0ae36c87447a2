"""`cidwatch history CLI`: every decision about one caller ID, oldest first.

From the `decisions` topic (read to its end offsets of now, no consumer group) or from a replay output
folder (`--from DIR`: its decisions.jsonl). An operator's question is "what happened to this number": its
alerts, its blocks, who lifted them and why (`blocks clear --by --reason` writes both into the unblock),
and whether its dialer kept presenting it (`cli.used_while_blocked`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from cidwatch.blocks import read_records
from cidwatch.cli import CliError
from cidwatch.kafka_options import add_kafka_arguments, kafka_settings
from cidwatch.tail import format_decision
from rules.numbers import classify
from streams.settings import Settings


def history(decisions: Iterable[dict[str, Any]], caller_id: str) -> list[dict[str, Any]]:
    """The decisions about `caller_id` (normalised as the engine does; as written when not valid), oldest
    first by `at` (then in the order read), each id once: a decision re-sent after a worker restart keeps
    its id."""
    subject = classify(caller_id).e164 or caller_id
    seen: set[str] = set()
    mine = []
    for decision in decisions:
        if decision.get("caller_id") != subject or decision.get("id") in seen:
            continue
        seen.add(str(decision.get("id")))
        mine.append(decision)
    return sorted(mine, key=lambda decision: str(decision.get("at")))


def from_topic(settings: Settings, caller_id: str) -> Iterator[dict[str, Any]]:
    """Decisions of the decisions topic that may be about `caller_id` (a byte test first: most are not)."""
    needle = json.dumps(classify(caller_id).e164 or caller_id).encode()
    for record in read_records(settings, settings.topic("decisions")):
        if record.value is None or needle not in record.value:
            continue
        try:
            decision = json.loads(record.value)
        except ValueError:
            continue
        if isinstance(decision, dict):
            yield decision


def from_folder(folder: Path) -> Iterator[dict[str, Any]]:
    """Decisions of a replay output folder's decisions.jsonl."""
    path = folder / "decisions.jsonl"
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror or exc} (is {folder} a replay --out folder?)") from exc
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                decision = json.loads(line)
            except ValueError as exc:
                raise CliError(f"{path}: line {number}: not a JSON decision ({exc})") from exc
            if isinstance(decision, dict):
                yield decision


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "history", help="print every decision about one caller ID, oldest first",
        description="Every decision (alert, block, unblock) about CALLER_ID, oldest first: from the decisions topic "
                    "(broker: env CIDWATCH_BROKER, prefix: env CIDWATCH_TOPIC_PREFIX) or from a replay output "
                    "folder. One line each: at  kind  rule  caller_id  message.")
    parser.add_argument("caller_id", metavar="CALLER_ID", help="the caller ID, E.164 (separators allowed)")
    parser.add_argument("--from", dest="folder", type=Path, metavar="DIR",
                        help="a replay output folder (its decisions.jsonl) instead of the decisions topic")
    parser.add_argument("--json", action="store_true", help="one JSON decision per line, as written")
    add_kafka_arguments(parser)
    parser.set_defaults(func=_cmd_history)


def _cmd_history(args: argparse.Namespace) -> int:
    source = from_folder(args.folder) if args.folder else from_topic(kafka_settings(args), args.caller_id)
    found = history(source, args.caller_id)
    for decision in found:
        print(json.dumps(decision, ensure_ascii=False) if args.json else format_decision(decision))
    print(f"{len(found)} decision(s) about {args.caller_id}", file=sys.stderr)
    return 0
