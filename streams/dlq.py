"""Validation of raw CDR messages and the dead-letter records of those that fail.

A bad record is never lost: its original bytes (base64, or for an oversized value the first 64 KB
with the full length and SHA-256) travel to the `dlq` topic with the reason and where it came from.

`validate` is total: for any bytes it returns a canonical CDR or raises `Rejected`, nothing else (the
bounds that make this so are in `rules/cdr.py`). Error classes, the DLQ metric's `reason` label:
not_json, bad_utf8, oversized, too_deep (nesting), missing_field, bad_type (a value of the wrong
type), bad_value (the right type, out of bounds: a time outside 2000-2100, a lone surrogate, a text
too long, a number too large), conversion (adapters), and internal_error (a record the engine could
not judge: `internal_error`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from rules.cdr import Cdr, CdrError, parse_cdr, parse_json

OVERSIZED_KEEP = 64 * 1024


@dataclass(unsafe_hash=True)
class Rejected(Exception):
    """Why a message is not a canonical CDR: a short class (metric label), the field, the reason.

    Not frozen: Python sets `__traceback__` on an exception leaving a `@contextmanager` block, which a
    frozen dataclass refuses (FrozenInstanceError instead of the reject)."""

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
        return parse_json(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise Rejected("not_json", "record", f"not valid JSON ({exc.msg} at {where})") from exc
    except CdrError as exc:  # nested too deeply, a number too long
        raise Rejected(exc.kind, exc.field, exc.reason) from exc


def validate(value: bytes | None, max_bytes: int, assume_tz: tzinfo | None = None) -> Cdr:
    """A raw message to a canonical CDR, or Rejected."""
    return cdr_from_mapping(decode_json(value, max_bytes), assume_tz)


def cdr_from_mapping(record: Any, assume_tz: tzinfo | None = None) -> Cdr:
    try:
        return parse_cdr(record, assume_tz)
    except CdrError as exc:
        raise Rejected(exc.kind, exc.field, exc.reason) from exc


def internal_error(exc: BaseException) -> Rejected:
    """The reject of a record that passed validation but that the engine failed to judge: dead-letter
    it with this (never drop it), so a bug shows up in the DLQ and its metric instead of losing a call."""
    return Rejected("internal_error", "record", f"the engine raised {type(exc).__name__} on this record")


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
