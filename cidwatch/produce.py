"""Send canonical CDR files to the `cdr` topic, keyed by subject, without validating them.

Why no validation here: the stream worker validates every record and dead-letters the bad ones
with a reason, so a producer that dropped or "fixed" records would hide exactly the problems the
DLQ exists to show. JSON Lines are sent byte for byte (a line that is not a JSON object, or whose
caller ID cannot be a key, goes unkeyed); CSV and Parquet rows become JSON objects. The key is the
record's subject (the normalised caller ID) so that all calls of one number land in one partition,
in order, the partition that holds that number's state.

What cannot be sent at all is skipped, never the end of the run: a value over the producer's
`max_request_size` (1 MiB, the broker's default limit), a CSV row that is not UTF-8 or not CSV, a
row JSON cannot write, a record the broker refuses. Every other line is still sent, and at the end
one line on stderr names the skipped lines (the first few, and how many) and the exit status is 2:
a partial send is a failure the operator must see, even though the good lines went through.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import chain
from pathlib import Path
from typing import Any

from cidwatch.cli import CliError
from cidwatch.inputs import InputError, is_gzip, open_bytes, require_file
from cidwatch.kafka_options import add_kafka_arguments, kafka_settings
from rules.cdr import parse_json
from rules.numbers import subject_of
from streams.connection import kafka_producer
from streams.settings import Settings
from streams.topics import require_topics

Record = tuple[bytes | None, bytes]
SHOWN_SKIPS = 5  # skipped lines named in the summary


@dataclass(frozen=True, slots=True)
class Line:
    """One record of an input file: where it is, its key and value, or why it cannot be sent."""

    where: str  # "cdrs.jsonl line 12", "cdrs.parquet row 3"
    key: bytes | None
    value: bytes | None
    problem: str | None = None


@dataclass
class Sent:
    """What a send did: records the broker acknowledged, and the lines skipped with why."""

    count: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self, topic: str) -> str:
        """One line naming the first skipped lines and how many there were."""
        shown = "; ".join(f"{where}: {why}" for where, why in self.skipped[:SHOWN_SKIPS])
        more = len(self.skipped) - SHOWN_SKIPS
        return (f"{len(self.skipped)} line(s) could not be sent to {topic} and were skipped "
                f"(the other {self.count} were sent): {shown}" + (f"; and {more} more" if more > 0 else ""))


# --- readers ----------------------------------------------------------------------------------


def read_canonical_file(path: Path) -> Iterator[Line]:
    """Each record of a canonical CDR file, chosen by its suffix, with where it is."""
    suffix = (path.with_suffix("") if path.suffix.lower() == ".gz" else path).suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        raise CliError(f"{path}: unsupported file type {path.suffix or '(none)'}; "
                       f"expected one of {', '.join(sorted(READERS))}")
    return reader(path)


def record_key(record: Any) -> bytes | None:
    """The record's subject as UTF-8: its caller ID normalised as the engine does (for an inbound
    call, the number called), so the record lands on the partition of its subject's state and the
    worker judges it without a second trip. b"" when absent; None for what is not a JSON object, or a
    number that cannot be a key (a lone surrogate, an integer too long to print): the worker rejects
    those."""
    if not isinstance(record, dict):
        return None
    try:
        direction = str(record.get("direction") or "outbound")
        caller_id, destination = (str(record.get(name) or "") for name in ("caller_id", "destination"))
        return subject_of(direction, caller_id, destination)[0].encode()
    except ValueError:
        return None


def read_jsonl(path: Path) -> Iterator[Line]:
    """Each non-blank line's bytes unchanged, so a malformed line reaches the DLQ as it was."""
    with open_bytes(path) as stream:
        for number, line in enumerate(stream, start=1):
            raw = line.rstrip(b"\r\n")
            if raw.strip():
                yield Line(f"{path} line {number}", _jsonl_key(raw), raw)


def _jsonl_key(raw: bytes) -> bytes | None:
    try:
        return record_key(parse_json(raw.decode("utf-8-sig")))
    except ValueError:  # not UTF-8, not JSON, nested too deeply: such a line goes unkeyed
        return None


def read_csv(path: Path) -> Iterator[Line]:
    """Each row as a JSON object of its non-empty cells, values kept as text (as `replay` reads them).
    A row that is not UTF-8, or that the csv module refuses (a field over its size limit), is skipped."""
    with io.TextIOWrapper(open_bytes(path), newline="", encoding="utf-8-sig", errors="surrogateescape") as stream:
        reader = csv.DictReader(stream)
        while True:
            before = reader.line_num
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # the reader has consumed the bad line and goes on from the next one
                yield Line(f"{path} line {before + 1}", None, None, f"not readable as CSV ({exc})")
                continue
            record = {name: value for name, value in row.items() if name and value not in (None, "")}
            yield _row_line(f"{path} line {reader.line_num}", record)


def read_parquet(path: Path) -> Iterator[Line]:
    """Each row as a JSON object; times become ISO 8601, nulls are omitted."""
    import pyarrow.parquet as pq

    number = 0
    source = io.BytesIO(open_bytes(path).read()) if is_gzip(path) else path
    for batch in pq.ParquetFile(source).iter_batches(batch_size=10_000):
        for row in batch.to_pylist():
            number += 1
            record = {name: _json_value(value) for name, value in row.items() if not _is_null(value)}
            yield _row_line(f"{path} row {number}", record)


def _row_line(where: str, record: dict[str, Any]) -> Line:
    try:
        return Line(where, record_key(record), _dumps(record))
    except UnicodeEncodeError:
        return Line(where, None, None, "not valid UTF-8 text")
    except (ValueError, RecursionError) as exc:  # an int past 4300 digits, nesting past the recursion limit
        return Line(where, None, None, f"cannot be written as JSON ({type(exc).__name__})")


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


READERS: dict[str, Callable[[Path], Iterator[Line]]] = {
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
    """A KafkaProducer for the configured broker (acks=all), with a one-line error when it cannot be used."""
    return kafka_producer(settings, "cidwatch-produce", linger_ms=10)


def produce_records(settings: Settings, records: Iterable[Record | Line], rate: float = 0,
                    progress: bool = True, topic: str | None = None) -> int:
    """Send (key, value) pairs (or Lines) to the cdr topic (or `topic`); return how many were sent.

    `rate` limits records per second (0: as fast as possible). Raises CliError if any could not be sent
    (after sending all the others); `send_lines` returns the skipped ones instead.
    """
    topic = topic or settings.topic("cdr")
    lines = (item if isinstance(item, Line) else Line(f"record {n}", *item) for n, item in enumerate(records, 1))
    sent = send_lines(settings, lines, rate, progress, topic)
    if sent.skipped:
        raise CliError(sent.summary(topic))
    return sent.count


def send_lines(settings: Settings, lines: Iterable[Line], rate: float = 0, progress: bool = True,
               topic: str | None = None) -> Sent:
    """Send every line that can be sent; skip (and return, with why) those that cannot: a line with a
    `problem`, a value over the producer's max_request_size, a record the broker refuses."""
    from kafka.errors import KafkaError, MessageSizeTooLargeError

    topic = topic or settings.topic("cdr")
    skipped: list[tuple[int, str, str]] = []  # (position in the input, where, why): reported in input order
    failures: list[tuple[int, str, BaseException]] = []
    limiter = RateLimiter(rate)
    require_topics(settings, [topic])  # a producer would wait for a missing topic, then fail each send
    producer = make_producer(settings)
    handed = 0
    try:
        with _progress_bar(lines, progress, topic) as bar:
            for position, line in enumerate(lines):
                bar.update(1)
                if line.problem is not None:
                    skipped.append((position, line.where, line.problem))
                    continue
                limiter.wait()
                try:
                    future = producer.send(topic, key=line.key, value=line.value)
                except MessageSizeTooLargeError:
                    size = len(line.value or b"") + len(line.key or b"")
                    skipped.append((position, line.where, f"{size} bytes, over the producer's maximum request "
                                                          f"size of {producer.config['max_request_size']}"))
                    continue
                except KafkaError as exc:
                    raise CliError(f"cannot send to {topic} ({exc}); {handed} records were handed to the "
                                   "producer before this one") from exc
                future.add_errback(lambda exc, p=position, w=line.where: failures.append((p, w, exc)))
                handed += 1
            producer.flush()
    finally:
        producer.close()
    skipped.extend((p, where, f"not delivered ({type(exc).__name__}: {exc})") for p, where, exc in failures)
    return Sent(handed - len(failures), [(where, why) for _p, where, why in sorted(skipped, key=lambda s: s[0])])


def _progress_bar(records: Iterable[Any], enabled: bool, topic: str) -> Any:
    from tqdm import tqdm

    total = len(records) if hasattr(records, "__len__") else None
    return tqdm(total=total, unit=" rec", desc=topic, file=sys.stderr, disable=not enabled, leave=True)


# --- command line -----------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cidwatch produce FILE... [--rate N]`."""
    parser = subparsers.add_parser(
        "produce", help="send canonical CDR files (JSONL, CSV, Parquet) to the cdr topic",
        description="Send each record of canonical CDR files to the cdr topic (broker: env CIDWATCH_BROKER, "
                    "prefix: env CIDWATCH_TOPIC_PREFIX), keyed by subject (the normalised caller ID). Records are "
                    "not validated: the worker dead-letters bad ones.")
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE",
                        help=f"CDR files: {', '.join(sorted(READERS))}")
    parser.add_argument("--rate", type=float, default=0,
                        help="records per second at most (default 0: as fast as possible)")
    parser.add_argument("--format", default="canonical", metavar="NAME",
                        help="input format: canonical (default) or an adapter name (asterisk, freeswitch-csv, "
                        "freeswitch-json, connect-ctr, twilio, kamailio-acc); converted before producing")
    parser.add_argument("--profile", type=Path, metavar="FILE", help="adapter profile (YAML)")
    add_kafka_arguments(parser)
    parser.set_defaults(func=_cmd_produce)


def converted_records(paths: list[Path], fmt: str, profile_path: Path | None) -> Iterator[Line]:
    """Other systems' CDRs converted to canonical JSON by their adapter; what cannot be converted is
    reported on stderr with its file and location (it never reaches the topic, so it is said here)."""
    from streams import adapters

    if fmt not in adapters.FORMATS:
        raise CliError(f"--format: unknown format {fmt!r}; known: canonical, {', '.join(adapters.FORMATS)}")
    try:
        profile = adapters.load_profile(profile_path)
    except ValueError as exc:  # ProfileError: its message names the file already
        raise CliError(str(exc)) from exc
    for path in paths:
        try:
            items = list(adapters.read_source(path, fmt, profile))
        except ValueError as exc:  # a file-level error (unreadable archive, header without a required column)
            raise CliError(f"{path}: {exc}") from exc
        for item in items:
            if item.reject is not None:
                print(f"{path}: {item.location}: not converted: {item.reject}", file=sys.stderr)
            elif item.record is not None:
                yield Line(f"{path} {item.location}", record_key(item.record),
                           json.dumps(item.record, separators=(",", ":")).encode())


def _cmd_produce(args: argparse.Namespace) -> int:
    if args.rate < 0:
        raise CliError("--rate must be 0 (unlimited) or more")
    for path in args.files:
        try:
            require_file(path)
        except InputError as exc:
            raise CliError(str(exc)) from exc
        if args.format == "canonical" and path.suffix.lower() not in READERS:
            read_canonical_file(path)  # raises the unsupported-type error
    settings = kafka_settings(args)
    if args.format == "canonical":
        lines = chain.from_iterable(read_canonical_file(path) for path in args.files)
    else:
        lines = converted_records(args.files, args.format, args.profile)
    topic = settings.topic("cdr")
    sent = send_lines(settings, lines, rate=args.rate, topic=topic)
    print(f"sent {sent.count} records to {topic}")
    if sent.skipped:
        raise CliError(sent.summary(topic))  # exit status 2, one line on stderr
    return 0
