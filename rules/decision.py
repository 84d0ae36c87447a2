"""The decision: the output contract read by dialers, Alertmanager and compliance officers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers

from rules.cdr import iso_utc
from rules.numbers import NumberInfo


def scope_key(scope: dict[str, str]) -> str:
    """Canonical text of a scope, so equal scopes give equal keys and ids."""
    return json.dumps(scope, sort_keys=True, separators=(",", ":"))


def scope_applies(scope: Mapping[str, str], destination: NumberInfo | None, purpose: str | None = None) -> bool:
    """Whether a block of this scope covers a call to `destination` (None: a destination not known).

    Why here: the check API and the rule `cli.used_while_blocked` must read a scope the same way. A
    scope is what the rule that made the block names: `destination_country` (the country's calling
    code, as `au.cli_not_permitted` tests it), `destination_type` (`toll_free`) and `purpose` (a
    comma-separated list: `fr.automated_not_npv`, `es.mobile_cli_commercial`). An unknown destination
    or purpose, or a scope key this version does not know, is covered: a block is never read as
    narrower than it may be, so a dialer is never told "allowed" by mistake.
    """
    for name, wanted in scope.items():
        if name == "purpose":
            if purpose is not None and purpose not in str(wanted).split(","):
                return False
            continue
        if destination is None:
            continue  # a destination not known is in every destination scope
        if name == "destination_country":
            code = phonenumbers.country_code_for_region(str(wanted))
            if code and destination.calling_code != code:
                return False
        elif name == "destination_type" and wanted == "toll_free" and not (destination.valid
                                                                            and destination.toll_free):
            return False
    return True


def decision_id(*parts: str) -> str:
    """Deterministic id from what identifies a decision: the same input gives the same id anywhere."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return digest[:32]


def block_key(caller_id: str, rule: str, scope: dict[str, str]) -> str:
    """Key of the compacted blocks topic: one rule's unblock never lifts another rule's block."""
    return f"{caller_id}|{rule}|{scope_key(scope)}"


def cleared_message(caller_id: str, rule: str, by: str | None = None, reason: str | None = None) -> str:
    """The message of an operator's unblock, shared by `blocks clear` and the worker (which gets `by` and
    `reason` in the clear envelope, so both write the same unblock): who cleared it, and why."""
    text = f"Block of {caller_id} by {rule} cleared by {by or 'an operator'}"
    return f"{text}: {reason}" if reason else f"{text}."


def unblock_of(block: Mapping[str, Any], at: datetime, message: str) -> Decision:
    """The unblock that ends `block` (a block decision as a dict) at `at`: its id derives from the
    block's, so the worker, replay and `blocks clear` write the same unblock for the same block."""
    return Decision(
        id=decision_id("unblock", block["id"]),
        kind="unblock", rule=block["rule"], severity=block["severity"], caller_id=block["caller_id"],
        call_id=None, tenant=block.get("tenant"), at=at, scope=dict(block.get("scope") or {}),
        until=None if block.get("until") is None else at, count=block.get("count", 1),
        threshold=block.get("threshold"), message=message, source=block.get("source", ""),
    )


def resolve_of(alert: Mapping[str, Any], at: datetime, message: str, call_id: str | None = None) -> Decision:
    """The `resolve` that ends a threshold rule's alert on a sliding window (its "cleared", as Yeti pairs
    alarms): the alert's identity (rule, severity, caller ID, scope), an id derived from the alert's."""
    return Decision(
        id=decision_id("resolve", alert["id"]),
        kind="resolve", rule=alert["rule"], severity=alert["severity"], caller_id=alert["caller_id"],
        call_id=call_id, tenant=alert.get("tenant"), at=at, scope=dict(alert.get("scope") or {}),
        until=None, count=alert.get("count", 1), threshold=alert.get("threshold"), message=message,
        source=alert.get("source", ""),
    )


@dataclass(frozen=True)
class Decision:
    id: str
    kind: str  # alert | block | unblock | resolve (an alert cleared)
    rule: str
    severity: str
    caller_id: str
    call_id: str | None
    tenant: str | None
    at: datetime
    scope: dict[str, str] = field(default_factory=dict)
    until: datetime | None = None
    count: int = 1
    threshold: float | None = None
    message: str = ""
    source: str = ""
    forecast_at: datetime | None = None  # a forecast's projected time of reaching the block level

    @property
    def block_key(self) -> str:
        return block_key(self.caller_id, self.rule, self.scope)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "id": self.id,
            "kind": self.kind,
            "rule": self.rule,
            "severity": self.severity,
            "caller_id": self.caller_id,
            "call_id": self.call_id,
            "tenant": self.tenant,
            "at": iso_utc(self.at),
            "scope": dict(self.scope),
            "until": None if self.until is None else iso_utc(self.until),
            "count": self.count,
            "threshold": self.threshold,
            "message": self.message,
            "source": self.source,
        }
        if self.forecast_at is not None:  # only forecasts carry it: every other decision reads as before
            data["forecast_at"] = iso_utc(self.forecast_at)
        return data

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()
