"""Follow an output topic (decisions, alerts, blocks or the DLQ) one readable line per record.

Why: operators and tests need to see what the workers decide without writing a consumer. The
consumer joins no group, so tailing never steals partitions from a worker or commits offsets.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from cidwatch.cli import CliError
from cidwatch.kafka_options import add_kafka_arguments, kafka_settings
from streams.connection import kafka_consumer
from streams.settings import Settings

TAIL_TOPICS = ("decisions", "alerts", "blocks", "dlq")
DECISION_COLUMNS = ("at", "kind", "rule", "caller_id", "message")
SHOWN_BYTES = 300  # of a dead-lettered record, on its line


# --- formatting -------------------------------------------------------------------------------


def format_record(topic: str, key: bytes | None, value: bytes | None, timestamp_ms: int | None = None) -> str:
    """One line for one record of a tailed topic; never raises on odd input. `timestamp_ms` (the
    record's Kafka timestamp) is the time shown for a dead letter: when it was dead-lettered."""
    if value is None:
        return f"-  tombstone  {_text(key)}  (key deleted: not blocked)"
    try:
        data = json.loads(value)
    except ValueError:
        return f"-  unreadable  {_text(key)}  {value[:200]!r}"
    if not isinstance(data, dict):
        return f"-  unreadable  {_text(key)}  {value[:200]!r}"
    return format_dlq(data, timestamp_ms) if topic == "dlq" else format_decision(data)


def format_decision(data: dict[str, Any]) -> str:
    """`at  kind  rule  caller_id  message`, with `-` for a missing field."""
    return "  ".join(_field(data.get(name)) for name in DECISION_COLUMNS)


def format_dlq(data: dict[str, Any], timestamp_ms: int | None = None) -> str:
    """`at  class: reason  field  topic/partition@offset  record`: when and why a record was
    dead-lettered, which field, where it came from, and the record itself as it arrived (its bytes
    decoded from the dead letter's base64; an oversized one's first bytes, its length and SHA-256)."""
    source = data.get("source") if isinstance(data.get("source"), dict) else {}
    where = f"{_field(source.get('topic'))}/{_field(source.get('partition'))}@{_field(source.get('offset'))}"
    at = (datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
          if isinstance(timestamp_ms, int) and timestamp_ms >= 0 else "-")
    reason = ": ".join(str(part) for part in (data.get("error_class"), data.get("reason")) if part)
    return "  ".join((at, _field(reason), _field(data.get("field")), where, _original(data)))


def _original(data: dict[str, Any]) -> str:
    """The dead-lettered record's bytes as text (invalid UTF-8 escaped), cut at SHOWN_BYTES."""
    try:
        raw = base64.b64decode(str(data.get("value_b64") or ""), validate=True)
    except ValueError:
        return "(record not readable from the dead letter)"
    text = raw[:SHOWN_BYTES].decode("utf-8", errors="backslashreplace").replace("\n", "\\n").replace("\r", "\\r")
    length = data.get("value_length")
    if isinstance(length, int) and length > SHOWN_BYTES:
        text += f" ... ({length} bytes" + (f", sha256 {data['value_sha256']}" if data.get("value_sha256") else "") + ")"
    return text or "(empty)"


def _field(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _text(key: bytes | None) -> str:
    return "-" if key is None else key.decode("utf-8", errors="replace")


# --- consuming --------------------------------------------------------------------------------


def make_consumer(settings: Settings, client_id: str) -> Any:
    """A group-less KafkaConsumer (manual assignment, no commits) for the configured broker."""
    return kafka_consumer(settings, client_id, group_id=None, enable_auto_commit=False)


def assign_all(consumer: Any, topic: str) -> list[Any]:
    """Assign every partition of `topic`; a missing topic is a user error."""
    from kafka import TopicPartition

    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise CliError(f"topic {topic} does not exist; create it with `cidwatch topics create`")
    assigned = [TopicPartition(topic, partition) for partition in sorted(partitions)]
    consumer.assign(assigned)
    return assigned


def follow(settings: Settings, topic: str, from_beginning: bool = False, max_records: int | None = None,
           timeout_s: float | None = None) -> Iterator[Any]:
    """Yield records of `topic` as they arrive; stop after `max_records`, or `timeout_s` with none."""
    consumer = make_consumer(settings, "cidwatch-tail")
    try:
        assigned = assign_all(consumer, topic)
        if from_beginning:
            consumer.seek_to_beginning(*assigned)
        else:
            consumer.seek_to_end(*assigned)
        yield from _poll_until(consumer, max_records, timeout_s)
    finally:
        consumer.close()


def _poll_until(consumer: Any, max_records: int | None, timeout_s: float | None) -> Iterator[Any]:
    seen = 0
    idle_since = time.monotonic()
    while max_records is None or seen < max_records:
        if timeout_s is not None and time.monotonic() - idle_since >= timeout_s:
            return
        batch = consumer.poll(timeout_ms=500, max_records=max_records - seen if max_records else None)
        records = sorted((r for rs in batch.values() for r in rs), key=lambda r: (r.timestamp, r.partition))
        if records:
            idle_since = time.monotonic()
        for record in records:
            yield record
            seen += 1


# --- command line -----------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cidwatch tail [decisions|alerts|blocks|dlq]`."""
    parser = subparsers.add_parser(
        "tail", help="print the records of an output topic, one readable line each",
        description="Follow an output topic (broker: env CIDWATCH_BROKER, prefix: env CIDWATCH_TOPIC_PREFIX). "
                    "Decisions, alerts, blocks: at  kind  rule  caller_id  message. "
                    "DLQ: at  class: reason  field  topic/partition@offset  record (the record as it arrived).")
    parser.add_argument("topic", nargs="?", default="decisions", choices=TAIL_TOPICS,
                        help="which topic (default decisions)")
    parser.add_argument("--from-beginning", action="store_true",
                        help="start at the oldest record instead of new ones only")
    parser.add_argument("--max", type=int, default=None, metavar="N", help="stop after N records")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="stop after S seconds without a new record (default: follow until Ctrl-C)")
    add_kafka_arguments(parser)
    parser.set_defaults(func=_cmd_tail)


def _cmd_tail(args: argparse.Namespace) -> int:
    settings = kafka_settings(args)
    for record in follow(settings, settings.topic(args.topic), args.from_beginning, args.max, args.timeout):
        print(format_record(args.topic, record.key, record.value, record.timestamp), flush=True)
    return 0
