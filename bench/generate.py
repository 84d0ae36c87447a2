"""Generated CDRs with realistic cardinality: a few thousand CLIs, mostly unique destinations."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

COUNTRIES = [  # (calling code, national prefix pool, national digits)
    ("33", ["1", "2", "3", "4", "5", "6", "7", "9"], 8),
    ("44", ["20", "121", "161", "7700", "7911"], 8),
    ("1", ["212", "312", "415", "646", "800", "888"], 7),
    ("49", ["30", "40", "89", "151", "160"], 8),
    ("61", ["2", "3", "4", "7", "8"], 8),
]


def _number(rng: random.Random) -> str:
    code, prefixes, digits = rng.choice(COUNTRIES)
    prefix = rng.choice(prefixes)
    return f"+{code}{prefix}{rng.randint(0, 10 ** (digits + 1 - len(prefix)) - 1):0{digits + 1 - len(prefix)}d}"


def cdrs(n: int, clis: int = 3000, seed: int = 1) -> Iterator[dict]:
    rng = random.Random(seed)
    callers = [_number(rng) for _ in range(clis)]
    weights = [1 / (i + 1) ** 0.8 for i in range(clis)]  # a few busy CLIs, a long tail
    start = datetime(2026, 6, 1, 6, tzinfo=UTC)
    step = timedelta(days=3) / n
    for i, caller in enumerate(rng.choices(callers, weights, k=n)):
        answered = rng.random() < 0.4
        yield {
            "call_id": f"b{i}", "started_at": (start + i * step).isoformat().replace("+00:00", "Z"),
            "direction": "outbound", "caller_id": caller, "destination": _number(rng), "answered": answered,
            "duration_s": round(rng.expovariate(1 / 90), 1) if answered else 0,
            "sip_code": 200 if answered else rng.choice((480, 486, 487, 603, 608)),
            "attestation": rng.choice("AAAB"), "tenant": rng.choice(("acme", "globex", "initech")),
        }


def write_jsonl(path: Path, n: int, seed: int = 1) -> Path:
    with path.open("w") as handle:
        for record in cdrs(n, seed=seed):
            handle.write(json.dumps(record) + "\n")
    return path
