"""Builders for rule tests: CDR dicts in, decisions out, no broker (Bytewax's TestingSource idea)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from cidwatch.inputs import RawRecord
from cidwatch.replay import ReplayResult, replay
from rules.engine import Engine
from rules.inventory import Inventory, inventory_from_rows
from rules.pack import load_packs

_ids = count(1)
FAR_PAST = datetime(2000, 1, 1, tzinfo=UTC)


def cdr(caller_id: str, destination: str = "+33612345678", at: str | datetime = "2026-05-04T10:00:00Z",
        **fields: Any) -> dict[str, Any]:
    started = at if isinstance(at, str) else at.isoformat()
    record = {"call_id": f"c{next(_ids)}", "started_at": started, "caller_id": caller_id,
              "destination": destination}
    record.update(fields)
    return record


def series(caller_id: str, start: datetime, n: int, step: timedelta = timedelta(seconds=30),
           **fields: Any) -> list[dict[str, Any]]:
    return [cdr(caller_id, at=start + i * step, **fields) for i in range(n)]


def inventory(*rows: dict[str, Any]) -> Inventory:
    return inventory_from_rows(list(rows), "test")


def run(records: list[dict[str, Any]], inv: Inventory | None = None, now: datetime = FAR_PAST,
        default_region: str | None = None) -> ReplayResult:
    """Replay records with the shipped packs; `now` (the wall clock) defaults to long ago."""
    engine = Engine(load_packs(), inv, default_region)
    raw = [RawRecord("test.jsonl", f"line {i + 1}", r) for i, r in enumerate(records)]
    return replay(raw, engine, now=now)


def decisions(result: ReplayResult, rule: str | None = None) -> list[dict[str, Any]]:
    return [d.to_dict() for d in result.decisions if rule is None or d.rule == rule]


def rules_of(result: ReplayResult) -> list[tuple[str, str]]:
    """(rule, kind) of every decision, in order."""
    return [(d["rule"], d["kind"]) for d in decisions(result)]


# A sender's numbers, shared by the rule tests that need an inventory.
OWNED = inventory(
    {"number": "+33184884000", "source": "claimed", "tenant": "acme"},
    {"number": "+12125550143", "source": "claimed", "tenant": "acme"},
    {"number": "+13125550188", "source": "claimed", "cnam": "ACME"},
    {"number": "+61291234567", "source": "byoc_verified"},
    {"number": "+61291234568", "source": "ported"},
    {"number": "+18005550100", "source": "claimed"},
    {"number": "+442012345678", "source": "byoc_pending"},
)
