"""Send canonical CDR files to the `cdr` topic, keyed by caller ID, without validating them.

Why no validation here: the stream worker validates every record and dead-letters the bad ones
with a reason, so a producer that dropped or "fixed" records would hide exactly the problems the
DLQ exists to show. JSON Lines are sent byte for byte; CSV and Parquet rows become JSON objects.
The key is the caller ID so that all calls of one number land in one partition, in order.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from itertools import chain
from pathlib import Path
from typing import Any

from cidwatch.cli import CliError
from streams.settings import Settings

Record = tuple[bytes | None, bytes]


# --- readers ----------------------------------------------------------------------------------


def read_canonical_file(path: Path) -> Iterator[Record]:
    """(key, value bytes) for each record of a canonical CDR file, chosen by its suffix."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise CliError(f"{path}: unsupported file type {path.suffix or '(none)'}; "
                       f"expected one of {', '.join(sorted(READERS))}")
    return reader(path)


def record_key(record: Any) -> bytes | None:
    """The caller ID as UTF-8 (b"" when absent); None for what is not a JSON object."""
    if not isinstance(record, dict):
        return None
    caller_id = record.get("caller_id")
    return b"" if caller_id is None else str(caller_id).encode()


def read_jsonl(path: Path) -> Iterator[Record]:
    """Each non-blank line's bytes unchanged, so a malformed line reaches the DLQ as it was."""
    with path.open("rb") as stream:
        for line in stream:
            raw = line.rstrip(b"\r\n")
            if raw.strip():
                yield _jsonl_key(raw), raw


def _jsonl_key(raw: bytes) -> bytes | None:
    try:
        return record_key(json.loads(raw))
    except ValueError:  # includes undecodable bytes: such a line goes unkeyed
        return None


def read_csv(path: Path) -> Iterator[Record]:
    """Each row as a JSON object of its non-empty cells, values kept as text (as `replay` reads them)."""
    with path.open(newline="", encoding="utf-8-sig") as stream:
        for row in csv.DictReader(stream):
            record = {name: value for name, value in row.items() if name and value not in (None, "")}
            yield record_key(record), _dumps(record)


def read_parquet(path: Path) -> Iterator[Record]:
    """Each row as a JSON object; times become ISO 8601, nulls are omitted."""
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
        for row in batch.to_pylist():
            record = {name: _json_value(value) for name, value in row.items() if not _is_null(value)}
            yield record_key(record), _dumps(record)


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _json_value(value: Any) -> Any:
    """A Parquet cell as JSON: aware times with their offset (UTC as Z), naive ones as they are."""
    if isinstance(value, dt.datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _dumps(record: Any) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


READERS: dict[str, Callable[[Path], Iterator[Record]]] = {
    ".jsonl": read_jsonl,
    ".json": read_jsonl,
    ".ndjson": read_jsonl,
    ".csv": read_csv,
    ".parquet": read_parquet,
    ".pq": read_parquet,
}


# --- sending ----------------------------------------------------------------------------------


class RateLimiter:
    """Paces calls to `rate` per second against a fixed schedule, so sleeps do not drift."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = time.monotonic()

    def wait(self) -> None:
        if not self.interval:
            return
        delay = self.next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self.next_at = max(self.next_at, time.monotonic() - 1.0) + self.interval


def make_producer(settings: Settings) -> Any:
    """A KafkaProducer for the configured broker, with a user-facing error when it is down."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        return KafkaProducer(bootstrap_servers=settings.bootstrap_servers, client_id="cidwatch-produce",
                             acks="all", linger_ms=10)
    except KafkaError as exc:
        raise CliError(f"cannot reach the Kafka broker at {settings.bootstrap_servers} ({exc}); "
                       "start one with `cidwatch broker start` or set CIDWATCH_BROKER") from exc


def produce_records(settings: Settings, records: Iterable[Record], rate: float = 0,
                    progress: bool = True, topic: str | None = None) -> int:
    """Send (key, value) pairs to the cdr topic (or `topic`); return how many were sent.

    `rate` limits records per second (0: as fast as possible). Raises CliError if any send failed.
    """
    topic = topic or settings.topic("cdr")
    failures: list[BaseException] = []
    limiter = RateLimiter(rate)
    producer = make_producer(settings)
    sent = 0
    try:
        with _progress_bar(records, progress, topic) as bar:
            for key, value in records:
                limiter.wait()
                producer.send(topic, key=key, value=value).add_errback(failures.append)
                sent += 1
                bar.update(1)
            producer.flush()
    finally:
        producer.close()
    if failures:
        raise CliError(f"{len(failures)} of {sent} records were not delivered to {topic}: {failures[0]!r}")
    return sent


def _progress_bar(records: Iterable[Record], enabled: bool, topic: str) -> Any:
    from tqdm import tqdm

    total = len(records) if hasattr(records, "__len__") else None
    return tqdm(total=total, unit=" rec", desc=topic, file=sys.stderr, disable=not enabled, leave=True)


# --- command line -----------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cidwatch produce FILE... [--rate N]`."""
    parser = subparsers.add_parser(
        "produce", help="send canonical CDR files (JSONL, CSV, Parquet) to the cdr topic",
        description="Send each record of canonical CDR files to the cdr topic (broker: env CIDWATCH_BROKER, "
                    "prefix: env CIDWATCH_TOPIC_PREFIX), keyed by caller_id. Records are not validated: "
                    "the worker dead-letters bad ones.")
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE",
                        help=f"CDR files: {', '.join(sorted(READERS))}")
    parser.add_argument("--rate", type=float, default=0,
                        help="records per second at most (default 0: as fast as possible)")
    parser.add_argument("--format", default="canonical", metavar="NAME",
                        help="input format: canonical (default) or an adapter name (asterisk, freeswitch-csv, "
                        "freeswitch-json, connect-ctr, twilio, kamailio-acc); converted before producing")
    parser.add_argument("--profile", type=Path, metavar="FILE", help="adapter profile (YAML)")
    parser.set_defaults(func=_cmd_produce)


def converted_records(paths: list[Path], fmt: str, profile_path: Path | None) -> Iterator[Record]:
    """Other systems' CDRs converted to canonical JSON by their adapter; what cannot be converted is
    reported on stderr with its file and location (it never reaches the topic, so it is said here)."""
    from streams import adapters

    if fmt not in adapters.FORMATS:
        raise CliError(f"--format: unknown format {fmt!r}; known: canonical, {', '.join(adapters.FORMATS)}")
    try:
        profile = adapters.load_profile(profile_path)
    except (OSError, ValueError) as exc:
        raise CliError(f"{profile_path}: {exc}") from exc
    for path in paths:
        for item in adapters.read_source(path, fmt, profile):
            if item.reject is not None:
                print(f"{path}: {item.location}: not converted: {item.reject}", file=sys.stderr)
            elif item.record is not None:
                yield record_key(item.record), json.dumps(item.record, separators=(",", ":")).encode()


def _cmd_produce(args: argparse.Namespace) -> int:
    if args.rate < 0:
        raise CliError("--rate must be 0 (unlimited) or more")
    for path in args.files:
        if not path.is_file():
            raise CliError(f"{path}: no such file")
        if args.format == "canonical" and path.suffix.lower() not in READERS:
            read_canonical_file(path)  # raises the unsupported-type error
    settings = Settings.from_env()
    if args.format == "canonical":
        records = chain.from_iterable(read_canonical_file(path) for path in args.files)
    else:
        records = converted_records(args.files, args.format, args.profile)
    sent = produce_records(settings, records, rate=args.rate)
    print(f"sent {sent} records to {settings.topic('cdr')}")
    return 0
