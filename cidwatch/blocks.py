"""What is blocked now: the compacted `blocks` topic read as a table.

Why a table read: the blocks topic is keyed per (caller ID, rule, scope) and compacted, so its
current state is the last value of each key. Reading it from the start to the end offsets at the
moment of the call gives exactly what a dialer would see, without joining a consumer group.
A key's own unblock (kind "unblock") or tombstone lifts that key only, so a number blocked by two
rules stays blocked until both are lifted.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from cidwatch.cli import CliError
from cidwatch.kafka_options import add_kafka_arguments, kafka_settings
from cidwatch.produce import make_producer
from cidwatch.tail import assign_all, make_consumer
from rules.decision import cleared_message, unblock_of
from rules.numbers import classify
from streams.alerting import runbook_url
from streams.protocol import BY_SUBJECT, clear_envelope
from streams.settings import Settings

READ_TIMEOUT_S = 60.0


def read_table(settings: Settings, topic: str, timeout_s: float = READ_TIMEOUT_S) -> dict[bytes | None, bytes | None]:
    """Last value of each key of `topic`, read from the beginning to the end offsets of now."""
    return {record.key: record.value for record in read_records(settings, topic, timeout_s)}


def read_records(settings: Settings, topic: str, timeout_s: float = READ_TIMEOUT_S) -> Iterator[Any]:
    """Every record of `topic`, each partition in offset order, from the beginning to the end offsets of now."""
    consumer = make_consumer(settings, "cidwatch-blocks")
    try:
        assigned = assign_all(consumer, topic)
        consumer.seek_to_beginning(*assigned)
        end = consumer.end_offsets(assigned)
        remaining = {tp for tp, offset in end.items() if consumer.position(tp) < offset}
        deadline = time.monotonic() + timeout_s
        while remaining:
            if time.monotonic() > deadline:
                raise CliError(f"reading {len(remaining)} partition(s) to their end took over {timeout_s:.0f} s")
            for records in consumer.poll(timeout_ms=500).values():
                yield from records
            # Positions, not record offsets: compaction and transaction markers leave offset gaps.
            remaining = {tp for tp in remaining if consumer.position(tp) < end[tp]}
    finally:
        consumer.close()


class BlockTable:
    """The blocks in force, folded from the blocks topic's records in offset order.

    A key's last record wins: a block keeps the key in force; an unblock, a tombstone or an unreadable
    value drops it. `blocks list` folds a read to the end offsets, the check API folds the records as
    it follows the topic: one fold, so both give the same answer for the same records.
    """

    def __init__(self) -> None:
        self.blocks: dict[str, dict[str, Any]] = {}  # block key -> the block decision in force
        self.by_cli: dict[str, dict[str, dict[str, Any]]] = {}  # caller ID -> its blocks by key

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        name = "" if key is None else key.decode("utf-8", errors="replace")
        old = self.blocks.pop(name, None)
        if old is not None:
            mine = self.by_cli.get(str(old.get("caller_id")))
            if mine is not None:
                mine.pop(name, None)
                if not mine:
                    del self.by_cli[str(old.get("caller_id"))]
        decision = _decision(value)
        if decision is not None and decision.get("kind") == "block":
            self.blocks[name] = decision
            self.by_cli.setdefault(str(decision.get("caller_id")), {})[name] = decision

    def for_cli(self, caller_id: str) -> list[dict[str, Any]]:
        """The blocks in force on one caller ID (normalised E.164), in key order."""
        mine = self.by_cli.get(caller_id) or {}
        return [mine[key] for key in sorted(mine)]

    def select(self, tenant: str | None = None, rule: str | None = None) -> list[dict[str, Any]]:
        """The blocks in force, in key order; only one tenant's or one rule's when asked."""
        return [block for key, block in sorted(self.blocks.items())
                if tenant in (None, block.get("tenant")) and rule in (None, block.get("rule"))]


def current_blocks(settings: Settings) -> BlockTable:
    """The blocks in force now: the blocks topic read to its end offsets and folded."""
    table = BlockTable()
    for key, value in read_table(settings, settings.topic("blocks")).items():
        table.apply(key, value)
    return table


def _decision(value: bytes | None) -> dict[str, Any] | None:
    """The decision in a value; None for a tombstone or an unreadable value."""
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def describe_block(block: dict[str, Any], runbook_base_url: str = "") -> dict[str, Any]:
    """One block in force as `blocks list --json` and the check API show it."""
    rule = str(block.get("rule"))
    return {
        "cli": block.get("caller_id"),
        "tenant": block.get("tenant"),
        "rule": rule,
        "scope": block.get("scope") or {},
        "since": block.get("at"),
        "until": block.get("until"),
        "message": block.get("message"),
        "runbook": runbook_url(rule, runbook_base_url),
        "decision_id": block.get("id"),
    }


def format_block(decision: dict[str, Any]) -> str:
    """`caller_id  tenant  rule  scope  since AT  until UNTIL  message` for one active block."""
    def show(name: str) -> str:
        value = decision.get(name)
        return "-" if value in (None, "", {}) else value if isinstance(value, str) else json.dumps(value)

    return (f"{show('caller_id')}  {show('tenant')}  {show('rule')}  {show('scope')}  since {show('at')}  "
            f"until {show('until')}  {show('message')}")


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
    parser = actions.add_parser(
        "list", help="print the caller IDs blocked now, one block per line",
        description="Print each block in force: caller_id  tenant  rule  scope  since AT  until UNTIL  message "
                    "('-' for none), in key order; --json prints them as the check API's /v1/blocks does.")
    parser.add_argument("--tenant", metavar="T", help="only the blocks made on this tenant's calls")
    parser.add_argument("--rule", metavar="R", help="only this rule's blocks")
    parser.add_argument("--json", action="store_true", help="a JSON array of {cli, tenant, rule, scope, since, "
                        "until, message, runbook, decision_id}")
    add_kafka_arguments(parser)
    parser.set_defaults(func=_cmd_list)


def _cmd_list(args: argparse.Namespace) -> int:
    blocks = current_blocks(kafka_settings(args)).select(args.tenant, args.rule)
    if args.json:
        print(json.dumps([describe_block(block) for block in blocks], ensure_ascii=False, indent=1))
    else:
        for block in blocks:
            print(format_block(block))
    callers = {decision.get("caller_id") for decision in blocks}
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
    parser.add_argument("--reason", metavar="TEXT", help="why: recorded in the unblock decision's message")
    parser.add_argument("--by", metavar="NAME", default=None,
                        help="who clears it, recorded in the unblock decision (default: your login name)")
    add_kafka_arguments(parser)
    parser.set_defaults(func=_cmd_clear)


def clear(settings: Settings, caller_id: str, rule: str | None, at: datetime, by: str | None = None,
          reason: str | None = None) -> list[dict[str, Any]]:
    """Unblock decisions written for the matching blocks in force, naming who cleared them and why; the
    workers are told too (with the same `by` and `reason`, so their unblock is the same)."""
    subject = classify(caller_id).e164 or caller_id
    matching = [block for block in current_blocks(settings).for_cli(subject) if rule in (None, block.get("rule"))]
    unblocks = [unblock_of(block, at, cleared_message(block["caller_id"], block["rule"], by, reason))
                for block in matching]
    producer = make_producer(settings)
    try:
        for unblock in unblocks:
            producer.send(settings.topic("blocks"), key=unblock.block_key.encode(), value=unblock.to_json())
            producer.send(settings.topic("decisions"), key=subject.encode(), value=unblock.to_json())
        if _topic_exists(settings, settings.topic(BY_SUBJECT)):
            producer.send(settings.topic(BY_SUBJECT), key=subject.encode(), value=clear_envelope(rule, at, by, reason))
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


def _login() -> str:
    """The operator's login name (`--by` overrides it); 'an operator' when the system has none."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "an operator"


def _cmd_clear(args: argparse.Namespace) -> int:
    settings = kafka_settings(args)
    reason = " ".join(args.reason.split()) if args.reason else None
    unblocks = clear(settings, args.caller_id, args.rule, datetime.now(UTC), args.by or _login(), reason)
    for unblock in unblocks:
        print(f"unblocked {unblock['caller_id']} {unblock['rule']} {json.dumps(unblock['scope'])}")
    if not unblocks:
        print(f"no block in force for {args.caller_id}" + (f" by {args.rule}" if args.rule else ""), file=sys.stderr)
        return 1
    return 0
