"""A fixed CDR set that exercises every stream concern: thresholds, a Paris-midnight unblock, standing
blocks, duplicates, inbound and internal calls; produced in call-end order as switches write them."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stream_harness import HASH_KEY

from cidwatch.inputs import read_canonical
from cidwatch.replay import replay
from rules.engine import Engine
from rules.inventory import load_inventory
from rules.pack import load_packs

ROOT = Path(__file__).resolve().parents[1]
INVENTORY = ROOT / "examples" / "inventory.yaml"
OWNED_FR = "+33184884000"  # in the inventory: only the daily limit applies
ROGUE_FR = "+33184884001"  # not in the inventory: blocked twice (not authorised, and the daily limit)
DAY = datetime(2026, 1, 14, 5, 0, tzinfo=UTC)  # a past Paris day: the wall clock lifts its blocks


def calls(caller: str, n: int, start: datetime, prefix: str, rng: random.Random, **extra: Any) -> list[dict]:
    out = []
    for i in range(n):
        answered = rng.random() < 0.5
        out.append(
            {
                "call_id": f"{prefix}-{i}",
                "started_at": (start + timedelta(seconds=90 * i)).isoformat(),
                "caller_id": caller,
                "destination": f"+336{rng.randint(10**7, 10**8 - 1)}",
                "answered": answered,
                "duration_s": rng.randint(5, 80) if answered else 0,
                "tenant": "acme",
                **extra,
            }
        )
    return out


def stream_records(seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    records = calls(OWNED_FR, 260, DAY, "own", rng) + calls(ROGUE_FR, 255, DAY, "rogue", rng)
    t = DAY + timedelta(hours=8)
    singles = [
        ("+18005550100", "+18885550199"),
        ("+448701234567", "+442071838750"),
        ("0207 183 8750", "+44207"),
        ("+611300123456", "+61291234567"),
        ("+13125550188", "+14155550100"),
        ("+18445550111", "+61291234567"),
    ]
    for i, (caller, destination) in enumerate(singles):
        records.append(
            {
                "call_id": f"single-{i}",
                "started_at": (t + timedelta(minutes=i)).isoformat(),
                "caller_id": caller,
                "destination": destination,
                "tenant": "acme",
            }
        )
    records.append(
        {
            "call_id": "cb-1",
            "started_at": (t + timedelta(minutes=9)).isoformat(),
            "direction": "inbound",
            "caller_id": "+33612345678",
            "destination": OWNED_FR,
            "answered": False,
        }
    )
    records.append(
        {
            "call_id": "int-1",
            "started_at": (t + timedelta(minutes=10)).isoformat(),
            "direction": "internal",
            "caller_id": "1001",
            "destination": "1002",
        }
    )
    records += [dict(r) for r in records[100:110]]  # delivered again
    return records


def call_end_order(records: list[dict]) -> list[dict]:
    def end(record: dict) -> datetime:
        return datetime.fromisoformat(record["started_at"]) + timedelta(seconds=record.get("duration_s", 0))

    return sorted(records, key=end)


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


JURISDICTIONS = ROOT / "tests" / "fixtures" / "jurisdictions.jsonl"  # the six jurisdiction rules' edges
JURISDICTIONS_INVENTORY = ROOT / "tests" / "fixtures" / "jurisdictions-inventory.yaml"


def replay_decisions(path: Path, inventory: Path = INVENTORY) -> list[dict]:
    engine = Engine(load_packs(), load_inventory(inventory), hash_key=HASH_KEY.encode())  # the workers' key
    result = replay(read_canonical(path), engine, now=datetime.now(UTC))
    return [d.to_dict() for d in result.decisions]


def comparable(decisions: list[dict]) -> set[tuple]:
    return {
        (d["id"], d["kind"], d["rule"], d["caller_id"], d["call_id"], d["at"], json.dumps(d["scope"]))
        for d in decisions
    }
