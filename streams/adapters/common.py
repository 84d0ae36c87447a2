"""What every adapter shares: outcomes, numbers, times, and the canonical record they all end in.

Each adapter is small because the hard, shared decisions live here once: how a national number becomes
E.164, when a short number is an extension, how a local wall-clock time gets its zone, and that every
record is validated by `rules.cdr.parse_cdr` before it leaves an adapter.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rules.cdr import MAX_DEPTH, CdrError, nested_too_deep, parse_cdr
from rules.numbers import classify_with_region, strip_separators
from streams.adapters.profile import Profile


@dataclass(frozen=True)
class SourceItem:
    """One outcome per source record: a canonical record, a reject (malformed) or a skip (not judged)."""

    location: str  # "line 12" or "record 3", 1-based, used in reject messages
    record: dict[str, Any] | None = None  # canonical CDR dict, JSON-ready
    reject: str | None = None
    skip: str | None = None
    # The call this record is one party of, when the source writes a row per party (Asterisk's merge
    # key): the stream merges rows of it that come in later messages (streams/parties.py).
    call: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The outcome as the golden files hold it; `call` is the stream's routing, not the outcome."""
        outcome = asdict(self)
        del outcome["call"]
        return outcome


class Reject(Exception):
    """The record is malformed; the reason says which field and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Skip(Exception):
    """The record is well formed but is not a call attempt we judge (counted, never a false invalid-CLI alert)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def outcome(location: str, convert: Callable[[], dict[str, Any]]) -> SourceItem:
    """Run one conversion and turn its result or its Skip/Reject/CdrError into a SourceItem."""
    try:
        return SourceItem(location, record=convert())
    except Skip as skip:
        return SourceItem(location, skip=skip.reason)
    except Reject as reject:
        return SourceItem(location, reject=reject.reason)
    except CdrError as exc:
        return SourceItem(location, reject=str(exc))


# --- numbers -------------------------------------------------------------------------------------

URI_USER = re.compile(r"(?:sips?|tel):([^@;>]+)", re.IGNORECASE)
PHONE_LIKE = re.compile(r"[+0-9 \-.()*#]+")
EXTENSION = re.compile(r"[*#]*([0-9]+)[*#]*")


@dataclass(frozen=True, slots=True)
class Number:
    """A number as the adapter will write it, and what kind of thing it is."""

    text: str  # E.164 when it normalises, otherwise the string as the switch wrote it
    kind: str  # "e164", "extension", "empty" or "other"


def number(raw: Any, profile: Profile) -> Number:
    """Normalise to E.164 with the profile's region; never reject: the rules flag invalid CLIs."""
    text = "" if raw is None else str(raw).strip()
    if not text:
        return Number("", "empty")
    candidate = _uri_user(text)
    info = classify_with_region(candidate, profile.default_region)
    if info.valid and info.e164:
        return Number(info.e164, "e164")
    if _is_extension(candidate, profile.extension_max_digits):
        return Number(text, "extension")
    return Number(text, "other")


def _uri_user(text: str) -> str:
    """The user part of a sip:/tel: URI when it looks like a number; the text itself otherwise."""
    match = URI_USER.match(text)
    if match and PHONE_LIKE.fullmatch(match.group(1)):
        return match.group(1)
    return text


def _is_extension(text: str, max_digits: int) -> bool:
    match = EXTENSION.fullmatch(strip_separators(text))
    return bool(match) and len(match.group(1)) <= max_digits


def clid_number(clid: str) -> str:
    """The number inside a caller-ID string such as '"Name" <number>'; '' when there is none."""
    start, end = clid.rfind("<"), clid.rfind(">")
    if 0 <= start < end:
        return clid[start + 1:end].strip()
    return ""


def call_direction(default: str, caller: Number, destination: Number, *, inbound_context: bool = False) -> str:
    """The call's direction from the format's own view, corrected by what the numbers prove.

    A call that lands in an inbound context came from the PSTN. A call to a short extension never left
    the switch: it is internal when an extension (or nobody) called, inbound when an outside number did.
    """
    if inbound_context:
        return "inbound"
    if destination.kind == "extension":
        return "internal" if caller.kind in ("extension", "empty") else "inbound"
    return default


def require_presented_caller(direction: str, caller: Number, destination: Number, fix: str) -> None:
    """Skip an outbound call whose caller ID is a short extension: the record lacks the presented number.

    PBXs often write the extension that dialled, not the number presented to the network. Passing the
    extension on would raise a false invalid-CLI alert; calling it internal would hide a real outbound call.
    A counted skip whose reason names the fix is the honest outcome.
    """
    if direction == "outbound" and caller.kind == "extension" and destination.kind != "extension":
        raise Skip(f"outbound call from an extension: the caller ID presented to the network is not in "
                   f"this record ({fix})")


# --- times and numbers in text --------------------------------------------------------------------

def local_time(value: Any, profile: Profile, field: str) -> datetime:
    """A switch's wall-clock time ('YYYY-MM-DD HH:MM:SS') in the profile's zone; an offset wins if present.

    Returned in UTC: Python subtracts two times of the same zone as wall-clock times, which is an hour
    wrong across a DST change (an INVITE/BYE pair in a DATETIME export, for instance).
    """
    text = "" if value is None else str(value).strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise Reject(f"{field}: expected a time like 2024-03-12 08:00:00, got {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=profile.zone)
    return moment.astimezone(UTC)


def epoch_time(value: Any, field: str, *, scale: float = 1.0) -> datetime:
    """Unix time (seconds, or microseconds with scale=1e6) as an aware UTC datetime."""
    seconds = number_value(value, field) / scale
    if seconds <= 0:
        raise Reject(f"{field}: expected a Unix time, got {value!r}")
    return datetime.fromtimestamp(seconds, UTC)


def iso_time(value: Any, field: str) -> datetime:
    """An ISO 8601 time that must carry its offset (Connect writes UTC with a Z)."""
    text = value.strip() if isinstance(value, str) else ""
    try:
        moment = datetime.fromisoformat(text)  # Python 3.11 reads the Z suffix
    except ValueError as exc:
        raise Reject(f"{field}: expected an ISO 8601 time, got {value!r}") from exc
    if moment.tzinfo is None:
        raise Reject(f"{field}: time {text!r} has no UTC offset")
    return moment.astimezone(UTC)


def number_value(value: Any, field: str, default: float | None = None) -> float:
    """A number written as a string (switches quote everything); empty gives the default."""
    if (value is None or (isinstance(value, str) and not value.strip())) and default is not None:
        return default
    if isinstance(value, bool):
        raise Reject(f"{field}: expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise Reject(f"{field}: expected a number, got {value!r}") from exc


def sip_code_value(value: Any, field: str) -> int | None:
    """A SIP status code, or None when the field is empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    code = number_value(value, field)
    if code != int(code) or not 100 <= code <= 699:
        raise Reject(f"{field}: expected a SIP status code 100-699, got {value!r}")
    return int(code)


def stable_id(prefix: str, *parts: str) -> str:
    """A call id for rows that have none: the same row always gets the same id, across replays."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]
    return f"{prefix}-{digest}"


# --- the canonical record -------------------------------------------------------------------------

def build_record(
    profile: Profile,
    *,
    call_id: str,
    started_at: datetime,
    direction: str,
    caller: Number,
    destination: Number,
    answered: bool,
    duration_s: float,
    sip_code: int | None = None,
    campaign: str | None = None,
    source: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The canonical dict, validated by parse_cdr so an adapter can never emit what replay would reject.

    `source` is the record's own names (columns, channel variables, attributes): the profile's `fields`
    are read from it, and a field named there wins over what the adapter found itself (the campaign of a
    Connect contact): the user said where their systems keep it.
    """
    record = {
        "call_id": call_id,
        "started_at": started_at.isoformat(),
        "direction": direction,
        "caller_id": caller.text,
        "destination": destination.text,
        "answered": answered,
        "duration_s": max(0.0, duration_s) if answered else 0.0,
        "sip_code": sip_code,
        "attestation": None,
        "tenant": profile.tenant,
        "campaign": campaign or None,
        "carrier": None,
    }
    record.update(source_fields(profile, source))
    return parse_cdr(record).to_dict()


def source_fields(profile: Profile, source: Mapping[str, Any] | None) -> dict[str, str]:
    """The profile's `fields` found in a source record, stripped; missing or empty ones are left out."""
    found = {}
    for name, key in profile.fields.items():
        value = None if source is None else source.get(key)
        if value is not None and str(value).strip():
            found[name] = str(value).strip()
    return found


# --- reading text ---------------------------------------------------------------------------------

def read_bytes(path: Path) -> bytes:
    """A file's bytes; rotated exports compressed with gzip (Master.csv.1.gz) are decompressed, known by
    their magic bytes whatever their name. A broken archive is a ValueError naming the file."""
    with path.open("rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    if not compressed:
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"not a readable gzip file: {exc}") from exc


def head_bytes(path: Path, size: int) -> bytes:
    """The first `size` bytes of a file's content, decompressed when it is gzip."""
    with path.open("rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as handle:
            return handle.read(size)
    except (OSError, EOFError) as exc:
        raise ValueError(f"not a readable gzip file: {exc}") from exc


def decode(data: bytes) -> str:
    """Switch files are UTF-8 or, on old boxes, Latin-1; Latin-1 never fails, so nothing is lost."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def csv_rows(text: str, delimiter: str = ",") -> Iterator[tuple[int, list[str] | Reject]]:
    """(line number, fields) per non-blank CSV row; a row the csv module cannot read is a Reject."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, Reject(f"unreadable CSV: {exc}")
            continue
        if row and any(cell.strip() for cell in row):
            yield reader.line_num, row


TOO_MANY_DIGITS = "not valid JSON: a number has too many digits to be read"


def json_values(
    text: str, object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None
) -> Iterator[tuple[str, Any]]:
    """(location, value) for a JSON document, an array of records, JSON lines or concatenated objects.

    Kinesis Firehose writes objects back to back with no separator, exporters write one per line, APIs
    return one document: all three occur, so all three are read. A value that is not JSON is yielded as
    a Reject at its location; later lines still convert.
    """
    if not text.strip():
        return
    if nested_too_deep(text):  # before parsing: the parser's recursion must never reach Python's limit
        yield "record 1", Reject(f"nested too deeply (more than {MAX_DEPTH} levels of arrays or objects)")
        return
    decoder = json.JSONDecoder(object_pairs_hook=object_pairs_hook)
    try:
        whole = decoder.decode(text)
    except json.JSONDecodeError as whole_error:
        yield from _json_lines(text, decoder, whole_error)
        return
    except ValueError:  # an integer literal past Python's 4300-digit limit
        yield "record 1", Reject(TOO_MANY_DIGITS)
        return
    if isinstance(whole, list):
        for index, value in enumerate(whole, 1):
            yield f"record {index}", value
    else:
        yield "record 1", whole


def _json_lines(text: str, decoder: json.JSONDecoder, whole_error: json.JSONDecodeError) -> Iterator[
        tuple[str, Any]]:
    """Line by line; when no line holds a whole object, it was one broken multi-line document."""
    lines = [(line_no, list(_decode_line(line, decoder))) for line_no, line in enumerate(text.splitlines(), 1)]
    lines = [(line_no, values) for line_no, values in lines if values]
    if not any(all(isinstance(value, dict) for value in values) for _, values in lines):
        yield "record 1", Reject(f"not valid JSON: {whole_error}")
        return
    for line_no, values in lines:
        for index, value in enumerate(values, 1):
            yield (f"line {line_no}" if index == 1 else f"line {line_no}, record {index}"), value


def _decode_line(line: str, decoder: json.JSONDecoder) -> Iterator[Any]:
    position = 0
    while position < len(line):
        while position < len(line) and line[position] in " \t\r,":
            position += 1
        if position >= len(line):
            return
        try:
            value, position = decoder.raw_decode(line, position)
        except json.JSONDecodeError as exc:
            yield Reject(f"not valid JSON: {exc.msg} at column {exc.colno}")
            return
        except ValueError:
            yield Reject(TOO_MANY_DIGITS)
            return
        yield from value if isinstance(value, list) else [value]
