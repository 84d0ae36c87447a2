"""Hostile records of each kind the issue names, as JSON Lines bytes, with the reject each must get.

Shared by the validation, replay, produce and stream tests, so all of them cover the same lines.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from stream_fixtures import DAY, OWNED_FR, ROGUE_FR, calls

AT = "2026-05-04T10:00:00Z"


@dataclass(frozen=True)
class Hostile:
    kind: str
    line: bytes  # one JSON Lines line, without its newline
    error_class: str  # the DLQ's
    field: str
    reason: str  # a fragment of the reason


def record(kind: str, **fields: Any) -> dict[str, Any]:
    return {"call_id": f"h-{kind}", "started_at": AT, "caller_id": "+33184884001", "destination": "+33612345678",
            **fields}


def raw(kind: str, **fields: str) -> bytes:
    """A record whose `fields` are JSON text written as is (what json.dumps will not write)."""
    text = json.dumps(record(kind, **dict.fromkeys(fields, "@")))
    for name, value in fields.items():
        text = text.replace(f'"{name}": "@"', f'"{name}": {value}')
    return text.encode()


def line(kind: str, **fields: Any) -> bytes:
    return json.dumps(record(kind, **fields)).encode()  # ensure_ascii: a surrogate is written "\udfff"


HOSTILE = [
    Hostile("deep_nesting", raw("deep_nesting", extra="[" * 50_000 + "]" * 50_000), "too_deep", "record",
            "nested too deeply"),
    Hostile("huge_int", raw("huge_int", duration_s="9" * 400), "bad_value", "duration_s", "number out of range"),
    Hostile("int_past_4300_digits", raw("int_past_4300_digits", duration_s="9" * 5000), "bad_value", "record",
            "too many digits"),
    Hostile("lone_surrogate", line("lone_surrogate", caller_id="\udfff"), "bad_value", "caller_id",
            "lone surrogate U+DFFF"),
    Hostile("year_1_positive_offset", line("year_1_positive_offset", started_at="0001-01-01T00:00:00+14:00"),
            "bad_value", "started_at", "out of range"),
    Hostile("year_9999_negative_offset", line("year_9999_negative_offset", started_at="9999-12-31T23:59:59-14:00"),
            "bad_value", "started_at", "out of range"),
    Hostile("year_9999_utc", line("year_9999_utc", started_at="9999-12-31T23:59:59Z"), "bad_value", "started_at",
            "out of range"),
    Hostile("before_2000", line("before_2000", started_at="1999-12-31T23:59:59Z"), "bad_value", "started_at",
            "out of range"),
    Hostile("duration_over_7_days", line("duration_over_7_days", duration_s=8 * 86_400), "bad_value", "duration_s",
            "at most 604800"),
    Hostile("long_text", line("long_text", campaign="x" * 300), "bad_value", "campaign", "longer than 256"),
    Hostile("nested_field", line("nested_field", caller_id={"number": "+33184884001"}), "bad_type", "caller_id",
            "records are flat"),
    Hostile("not_utf8", line("not_utf8").replace(b"h-not_utf8", b"h-\xff\xfe"), "bad_utf8", "record",
            "UTF-8"),
    Hostile("not_json", b'{"call_id": "h-not_json", "started_at": ', "not_json", "record", "not valid JSON"),
]
# Over the producer's 1 MiB request limit: `produce` cannot send it (replay rejects it by field).
OVERSIZED = Hostile("oversized", line("oversized", campaign="x" * 1_100_000), "bad_value", "campaign",
                    "longer than 256")


def good_records() -> list[dict[str, Any]]:
    """~30 good records in time order that give alerts and standing blocks (no time-boxed block, so no
    unblock depends on the wall clock)."""
    rng = random.Random(7)
    records = calls(ROGUE_FR, 12, DAY, "rogue", rng) + calls(OWNED_FR, 8, DAY, "own", rng)
    t = DAY + timedelta(hours=2)
    singles = [("+18005550100", "+18885550199"), ("+448701234567", "+442071838750"), ("+611300123456", "+61291234567"),
               ("+13125550188", "+14155550100"), ("+18445550111", "+61291234567"), ("anonymous", "+33612345678")]
    for i, (caller, destination) in enumerate(singles):
        records.append({"call_id": f"single-{i}", "started_at": (t + timedelta(minutes=i)).isoformat(),
                        "caller_id": caller, "destination": destination, "tenant": "acme"})
    records.append({"call_id": "cb-1", "started_at": (t + timedelta(minutes=9)).isoformat(), "direction": "inbound",
                    "caller_id": "+33612345678", "destination": OWNED_FR, "answered": False})
    return sorted(records, key=lambda r: r["started_at"])


def mixed_lines(hostile: list[Hostile]) -> tuple[bytes, dict[int, Hostile]]:
    """JSON Lines with the hostile lines spread among the good ones; the line number of each hostile one."""
    good = [json.dumps(r).encode() for r in good_records()]
    lines: list[bytes] = []
    where: dict[int, Hostile] = {}
    step = max(1, len(good) // (len(hostile) + 1))
    for i, bad in enumerate(hostile):
        lines.extend(good[i * step:(i + 1) * step])
        lines.append(bad.line)
        where[len(lines)] = bad
    lines.extend(good[len(hostile) * step:])
    return b"".join(item + b"\n" for item in lines), where


# A CSV export with a row that is not UTF-8 (line 3) and one whose field is over the csv module's limit
# of 128 KiB (line 4): replay rejects both by field, produce skips both and sends lines 2 and 5.
CSV = (b"call_id,started_at,caller_id,destination\n"
       b"c-1,2026-05-04T10:00:00Z,+33184884001,+33612345678\n"
       b"c-2,2026-05-04T10:00:00Z,+3318\xff4884001,+33612345678\n"
       b"c-3,2026-05-04T10:00:00Z," + b"9" * 200_000 + b",+33612345678\n"
       b"c-4,2026-05-04T10:00:00Z,+448701234567,+442071838750\n")
CSV_REJECTS = [("line 3", "caller_id", "lone surrogate U+DCFF"), ("line 4", "caller_id", "longer than 256")]
