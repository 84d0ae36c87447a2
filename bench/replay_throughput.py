"""Replay throughput (CDRs/s) on 1 million generated CDRs, and classification rate.

Run: .venv/bin/python bench/replay_throughput.py [--records N]

Read + validate and the rule engine are measured in this one process (`load_records`, `run_engine`);
then `replay_files`, what `cidwatch replay` runs, end to end on every core (`--workers`, default all).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.generate import cdrs, write_jsonl
from cidwatch.replay import ReplayResult, canonical_records, default_workers, load_records, replay_files, run_engine
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


def replay(n: int, workers: int) -> None:
    from datetime import UTC, datetime

    with tempfile.TemporaryDirectory() as tmp:
        path = write_jsonl(Path(tmp) / "bench.jsonl", n)
        size = path.stat().st_size / 1e6
        result = ReplayResult()
        t0 = time.perf_counter()
        records = load_records(canonical_records([path]), result, None)
        t1 = time.perf_counter()
        engine = Engine(load_packs())
        run_engine(records, engine, result, datetime.now(UTC))
        t2 = time.perf_counter()
        files = replay_files([path], Engine(load_packs()), workers=workers)
        t3 = time.perf_counter()
    assert [d.id for d in files.decisions] == [d.id for d in result.decisions]
    print(f"replay of {n:,} CDRs ({size:.0f} MB JSONL), {len(result.decisions):,} decisions:")
    print(f"  read + validate, one process: {n / (t1 - t0):,.0f} CDRs/s ({t1 - t0:.1f} s)")
    print(f"  rule engine, one process:     {n / (t2 - t1):,.0f} CDRs/s ({t2 - t1:.1f} s)")
    print(f"  end to end, one process:      {n / (t2 - t0):,.0f} CDRs/s ({t2 - t0:.1f} s)")
    print(f"  end to end, replay_files, {workers} workers: {n / (t3 - t2):,.0f} CDRs/s ({t3 - t2:.1f} s) (one process "
          "under 32 MB of JSON Lines)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--numbers", type=int, default=200_000, help="CDRs whose two numbers are classified")
    parser.add_argument("--workers", type=int, default=default_workers(), help="processes for replay_files")
    args = parser.parse_args()
    classification(args.numbers)
    replay(args.records, args.workers)


if __name__ == "__main__":  # also keeps replay's worker processes from running it
    main()
