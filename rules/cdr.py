"""The canonical CDR: the contract every input (file, topic, adapter) is converted to.

Pure Python, no Faust import: `replay`, the adapters and the stream all validate records here,
so a record is rejected for the same reason wherever it enters.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DIRECTIONS = ("outbound", "inbound", "internal")
ATTESTATIONS = ("A", "B", "C")
OPTIONAL_TEXT = ("tenant", "campaign", "carrier")
FIELDS = (
    "call_id", "started_at", "direction", "caller_id", "destination", "answered", "duration_s",
    "sip_code", "attestation", "tenant", "campaign", "carrier",
)
TRUE_WORDS = {"true": True, "1": True, "false": False, "0": False}


class CdrError(ValueError):
    """A record that breaks the contract; `field` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in the canonical field names (time as ISO 8601 with Z). Built by hand:
        `dataclasses.asdict` deep-copies, and this runs for every record the stream forwards."""
        data = {name: getattr(self, name) for name in FIELDS}
        data["started_at"] = iso_utc(self.started_at)
        return data

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, second precision unless the source had sub-seconds."""
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def zone(name: str) -> tzinfo:
    """A zoneinfo zone by IANA name, with an error that says which name was wrong."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CdrError("time zone", f"unknown time zone {name!r}") from exc


def parse_time(value: Any, assume_tz: tzinfo | None = None) -> datetime:
    """Parse `started_at`. A time without an offset is rejected unless the user named its zone."""
    if isinstance(value, datetime):
        moment = value
    elif hasattr(value, "to_pydatetime"):  # pandas Timestamp from Parquet
        moment = value.to_pydatetime()
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise CdrError("started_at", f"not an ISO 8601 time: {value!r}") from exc
    else:
        raise CdrError("started_at", f"expected an ISO 8601 time, got {_describe(value)}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        if assume_tz is None:
            raise CdrError("started_at", f"time {value!s} has no UTC offset (pass --assume-tz to name its zone)")
        moment = moment.replace(tzinfo=assume_tz)
    return moment.astimezone(UTC)


def parse_cdr(record: Mapping[str, Any], assume_tz: tzinfo | None = None) -> Cdr:
    """Validate one mapping against the canonical contract; raise CdrError naming the field."""
    if not isinstance(record, Mapping):
        raise CdrError("record", f"expected a JSON object, got {_describe(record)}")
    call_id = _required_text(record, "call_id")
    started_at = parse_time(_required(record, "started_at"), assume_tz)
    direction = _text(record, "direction") or "outbound"
    if direction not in DIRECTIONS:
        raise CdrError("direction", f"must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    attestation = _text(record, "attestation")
    if attestation is not None:
        attestation = attestation.upper()
        if attestation not in ATTESTATIONS:
            raise CdrError("attestation", f"must be A, B or C, got {attestation!r}")
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
    )


def _missing(value: Any) -> bool:
    if value is None:
        return True
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
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"


def _required(record: Mapping[str, Any], field: str) -> Any:
    value = record.get(field)
    if _missing(value):
        raise CdrError(field, "required field is missing")
    return value


def _required_text(record: Mapping[str, Any], field: str) -> str:
    value = _required(record, field)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise CdrError(field, f"expected a string, got {_describe(value)}")
    return str(value)


def _text(record: Mapping[str, Any], field: str) -> str | None:
    value = record.get(field)
    if _missing(value):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise CdrError(field, f"expected a string, got {_describe(value)}")
    return str(value)


def _bool(record: Mapping[str, Any], field: str) -> bool:
    value = record.get(field)
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
    if _missing(value):
        return None
    if isinstance(value, bool):
        raise CdrError(field, f"expected a number, got {_describe(value)}")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise CdrError(field, f"expected a number, got {_describe(value)}") from exc
    if not math.isfinite(number):
        raise CdrError(field, f"expected a finite number, got {value!r}")
    return number


def _duration(record: Mapping[str, Any]) -> float:
    number = _number(record, "duration_s")
    if number is None:
        return 0.0
    if number < 0:
        raise CdrError("duration_s", f"must be >= 0, got {number:g}")
    return number


def _sip_code(record: Mapping[str, Any]) -> int | None:
    number = _number(record, "sip_code")
    if number is None:
        return None
    if number != int(number) or not 100 <= number <= 699:
        raise CdrError("sip_code", f"expected a SIP status code 100-699, got {record.get('sip_code')!r}")
    return int(number)
