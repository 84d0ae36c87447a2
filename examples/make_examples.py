"""Regenerate the example CDR file shipped for the README's replay walk-through (deterministic).

It is package data (`cidwatch replay --example` reads it from an installed wheel), so it is written to
cidwatch/examples/; examples/cdrs.jsonl and examples/inventory.yaml are links to it.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "cidwatch" / "examples"
START = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)  # the evening before the spring DST change in Paris


def call(rng: random.Random, n: int, caller: str, dest: str, at: datetime, **extra: object) -> dict:
    answered = rng.random() < 0.45
    record = {
        "call_id": f"ex-{n:05d}", "started_at": at.isoformat().replace("+00:00", "Z"), "direction": "outbound",
        "caller_id": caller, "destination": dest, "answered": answered,
        "duration_s": round(rng.uniform(20, 400), 1) if answered else 0, "sip_code": 200 if answered else 480,
        "attestation": "A", "tenant": "acme", "campaign": "spring",
    }
    record.update(extra)
    return record


def main() -> None:
    rng = random.Random(7)
    records = []
    t = START + timedelta(hours=3)  # 00:00 in Paris
    # A French geographic CLI running past 250 calls in one Paris day (Sunday 29 March 2026, DST day).
    for _ in range(262):
        t += timedelta(seconds=rng.randint(60, 140))
        records.append(call(rng, len(records), "+33 1 84 88 40 00", f"+336{rng.randint(10**7, 10**8 - 1)}", t))
    # An NPV number doing the same: never limited.
    for i in range(260):
        records.append(call(rng, len(records), "+33162000010", f"+337{rng.randint(10**7, 10**8 - 1)}",
                            START + timedelta(minutes=3 * i)))
    base = START + timedelta(hours=14)
    records += [
        call(rng, len(records), "+18005550100", "+18885550199", base),                       # toll-free to toll-free
        call(rng, len(records), "+18445550111", "+61291234567", base + timedelta(minutes=1)),  # toll-free to AU
        call(rng, len(records), "+448701234567", "+442071838750", base + timedelta(minutes=2)),  # UK 0870
        call(rng, len(records), "0207 183 8750", "+442071838750", base + timedelta(minutes=3)),  # not E.164
        call(rng, len(records), "anonymous", "+33612345678", base + timedelta(minutes=4)),
        call(rng, len(records), "+611300123456", "+61291234567", base + timedelta(minutes=5)),  # AU 1300
        call(rng, len(records), "+12125550143", "+13125550100", base + timedelta(minutes=6)),   # not in inventory
        call(rng, len(records), "+13125550188", "+14155550100", base + timedelta(minutes=7)),   # no CNAM
        {"call_id": "ex-cb-1", "started_at": (base + timedelta(minutes=8)).isoformat(), "direction": "inbound",
         "caller_id": "+33612345678", "destination": "+33184884000", "answered": False},
        {"call_id": "ex-int-1", "started_at": (base + timedelta(minutes=9)).isoformat(), "direction": "internal",
         "caller_id": "1001", "destination": "1002", "answered": True, "duration_s": 30},
    ]
    records.append(dict(records[5]))  # the same call delivered twice
    records.append({"call_id": "ex-bad-1", "started_at": "2026-03-29 10:00:00", "caller_id": "+33184884000"})
    records.sort(key=lambda r: r["started_at"])
    with (OUT / "cdrs.jsonl").open("w") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
