"""A second worker joins a busy one: the committed offsets, every 2 s, while they share the backlog.

Run on demand (not in CI): .venv/bin/python bench/join.py [--records 150000] [--gap 1.5] [--loglevel warning]

Produces --records generated CDRs (bench/generate.py, keyed by subject) to a fresh local broker, starts
worker a, then worker b --gap seconds later (memory store, 8 partitions), and prints the group's
committed offsets on the `cdr` topic every 2 s until all are committed. When the offsets stop moving
while records are left, it prints the committed offset of each partition and writes a `py-spy dump`
of both workers into --keep.

What it showed on 2026-11-30 (2 cores): before the worker committed its own offsets, some runs left
three or four partitions' committed offsets still for 10-60 s while both workers sat idle (Faust's
drain loop had marked offsets it never delivered as done). Since (streams/offsets.py), 60k CDRs are
all committed in 16-20 s, about 8-9k CDRs/s together once both judge.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.generate import cdrs, write_inventory  # noqa: E402
from bench.stream_throughput import Kafka, free_port, produce, spawn, stop  # noqa: E402

PARTITIONS = 8
PREFIX = "join."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=150_000)
    parser.add_argument("--gap", type=float, default=1.5, help="seconds between the two workers' starts")
    parser.add_argument("--loglevel", default="warning")
    parser.add_argument("--keep", type=Path, default=None, help="folder for the broker, logs and dumps")
    args = parser.parse_args()

    from cidwatch.dev import broker
    from cidwatch.produce import record_key
    from streams.settings import Settings
    from streams.topics import create_topics

    tmp = args.keep or Path(tempfile.mkdtemp(prefix="cidwatch-join-"))
    tmp.mkdir(parents=True, exist_ok=True)
    inventory = write_inventory(tmp / "inventory.yaml", seed=5)
    info = broker.start(port=free_port(), data_dir=tmp / "broker", heap="1g")
    bootstrap = f"127.0.0.1:{info.port}"
    procs: list[subprocess.Popen] = []
    try:
        create_topics(Settings(broker=f"kafka://{bootstrap}", topic_prefix=PREFIX), partitions=PARTITIONS)
        records = [(record_key(r), json.dumps(r).encode()) for r in cdrs(args.records, seed=5)]
        produce(bootstrap, f"{PREFIX}cdr", records)
        env = dict(os.environ, CIDWATCH_BROKER=f"kafka://{bootstrap}", CIDWATCH_TOPIC_PREFIX=PREFIX,
                   CIDWATCH_LOGLEVEL=args.loglevel, PYTHONUNBUFFERED="1",
                   CIDWATCH_HASH_KEY=os.environ.get("CIDWATCH_HASH_KEY", "bench-hash-key"))  # workers need one

        ports: list[int] = []

        def start(name: str) -> subprocess.Popen:
            ports.append(free_port())
            argv = [sys.executable, "-m", "cidwatch", "worker", "--store", "memory", "--partitions", str(PARTITIONS),
                    "--inventory", str(inventory), "--workdir", str(tmp / name), "--web-port", str(ports[-1])]
            return spawn(argv, tmp / f"{name}.log", env=env)

        def judged() -> float:
            """CDRs the two workers say they judged (cidwatch_records_processed_total{source="cdr"})."""
            count = 0.0
            for port in ports:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
                    for line in page.read().decode().splitlines():
                        if line.startswith('cidwatch_records_processed_total{source="cdr"}'):
                            count += float(line.split()[-1])
            return count

        kafka = Kafka(bootstrap)

        def committed() -> dict[int, int]:
            return kafka.committed(f"{PREFIX}cidwatch").get(f"{PREFIX}cdr", {})

        procs.append(start("a"))
        time.sleep(args.gap)
        procs.append(start("b"))
        t0, last, dumped = time.monotonic(), 0, False
        while time.monotonic() - t0 < 300:
            time.sleep(2)
            offsets = committed()
            now = sum(offsets.values())
            print(f"t+{time.monotonic() - t0:5.1f} s  committed {now:,} (+{now - last:,})", flush=True)
            if now >= args.records:
                break
            if now and now - last < 100 and not dumped:
                dumped = True
                print(f"  offsets still: {dict(sorted(offsets.items()))}", flush=True)
                time.sleep(5)
                print(f"  records the workers judged: {judged():,.0f} of {args.records:,}", flush=True)
                for name, proc in zip("ab", procs, strict=True):
                    spy = Path(sys.executable).parent / "py-spy"
                    out = subprocess.run([str(spy), "dump", "--pid", str(proc.pid)], capture_output=True, text=True,
                                         check=False)
                    (tmp / f"dump-{name}.txt").write_text(out.stdout + out.stderr)
                print(f"  py-spy dumps in {tmp}", flush=True)
            last = now
    finally:
        for proc in procs:
            stop(proc)
        broker.stop(tmp / "broker")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
