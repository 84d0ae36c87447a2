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
from datetime import UTC, datetime
from typing import Any

from cidwatch.cli import CliError
from cidwatch.produce import make_producer
from cidwatch.tail import assign_all, make_consumer
from rules.decision import cleared_message, unblock_of
from rules.numbers import classify
from streams.protocol import BY_SUBJECT, clear_envelope
from streams.settings import Settings

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
    _add_clear(actions)


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


def _add_clear(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "clear", help="lift a caller ID's blocks (all rules, or one): writes the unblock",
        description="An operator's unblock: writes the unblock of each matching block in force to the blocks and "
                    "decisions topics at once (dialers see it even with no worker running), and tells the workers "
                    "so their state drops the block (they re-send the same unblock id).")
    parser.add_argument("caller_id", metavar="CALLER_ID", help="the caller ID, E.164 (separators allowed)")
    parser.add_argument("--rule", metavar="R", help="lift only this rule's block")
    parser.set_defaults(func=_cmd_clear)


def clear(settings: Settings, caller_id: str, rule: str | None, at: datetime) -> list[dict[str, Any]]:
    """Unblock decisions written for the matching blocks in force; the workers are told too."""
    subject = classify(caller_id).e164 or caller_id
    matching = [block for block in current_blocks(settings).values()
                if block.get("caller_id") == subject and rule in (None, block.get("rule"))]
    unblocks = [unblock_of(block, at, cleared_message(block["caller_id"], block["rule"])) for block in matching]
    producer = make_producer(settings)
    try:
        for unblock in unblocks:
            producer.send(settings.topic("blocks"), key=unblock.block_key.encode(), value=unblock.to_json())
            producer.send(settings.topic("decisions"), key=subject.encode(), value=unblock.to_json())
        if _topic_exists(settings, settings.topic(BY_SUBJECT)):
            producer.send(settings.topic(BY_SUBJECT), key=subject.encode(), value=clear_envelope(rule, at))
        producer.flush()
    finally:
        producer.close()
    return [unblock.to_dict() for unblock in unblocks]


def _topic_exists(settings: Settings, topic: str) -> bool:
    """No worker has run yet when the workers' topic is missing: then there is no state to tell."""
    consumer = make_consumer(settings, "cidwatch-blocks")
    try:
        return bool(consumer.partitions_for_topic(topic))
    finally:
        consumer.close()


def _cmd_clear(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    unblocks = clear(settings, args.caller_id, args.rule, datetime.now(UTC))
    for unblock in unblocks:
        print(f"unblocked {unblock['caller_id']} {unblock['rule']} {json.dumps(unblock['scope'])}")
    if not unblocks:
        print(f"no block in force for {args.caller_id}" + (f" by {args.rule}" if args.rule else ""), file=sys.stderr)
        return 1
    return 0
