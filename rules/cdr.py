"""The canonical CDR: the contract every input (file, topic, adapter) is converted to.

Pure Python, no Faust import: `replay`, the adapters and the stream all validate records here,
so a record is rejected for the same reason wherever it enters.

Validation is total: for any value `parse_cdr` returns a `Cdr` or raises `CdrError` (field, reason
and a short `kind`), and `parse_json` turns any text into a JSON value or a `CdrError`/`ValueError`;
nothing else escapes. The bounds below are what makes a record that passes safe for every later step
(the engine's window ends, risk buckets and ids, the UTF-8 encoders of Kafka, Arrow and the JSON
writers), and each is far outside what a real call produces:

- `started_at`: 2000-01-01T00:00:00Z <= t < 2100-01-01T00:00:00Z. Fixed and absolute, so whether a
  record is accepted depends on the record alone: replay run today or in ten years, and the stream
  on whichever worker and partition, in whatever order, accept the same records. A bound relative to
  the wall clock would make replay's result depend on when it runs; one relative to the newest
  record seen would depend on arrival order and on which worker saw what (a stream worker sees its
  partitions, replay sees every record in time order), so stream and replay would disagree. Both
  ends keep every time the engine derives (next local midnight, a block's end, the de-duplication
  horizon, risk buckets) thousands of years away from datetime's limits (years 1 and 9999), where
  converting an offset or adding a day overflows. 2000 is before any call the rules concern (SIP
  dates from 1999, STIR/SHAKEN from 2019); 2100 is after any this deployment will see.
- `duration_s`: finite, 0 <= d <= 7 days (604 800 s). Switches and carriers end calls long before
  (session timers and maximum call durations are typically hours); the bound keeps absurd values and
  overflowing integers out, and does not try to guess units (a duration in milliseconds passes).
- `sip_code`: an integer 100-699, the SIP status code range.
- Text fields (ids, numbers, tenant, campaign, carrier): at most 256 characters and valid Unicode
  text with no lone UTF-16 surrogate ("\\udfff" in JSON), which no UTF-8 encoder accepts. A call id
  (SIP Call-ID, typically 32-128 characters), an E.164 number (16) or a tenant name fits with room to
  spare; these strings become Kafka keys, block keys, decision messages and metric labels, which
  stay small.
- JSON: a record is a flat object; nesting deeper than 32 levels (arrays and objects) is refused
  before parsing (`parse_json`), so the parser's recursion never comes near Python's limit, and
  integer literals of more digits than Python converts (4300) are refused instead of raising.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DIRECTIONS = ("outbound", "inbound", "internal")
ATTESTATIONS = ("A", "B", "C")
OPTIONAL_TEXT = ("tenant", "campaign", "carrier")
PURPOSES = ("telemarketing", "automated", "service", "personal")
FIELDS = (
    "call_id", "started_at", "direction", "caller_id", "destination", "answered", "duration_s",
    "sip_code", "attestation", "tenant", "campaign", "carrier",
)
# Written only when set: records of systems that never give them keep the shape they always had.
SPARSE_FIELDS = ("purpose", "ingress_country")
_COUNTRY = re.compile(r"[A-Z]{2}")
TRUE_WORDS = {"true": True, "1": True, "false": False, "0": False}

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # excluded
MAX_DURATION_S = 7 * 86_400
MAX_TEXT = 256  # characters of any text field
MAX_DEPTH = 32  # nesting of JSON arrays and objects
MAX_INT = 10 ** (MAX_TEXT - 1)  # an integer id must print in MAX_TEXT characters (sign included)
MAX_FLOAT_INT = 2 ** 53  # integers up to this are exact as floats (and far from overflowing one)
SHOWN = 60  # characters of a bad value quoted in a reason

# Error kinds (the DLQ's error classes): what is wrong, never the record's content.
MISSING, BAD_TYPE, BAD_VALUE, TOO_DEEP = "missing_field", "bad_type", "bad_value", "too_deep"


class CdrError(ValueError):
    """A record that breaks the contract; `field` names the offending field, `kind` says how
    (missing_field, bad_type, bad_value or too_deep)."""

    def __init__(self, field: str, reason: str, kind: str = BAD_TYPE) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Cdr:
    """One call attempt. `started_at` is always time-zone aware (UTC)."""

    call_id: str
    started_at: datetime
    direction: str = "outbound"
    caller_id: str = ""
    destination: str = ""
    answered: bool = False
    duration_s: float = 0.0
    sip_code: int | None = None
    attestation: str | None = None
    tenant: str | None = None
    campaign: str | None = None
    carrier: str | None = None
    purpose: str | None = None  # why the call was made (PURPOSES); rules of telemarketing and automated calls
    ingress_country: str | None = None  # ISO 3166 alpha-2: where the call entered the network (carriers)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in the canonical field names (time as ISO 8601 with Z). Built by hand:
        `dataclasses.asdict` deep-copies, and this runs for every record the stream forwards."""
        data = {name: getattr(self, name) for name in FIELDS}
        data["started_at"] = iso_utc(self.started_at)
        for name in SPARSE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, second precision unless the source had sub-seconds."""
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


_JSON_TOKENS = re.compile(r'[\[\]{}"\\]')


def parse_json(text: str) -> Any:
    """`json.loads` of one record with this contract's limits: raises CdrError (field "record") for
    nesting deeper than MAX_DEPTH, checked before parsing, or an integer too long for Python to
    convert; json.JSONDecodeError for what is not JSON. Never RecursionError."""
    if nested_too_deep(text):
        raise CdrError("record", f"nested too deeply (more than {MAX_DEPTH} levels of arrays or objects)", TOO_DEEP)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # an integer literal past sys.get_int_max_str_digits()
        raise CdrError("record", "a number has too many digits to be read", BAD_VALUE) from exc
    except RecursionError as exc:  # not reached under MAX_DEPTH; kept so no input can crash a caller
        raise CdrError("record", "nested too deeply", TOO_DEEP) from exc


def nested_too_deep(text: str) -> bool:
    """Whether brackets outside JSON strings nest deeper than MAX_DEPTH. Free for a flat record (too
    few brackets to count); otherwise one pass over the brackets, quotes and backslashes only (a regex
    over whole strings would backtrack on escaped quotes)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth, in_string, escaped = 0, False, -1
    for match in _JSON_TOKENS.finditer(text):
        position, char = match.start(), match.group()
        if position == escaped:
            continue
        if in_string:
            if char == "\\":
                escaped = position + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def zone(name: str) -> tzinfo:
    """A zoneinfo zone by IANA name, with an error that says which name was wrong."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CdrError("time zone", f"unknown time zone {name!r}") from exc


def parse_time(value: Any, assume_tz: tzinfo | None = None) -> datetime:
    """Parse `started_at`. A time without an offset is rejected unless the user named its zone; a time
    outside EARLIEST..LATEST is rejected (see the module docstring)."""
    if isinstance(value, datetime):
        moment = value
    elif hasattr(value, "to_pydatetime"):  # pandas Timestamp from Parquet
        moment = value.to_pydatetime()
    elif isinstance(value, str) and value.strip():
        text = _checked_text("started_at", value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise CdrError("started_at", f"not an ISO 8601 time: {_show(value)}") from exc
    else:
        raise CdrError("started_at", f"expected an ISO 8601 time, got {_describe(value)}")
    try:
        naive = moment.tzinfo is None or moment.utcoffset() is None
        if naive and assume_tz is not None:
            moment = moment.replace(tzinfo=assume_tz)
        utc = None if naive and assume_tz is None else moment.astimezone(UTC)
    except (OverflowError, ValueError):  # year 1 with a positive offset, year 9999 with a negative one
        naive, utc = False, None
    if utc is not None and EARLIEST <= utc < LATEST:
        return utc
    shown = _show(value if isinstance(value, str) else str(value), quote=False)
    if naive and assume_tz is None:
        raise CdrError("started_at", f"time {shown} has no UTC offset (pass --assume-tz to name its zone)")
    if utc is None or not EARLIEST <= utc < LATEST:
        raise CdrError("started_at", f"time {shown} is out of range "
                                     f"({iso_utc(EARLIEST)} to {iso_utc(LATEST)}, excluded)", BAD_VALUE)
    return utc


def parse_cdr(record: Mapping[str, Any], assume_tz: tzinfo | None = None) -> Cdr:
    """Validate one mapping against the canonical contract; raise CdrError naming the field."""
    if not isinstance(record, Mapping):
        raise CdrError("record", f"expected a JSON object, got {_describe(record)}")
    call_id = _required_text(record, "call_id")
    started_at = parse_time(_required(record, "started_at"), assume_tz)
    direction = _text(record, "direction") or "outbound"
    if direction not in DIRECTIONS:
        raise CdrError("direction", f"must be one of {', '.join(DIRECTIONS)}, got {_show(direction)}")
    attestation = _text(record, "attestation")
    if attestation is not None:
        attestation = attestation.upper()
        if attestation not in ATTESTATIONS:
            raise CdrError("attestation", f"must be A, B or C, got {_show(attestation)}")
    return Cdr(
        call_id=call_id,
        started_at=started_at,
        direction=direction,
        caller_id=_text(record, "caller_id") or "",
        destination=_text(record, "destination") or "",
        answered=_bool(record, "answered"),
        duration_s=_duration(record),
        sip_code=_sip_code(record),
        attestation=attestation,
        **{name: _text(record, name) for name in OPTIONAL_TEXT},
        purpose=_purpose(record),
        ingress_country=_country(record, "ingress_country"),
    )


def _purpose(record: Mapping[str, Any]) -> str | None:
    """`purpose`, lower-cased; a value outside PURPOSES is refused (a typo would silently turn rules off)."""
    text = _text(record, "purpose")
    return None if text is None else normal_purpose(text)


def normal_purpose(text: str) -> str:
    """A purpose as records and the check API write it, lower-cased; CdrError outside PURPOSES."""
    purpose = text.strip().lower()
    if purpose not in PURPOSES:
        raise CdrError("purpose", f"must be one of {', '.join(PURPOSES)}, got {_show(text)}", BAD_VALUE)
    return purpose


def _country(record: Mapping[str, Any], field: str) -> str | None:
    """An ISO 3166 alpha-2 code, upper-cased (two letters; whether the code is assigned is not checked)."""
    text = _text(record, field)
    if text is None:
        return None
    code = text.strip().upper()
    if not _COUNTRY.fullmatch(code):
        raise CdrError(field, f"expected an ISO 3166 alpha-2 country code such as FR, got {_show(text)}", BAD_VALUE)
    return code


def _missing(value: Any) -> bool:
    if value is None:
        return True
    kind = type(value)
    if kind is str:
        return value == ""
    if kind is int or kind is bool:
        return False
    if isinstance(value, float) and math.isnan(value):
        return True
    return bool(isinstance(value, str) and value == "") or _is_na(value)


def _is_na(value: Any) -> bool:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False
    return value is pd.NaT or value is pd.NA


def _describe(value: Any) -> str:
    """A bad value for a reason, bounded whatever it is: containers by kind (never walked: they may
    nest deep), long text and integers shortened (an int of 4300+ digits cannot even be printed)."""
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a JSON object (records are flat)"
    if isinstance(value, list | tuple):
        return "a JSON array (records are flat)"
    if isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT < value < MAX_INT:
        return f"int of {'about ' if value.bit_length() > 14_000 else ''}{_digits(value)} digits"
    if isinstance(value, str):
        return f"str {_show(value)}"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= SHOWN else text[:SHOWN] + '...'}"


def _digits(value: int) -> int:
    """Decimal digits of a big int without printing it (exact to within one for huge values)."""
    if value.bit_length() > 14_000:  # str() would hit Python's 4300-digit limit
        return int(value.bit_length() * 0.30103) + 1
    return len(str(abs(value)))


def _show(text: Any, quote: bool = True) -> str:
    """Text quoted in a reason: repr (which escapes surrogates and control characters) of at most SHOWN
    characters of it, itself cut at twice that."""
    if not isinstance(text, str):
        return _describe(text)
    short = text[:SHOWN]
    shown = repr(short) if quote or not short.isprintable() else short
    if len(shown) > 2 * SHOWN:  # escapes of astral or control characters: up to 10 characters each
        shown = shown[:2 * SHOWN] + "..."
    return shown if len(short) == len(text) else f"{shown}... ({len(text)} characters)"


def _required(record: Mapping[str, Any], field: str) -> Any:
    value = record.get(field)
    if _missing(value):
        raise CdrError(field, "required field is missing", MISSING)
    return value


def _required_text(record: Mapping[str, Any], field: str) -> str:
    return _as_text(field, _required(record, field))


def _text(record: Mapping[str, Any], field: str) -> str | None:
    value = record.get(field)
    if type(value) is str and len(value) <= MAX_TEXT and value.isascii():  # most text: nothing to check
        return value or None
    if _missing(value):
        return None
    return _as_text(field, value)


def _as_text(field: str, value: Any) -> str:
    """A text field: a string, or an integer written as one (ids and numbers exported as numbers)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise CdrError(field, f"expected a string, got {_describe(value)}")
    if isinstance(value, int):
        if not -MAX_INT < value < MAX_INT:
            raise CdrError(field, f"longer than {MAX_TEXT} characters: {_describe(value)}", BAD_VALUE)
        return str(value)
    return _checked_text(field, value)


def _checked_text(field: str, text: str) -> str:
    """At most MAX_TEXT characters, and encodable as UTF-8 (no lone surrogate)."""
    if len(text) > MAX_TEXT:
        raise CdrError(field, f"longer than {MAX_TEXT} characters ({len(text)})", BAD_VALUE)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CdrError(field, f"not valid Unicode text: lone surrogate U+{ord(text[exc.start]):04X} at "
                                  f"character {exc.start + 1} (invalid UTF-8 or a broken \\u escape)",
                           BAD_VALUE) from exc
    return text


def _bool(record: Mapping[str, Any], field: str) -> bool:
    value = record.get(field)
    if value is True or value is False:
        return value
    if _missing(value):
        return False
    if isinstance(value, bool):
        return value
    if hasattr(value, "item") and type(value).__name__ == "bool_":  # numpy bool from Parquet
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS:
        return TRUE_WORDS[value.strip().lower()]
    raise CdrError(field, f"expected true/false/1/0, got {_describe(value)}")


def _number(record: Mapping[str, Any], field: str) -> float | None:
    value = record.get(field)
    if type(value) is int and -MAX_FLOAT_INT < value < MAX_FLOAT_INT:  # most numbers: nothing to check
        return float(value)
    if _missing(value):
        return None
    if isinstance(value, bool):
        raise CdrError(field, f"expected a number, got {_describe(value)}")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise CdrError(field, f"expected a number, got {_describe(value)}")
    try:
        number = float(value)
    except OverflowError as exc:  # an int past 1.8e308
        raise CdrError(field, f"number out of range: {_describe(value)}", BAD_VALUE) from exc
    except (TypeError, ValueError) as exc:
        raise CdrError(field, f"expected a number, got {_describe(value)}") from exc
    if not math.isfinite(number):
        raise CdrError(field, f"expected a finite number, got {_show(value)}", BAD_VALUE)
    return number


def _duration(record: Mapping[str, Any]) -> float:
    number = _number(record, "duration_s")
    if number is None:
        return 0.0
    if number < 0:
        raise CdrError("duration_s", f"must be >= 0, got {number:g}")
    if number > MAX_DURATION_S:
        raise CdrError("duration_s", f"must be at most {MAX_DURATION_S} (7 days), got {number:g}", BAD_VALUE)
    return number


def _sip_code(record: Mapping[str, Any]) -> int | None:
    number = _number(record, "sip_code")
    if number is None:
        return None
    if number != int(number) or not 100 <= number <= 699:
        raise CdrError("sip_code", f"expected a SIP status code 100-699, got {_show(record.get('sip_code'))}")
    return int(number)
