"""Validation of raw CDR messages and the dead-letter records of those that fail.

A bad record is never lost: its original bytes (base64, or for an oversized value the first 64 KB
with the full length and SHA-256) travel to the `dlq` topic with the reason and where it came from.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from rules.cdr import Cdr, CdrError, parse_cdr

OVERSIZED_KEEP = 64 * 1024


@dataclass(frozen=True)
class Rejected(Exception):
    """Why a message is not a canonical CDR: a short class (metric label), the field, the reason."""

    error_class: str
    field: str
    reason: str


def decode_json(value: bytes | None, max_bytes: int) -> Any:
    """Bytes to a JSON value, with the failure classified."""
    if value is None:
        raise Rejected("missing_field", "record", "empty message (no value)")
    if len(value) > max_bytes:
        raise Rejected("oversized", "record", f"value of {len(value)} bytes exceeds the maximum of {max_bytes}")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected("bad_utf8", "record", f"not valid UTF-8 at byte {exc.start}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise Rejected("not_json", "record", f"not valid JSON ({exc.msg} at {where})") from exc


def internal_error(exc: BaseException) -> Rejected:
    """A record that made the worker itself fail (a bug, not bad input): dead-lettered with the
    exception's class so it is found, counted and alerted on, never silently dropped."""
    return Rejected("internal_error", "record", f"{type(exc).__name__} while judging the record")


def validate(value: bytes | None, max_bytes: int, assume_tz: tzinfo | None = None) -> Cdr:
    """A raw message to a canonical CDR, or Rejected."""
    return cdr_from_mapping(decode_json(value, max_bytes), assume_tz)


def cdr_from_mapping(record: Any, assume_tz: tzinfo | None = None) -> Cdr:
    try:
        return parse_cdr(record, assume_tz)
    except CdrError as exc:
        error_class = "missing_field" if "required" in exc.reason else "bad_type"
        raise Rejected(error_class, exc.field, exc.reason) from exc


def dead_letter(value: bytes | None, rejected: Rejected, topic: str, partition: int, offset: int,
                key: bytes | None = None) -> dict[str, Any]:
    """The DLQ record for one rejected message."""
    original = value or b""
    oversized = rejected.error_class == "oversized"
    kept = original[:OVERSIZED_KEEP] if oversized else original
    record: dict[str, Any] = {
        "reason": rejected.reason,
        "error_class": rejected.error_class,
        "field": rejected.field,
        "source": {"topic": topic, "partition": partition, "offset": offset},
        "key": None if key is None else key.decode("utf-8", "replace"),
        "value_b64": base64.b64encode(kept).decode("ascii"),
        "value_length": len(original),
        "truncated": oversized,
    }
    if oversized:
        record["value_sha256"] = hashlib.sha256(original).hexdigest()
    return record
