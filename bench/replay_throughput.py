"""Replay throughput (CDRs/s) on 1 million generated CDRs, and classification rate.

Run: .venv/bin/python bench/replay_throughput.py [--records N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.generate import cdrs, write_jsonl
from cidwatch.replay import ReplayResult, canonical_records, load_records, run_engine
from rules import numbers
from rules.engine import Engine
from rules.pack import load_packs


def classification(n: int) -> None:
    records = list(cdrs(n, seed=2))
    mixed = [r["caller_id"] for r in records] + [r["destination"] for r in records]
    t0 = time.perf_counter()
    for raw in mixed:
        numbers.classify_reference(raw)
    reference = len(mixed) / (time.perf_counter() - t0)
    numbers._classify_stripped.cache_clear()
    t0 = time.perf_counter()
    for raw in mixed:
        numbers.classify(raw)
    cached = len(mixed) / (time.perf_counter() - t0)
    print(f"classification of {len(mixed):,} numbers (half CLIs from a pool of 3,000, half unique destinations):")
    print(f"  phonenumbers alone: {reference:,.0f} numbers/s")
    print(f"  cidwatch classify (memoised): {cached:,.0f} numbers/s ({cached / reference:.1f}x)")


def replay(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_jsonl(Path(tmp) / "bench.jsonl", n)
        size = path.stat().st_size / 1e6
        result = ReplayResult()
        t0 = time.perf_counter()
        records = load_records(canonical_records([path]), result, None)
        t1 = time.perf_counter()
        engine = Engine(load_packs())
        from datetime import UTC, datetime

        run_engine(records, engine, result, datetime.now(UTC))
        t2 = time.perf_counter()
    print(f"replay of {n:,} CDRs ({size:.0f} MB JSONL), {len(result.decisions):,} decisions:")
    print(f"  read + validate: {n / (t1 - t0):,.0f} CDRs/s ({t1 - t0:.1f} s)")
    print(f"  rule engine:     {n / (t2 - t1):,.0f} CDRs/s ({t2 - t1:.1f} s)")
    print(f"  end to end:      {n / (t2 - t0):,.0f} CDRs/s ({t2 - t0:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--numbers", type=int, default=200_000, help="CDRs whose two numbers are classified")
    args = parser.parse_args()
    classification(args.numbers)
    replay(args.records)


if __name__ == "__main__":
    main()
