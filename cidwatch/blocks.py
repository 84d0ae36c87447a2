"""What is blocked now: the compacted `blocks` topic read as a table.

Why a table read: the blocks topic is keyed per (caller ID, rule, scope) and compacted, so its
current state is the last value of each key. Reading it from the start to the end offsets at the
moment of the call gives exactly what a dialer would see, without joining a consumer group.
A key's own unblock (kind "unblock") or tombstone lifts that key only, so a number blocked by two
rules stays blocked until both are lifted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from cidwatch.cli import CliError
from cidwatch.settings import Settings
from cidwatch.tail import assign_all, make_consumer

READ_TIMEOUT_S = 60.0


def read_table(settings: Settings, topic: str, timeout_s: float = READ_TIMEOUT_S) -> dict[bytes | None, bytes | None]:
    """Last value of each key of `topic`, read from the beginning to the end offsets of now."""
    consumer = make_consumer(settings, "cidwatch-blocks")
    try:
        assigned = assign_all(consumer, topic)
        consumer.seek_to_beginning(*assigned)
        end = consumer.end_offsets(assigned)
        return _read_to(consumer, end, timeout_s)
    finally:
        consumer.close()


def _read_to(consumer: Any, end: dict[Any, int], timeout_s: float) -> dict[bytes | None, bytes | None]:
    latest: dict[bytes | None, bytes | None] = {}
    remaining = {tp for tp, offset in end.items() if consumer.position(tp) < offset}
    deadline = time.monotonic() + timeout_s
    while remaining:
        if time.monotonic() > deadline:
            raise CliError(f"reading {len(remaining)} partition(s) to their end took over {timeout_s:.0f} s")
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                latest[record.key] = record.value
        # Positions, not record offsets: compaction and transaction markers leave offset gaps.
        remaining = {tp for tp in remaining if consumer.position(tp) < end[tp]}
    return latest


def current_blocks(settings: Settings) -> dict[str, dict[str, Any]]:
    """Block key to its decision, for every key whose latest value is a block."""
    table = read_table(settings, settings.topic("blocks"))
    blocks = {}
    for key, value in table.items():
        decision = _decision(value)
        if decision is not None and decision.get("kind") == "block":
            blocks["" if key is None else key.decode("utf-8", errors="replace")] = decision
    return blocks


def _decision(value: bytes | None) -> dict[str, Any] | None:
    """The decision in a value; None for a tombstone or an unreadable value."""
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def format_block(decision: dict[str, Any]) -> str:
    """`caller_id  rule  since AT  until UNTIL  message` for one active block."""
    def show(name: str) -> str:
        value = decision.get(name)
        return "-" if value in (None, "") else str(value)

    return (f"{show('caller_id')}  {show('rule')}  since {show('at')}  until {show('until')}  "
            f"{show('message')}")


# --- command line -----------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cidwatch blocks ACTION`; each action has its own `_add_*` function below."""
    parser = subparsers.add_parser(
        "blocks", help="inspect the blocks in force (compacted blocks topic)",
        description="The blocks topic (broker: env CIDWATCH_BROKER, prefix: env CIDWATCH_TOPIC_PREFIX) "
                    "read as a table: the last record of each caller/rule/scope key.")
    actions = parser.add_subparsers(dest="blocks_action", metavar="ACTION", required=True)
    _add_list(actions)


def _add_list(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser("list", help="print the caller IDs blocked now, one block per line",
                                description="Print each block in force: caller_id  rule  since  until  message.")
    parser.set_defaults(func=_cmd_list)


def _cmd_list(args: argparse.Namespace) -> int:
    blocks = current_blocks(Settings.from_env())
    for key in sorted(blocks):
        print(format_block(blocks[key]))
    callers = {decision.get("caller_id") for decision in blocks.values()}
    print(f"{len(blocks)} block(s) in force on {len(callers)} caller ID(s)", file=sys.stderr)
    return 0
