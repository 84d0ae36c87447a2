"""The workers' internal protocol: the repartition topic and the control envelopes sent through it.

Every message on `cdr.by-subject` is keyed by its subject (a normalised caller ID, or for inbound
calls our number called), so it lands on the partition that owns that subject's state. A CDR travels
as `{"t": "cdr", "cdr": {...}, "ts": produced_at}`; wall-clock timers, inventory pushes and operators
send control envelopes the owning worker applies in order with that subject's records:
- `expire`: lift the subject's time-boxed blocks due by `now` (the wall clock), and with `clears` its
  threshold levels' clears due by then (an idle worker's clock standing in for event time,
  streams/clears.py);
- `lift`: end one block (`key`) at `at`, with `reason` (an inventory push removed its cause);
- `clear`: an operator's unblock of the subject's blocks (all rules, or `rule`) at `at`, by whom (`by`) and
  why (`reason`).
A call that a keyed rule also judges (a count per tenant and consumer, `RuleSpec.keyed`) travels once
more after its caller ID's partition judged it, as `{"t": "keyed", "cdr": {...}}` keyed by the state's
key, to the partition that owns that state.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

BY_SUBJECT = "cdr.by-subject"


def envelope(kind: str, **fields: Any) -> bytes:
    return json.dumps({"t": kind, **fields}, separators=(",", ":")).encode()


def cdr_envelope(record: dict[str, Any], produced_at: float | None) -> bytes:
    return envelope("cdr", cdr=record, ts=produced_at)


def keyed_envelope(record: dict[str, Any]) -> bytes:
    return envelope("keyed", cdr=record)


def expire_envelope(now: datetime, clears: bool = False) -> bytes:
    return envelope("expire", now=now.isoformat(), **({"clears": True} if clears else {}))


def lift_envelope(key: str, at: datetime, reason: str) -> bytes:
    return envelope("lift", key=key, at=at.isoformat(), reason=reason)


def clear_envelope(rule: str | None, at: datetime, by: str | None = None, reason: str | None = None) -> bytes:
    return envelope("clear", rule=rule, at=at.isoformat(), by=by, reason=reason)
