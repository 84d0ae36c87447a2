"""Fault run on demand (not in CI): workers SIGKILLed at random moments while CDRs arrive at a steady rate.

The data: the fixed stream set of tests/stream_fixtures.py (a French CLI past 250 calls a Paris day and
its unblock at Paris midnight, an unauthorised one capped too, standing blocks, duplicates) and generated
traffic (bench/generate.py: every country, toll-free pairs, invalid and unauthorised CLIs, busy French
CLIs past 250), sorted by started_at so the stream sees each subject's records in the order replay does.
The inventory is the generator's (about 3% of valid CLIs left out) plus examples/inventory.yaml.

What it does: starts its own broker (temporary folder, free loopback port), creates the topics
(8 partitions), computes what `replay` decides on the same records (the truth), starts one worker and
produces the records at --rate a second keyed by subject (tests/fault_harness.py). Then --kills times,
each after a random (seeded) spell of judging, it SIGKILLs the worker (no shutdown code runs), starts
it again and measures the seconds from the kill until the group's committed offsets move again (judging
resumed). When every record is judged it prints: decisions lost (replay made them, the decisions topic
lacks them), spurious (the topic has ids replay never made), duplicated (re-sent with the same id after
a kill, which at-least-once allows), whether the compacted blocks topic read from the start says what
replay says is blocked, and for each kill: records sent and not yet judged then, records in the state
table's changelog (what a restarted `--store memory` worker reads back before it judges) and the
seconds until judging resumed.

--takeover instead runs two workers and kills one (not restarted): the seconds until the survivor judges
the dead one's partitions again, and the survivor's rate while it catches up with their backlog. Its
yardstick, in the same run on the same broker once everything is judged: one worker alone (own topics and
group) given the same backlog while the same remaining records arrive at the same rate; the line
"survivor/alone" is the ratio of the two rates (1.0: the survivor drains at a lone worker's normal rate).

Run: .venv/bin/python bench/faults.py [--records 100000] [--rate 2000] [--kills 10] [--seed 7]
     [--store memory|rocksdb] [--takeover] [--keep DIR]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import yaml  # noqa: E402
from fault_harness import (  # noqa: E402
    Producer,
    committed,
    compare,
    end_offsets,
    expected_decisions,
    kill,
    wait_resumed,
)
from kafka.errors import KafkaError  # noqa: E402
from stream_fixtures import INVENTORY, stream_records, write_jsonl  # noqa: E402
from stream_harness import Worker, decisions, group_assignment, settle, wait_for  # noqa: E402

from bench.generate import cdrs, inventory_rows  # noqa: E402
from cidwatch.dev import broker  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.topics import create_topics  # noqa: E402

PREFIX = "faults."
GROUP = f"{PREFIX}cidwatch"
CDR = f"{PREFIX}cdr"
BY_SUBJECT = f"{PREFIX}cdr.by-subject"
CHANGELOG = f"{GROUP}-subjects-changelog"
PARTITIONS = 8


def records(n: int, seed: int) -> list[dict[str, Any]]:
    """n CDRs: the fixed stream set and generated traffic, in started_at order."""
    fixed = stream_records()
    mixed = fixed + list(cdrs(max(0, n - len(fixed)), clis=3000, seed=seed))
    return sorted(mixed, key=lambda r: r["started_at"].replace("Z", "+00:00"))


def write_inventory(path: Path, seed: int) -> Path:
    """The generator's inventory and the stream fixtures' (their numbers do not overlap)."""
    fixed = yaml.safe_load(INVENTORY.read_text())["numbers"]
    path.write_text(yaml.safe_dump({"numbers": inventory_rows(seed, 3000) + fixed}, sort_keys=False))
    return path


@dataclass
class KillReport:
    at: float  # seconds since the first record was sent
    sent: int  # records sent by then
    behind: int  # records of the cdr topic not yet committed at the kill
    changelog: int  # records in the state table's changelog at the kill (what a memory store re-reads)
    resumed_after: float | None  # seconds from the kill until judging resumed; None: nothing was left to judge


def total(offsets: dict[int, int]) -> int:
    return sum(offsets.values())


def committed_now(bootstrap: str, topic: str, group: str = GROUP) -> dict[int, int]:
    """The group's committed offsets of `topic`; {} while the group has no coordinator yet."""
    try:
        return committed(bootstrap, group, topic)
    except KafkaError:
        return {}


def owners_now(bootstrap: str) -> dict[str, Any] | None:
    """The group's assignment once two members own partitions (`group_assignment` is {} while the
    group has no coordinator yet); None before."""
    owners = group_assignment(bootstrap, GROUP)
    return owners if len(owners) == 2 and all(owners.values()) else None


def lag(bootstrap: str, prefix: str = PREFIX) -> tuple[int, dict[int, int]]:
    """Records of the cdr topic not committed by the group, and the committed offsets."""
    done = committed_now(bootstrap, f"{prefix}cdr", f"{prefix}cidwatch")
    ends = end_offsets(bootstrap, f"{prefix}cdr", PARTITIONS)
    return sum(max(0, end - done.get(p, 0)) for p, end in ends.items()), done


def drained(bootstrap: str, n: int) -> bool:
    """Every record sent is judged and every forward or control envelope too: all committed to the end."""
    for topic in (CDR, BY_SUBJECT):
        done = committed_now(bootstrap, topic)
        ends = end_offsets(bootstrap, topic, PARTITIONS)
        if topic == CDR and total(ends) < n:
            return False
        if any(done.get(p, 0) < end for p, end in ends.items()):
            return False
    return True


def kill_and_restart(w: Worker, bootstrap: str, started: float, producer: Producer) -> KillReport:
    killed_at = time.monotonic()
    sent = producer.sent
    kill(w)
    behind, before = lag(bootstrap)
    changelog = total(end_offsets(bootstrap, CHANGELOG, PARTITIONS))
    w.start()
    if behind == 0 and producer.sent == len(producer.records):
        # Nothing left to judge: resumption cannot be seen; wait until the worker owns its partitions again.
        wait_for(lambda: any(group_assignment(bootstrap, GROUP).values()), 120, "the worker to rejoin", w, 0.5)
        return KillReport(killed_at - started, sent, behind, changelog, None)
    resumed = wait_resumed(bootstrap, GROUP, CDR, set(range(PARTITIONS)), before, killed_at, timeout=120)
    if resumed is None:
        raise SystemExit(f"judging did not resume within 120 s of the kill\n{w.log_tail()}")
    return KillReport(killed_at - started, sent, behind, changelog, resumed)


def restarts(args: argparse.Namespace, bootstrap: str, tmp: Path, inventory: Path, producer: Producer,
             rng: random.Random, workers: list[Worker]) -> tuple[list[str], None]:
    """One worker, killed and restarted `--kills` times, each after a random spell of judging."""
    w = Worker(bootstrap, PREFIX, tmp / "w1", "--partitions", PARTITIONS, "--inventory", inventory,
               "--store", args.store).start()
    workers.append(w)
    producer.start()
    started = time.monotonic()
    wait_for(lambda: total(committed_now(bootstrap, CDR)) > 0 or None, 180, "the worker to judge", w, 0.5)
    kills = []
    for i in range(args.kills):
        time.sleep(rng.uniform(args.min_gap, args.max_gap))
        kills.append(kill_and_restart(w, bootstrap, started, producer))
        print(f"kill {i + 1}: {kills[-1]}", file=sys.stderr)
    lines = [f"{'kill':>4} {'at s':>6} {'sent':>8} {'behind':>7} {'changelog':>9} {'resumed after s':>16}"]
    for i, k in enumerate(kills, 1):
        resumed = "-" if k.resumed_after is None else f"{k.resumed_after:.1f}"
        lines.append(f"{i:4} {k.at:6.1f} {k.sent:8,} {k.behind:7,} {k.changelog:9,} {resumed:>16}")
    seen = [k.resumed_after for k in kills if k.resumed_after is not None]
    if seen:
        lines.append(f"judging resumed after a kill: median {statistics.median(seen):.1f} s, max {max(seen):.1f} s "
                     f"({len(seen)} of {len(kills)} kills measurable; '-': nothing was left to judge)")
    return lines, None


def takeover(args: argparse.Namespace, bootstrap: str, tmp: Path, inventory: Path, producer: Producer,
             rng: random.Random, workers: list[Worker]) -> tuple[list[str], Callable[[], list[str]] | None]:
    """Two workers; one is killed at a random moment and not restarted; the survivor takes over. Also
    returns the yardstick to run once the survivor has judged everything: one worker alone."""
    pair = [Worker(bootstrap, PREFIX, tmp / name, "--partitions", PARTITIONS, "--inventory", inventory,
                   "--store", args.store).start() for name in ("w1", "w2")]
    workers.extend(pair)
    owners = wait_for(lambda: owners_now(bootstrap), 180, "both workers owning partitions", pair[1])
    producer.start()
    started = time.monotonic()
    time.sleep(rng.uniform(0.3, 0.6) * len(producer.records) / args.rate)
    victim = rng.choice(pair)
    survivor = pair[1 - pair.index(victim)]
    workers[:] = [survivor, victim]
    killed_at = time.monotonic()
    sent = producer.sent
    kill(victim)
    behind, before = lag(bootstrap)
    after = wait_for(lambda: (lambda g: g if len(g) == 1 else None)(group_assignment(bootstrap, GROUP)),
                     120, "the survivor alone in the group", survivor)
    (gone,) = set(owners) - set(after)
    moved = {p for (t, p) in owners[gone] if t == CDR}
    resumed = wait_resumed(bootstrap, GROUP, CDR, moved, before, killed_at, timeout=120)
    if resumed is None:
        raise SystemExit(f"the survivor did not judge the moved partitions within 120 s\n{survivor.log_tail()}")
    t_resumed = time.monotonic()
    behind_at_resume, done = lag(bootstrap)
    judged_at_resume = total(done)
    left = len(producer.records) - producer.sent  # records the producer still sends during the catch-up
    caught_up, rate = catch_up(bootstrap, PREFIX, judged_at_resume, t_resumed, "the survivor")
    lines = [
        f"killed one of two workers {killed_at - started:.1f} s into the run ({sent:,} sent, {behind:,} behind); "
        f"it owned cdr partitions {sorted(moved)}",
        f"takeover: the survivor judged those partitions again {resumed:.1f} s after the kill",
        f"survivor after the takeover: {behind_at_resume:,} records behind, caught up in {caught_up:.1f} s, "
        f"judging {rate:,.0f} CDRs/s meanwhile (input still arriving at {args.rate:g}/s while the producer runs)",
    ]

    def yardstick() -> list[str]:
        survivor.stop()
        one = alone(args, bootstrap, tmp, inventory, producer.records, behind_at_resume, left, workers)
        return [f"one worker alone, same run, same backlog ({behind_at_resume:,}) and the same {left:,} records "
                f"then arriving at {args.rate:g}/s: judging {one:,.0f} CDRs/s; survivor/alone {rate / one:.2f}"]

    return lines, yardstick


def catch_up(bootstrap: str, prefix: str, judged_from: int, since: float, who: str) -> tuple[float, float]:
    """Seconds from `since` until nothing of the prefix's cdr topic is left uncommitted, and the records
    judged a second meanwhile (committed offsets moved past `judged_from`)."""
    while True:
        behind, done = lag(bootstrap, prefix)
        if behind == 0:
            break
        if time.monotonic() - since > 600:
            raise SystemExit(f"{who} did not catch up within 600 s")
        time.sleep(0.5)
    took = time.monotonic() - since
    return took, (total(done) - judged_from) / took if took else 0.0


def alone(args: argparse.Namespace, bootstrap: str, tmp: Path, inventory: Path, data: list[dict[str, Any]],
          backlog: int, left: int, workers: list[Worker]) -> float:
    """The survivor's yardstick, on the same broker in the same run: one worker alone (its own topics
    and group) facing the backlog the survivor faced at its takeover, while the records the producer
    still sent then arrive at the same rate. Its rate from its first commit until it has caught up."""
    prefix = f"{PREFIX.rstrip('.')}-alone."
    create_topics(Settings(broker=f"kafka://{bootstrap}", topic_prefix=prefix), partitions=PARTITIONS)
    head = Producer(bootstrap, f"{prefix}cdr", data[:backlog], rate=1e9)
    head.start()
    head.join(600)
    if head.error is not None:
        raise SystemExit(f"producer failed: {head.error!r}")
    w = Worker(bootstrap, prefix, tmp / "alone", "--partitions", PARTITIONS, "--inventory", inventory,
               "--store", args.store).start()
    workers.append(w)
    group = f"{prefix}cidwatch"
    first = wait_for(lambda: total(committed_now(bootstrap, f"{prefix}cdr", group)) or None, 180,
                     "the lone worker to judge", w, 0.2)
    since = time.monotonic()
    tail = Producer(bootstrap, f"{prefix}cdr", data[backlog:backlog + left], args.rate)
    tail.start()
    _, rate = catch_up(bootstrap, prefix, first, since, "the lone worker")
    tail.join(left / args.rate + 60)
    w.stop()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000, help="CDRs in the run (default 100,000)")
    parser.add_argument("--rate", type=float, default=2000, help="CDRs produced per second (default 2000)")
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs, each followed by a restart (default 10)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated traffic and of the kill moments")
    parser.add_argument("--min-gap", type=float, default=1.0, help="least seconds of judging before a kill")
    parser.add_argument("--max-gap", type=float, default=6.0, help="most seconds of judging before a kill")
    parser.add_argument("--store", default="memory", choices=("memory", "rocksdb"), help="the worker's table store")
    parser.add_argument("--takeover", action="store_true",
                        help="two workers; kill one without a restart: takeover time and the survivor's rate")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR", help="keep logs and broker data in DIR")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cidwatch-faults-")) if args.keep is None else args.keep
    tmp.mkdir(parents=True, exist_ok=True)
    data = records(args.records, args.seed)
    inventory = write_inventory(tmp / "inventory.yaml", args.seed)
    t0 = time.perf_counter()
    expected = expected_decisions(write_jsonl(tmp / "all.jsonl", data), inventory)
    kinds = sorted({d["kind"] for d in expected})
    rules = sorted({d["rule"] for d in expected})
    print(f"replay: {len(expected):,} decisions ({', '.join(kinds)}) in {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)

    info = broker.start(port=0, data_dir=tmp / "broker", heap="1g")
    bootstrap = f"127.0.0.1:{info.port}"
    workers: list[Worker] = []
    try:
        create_topics(Settings(broker=f"kafka://{bootstrap}", topic_prefix=PREFIX), partitions=PARTITIONS)
        producer = Producer(bootstrap, CDR, data, args.rate)
        rng = random.Random(args.seed)
        run = takeover if args.takeover else restarts
        lines, then = run(args, bootstrap, tmp, inventory, producer, rng, workers)
        producer.join(args.records / args.rate + 600)
        if producer.error is not None:
            raise SystemExit(f"producer failed: {producer.error!r}")
        wait_for(lambda: drained(bootstrap, len(data)), 600, "every record judged", workers[0])
        got = settle(lambda: decisions(bootstrap, PREFIX), len(expected), timeout=180, quiet=5)
        result = compare(expected, got, bootstrap, PREFIX)
        alive = workers[0].running()
        if then is not None:
            lines += then()
    finally:
        for w in workers:
            w.stop()
        broker.stop(tmp / "broker")

    print(f"\n{len(data):,} CDRs ({len(stream_records()):,} from tests/stream_fixtures.py), produced at "
          f"{args.rate:g}/s keyed by subject, {PARTITIONS} partitions, --store {args.store}, seed {args.seed}, "
          f"{'two workers, one killed' if args.takeover else f'{args.kills} SIGKILLs and restarts'}")
    print(f"replay decides {result.expected:,} decisions ({', '.join(kinds)}; {len(rules)} rules: {', '.join(rules)})")
    print("\n".join(lines))
    print(f"decisions received {result.got:,}: lost {len(result.lost)}, spurious {len(result.spurious)}, "
          f"duplicated {result.duplicates} (re-sent with the same id)")
    print(f"blocks topic equal to replay's blocks: {result.blocks_equal}")
    print(f"worker{' (survivor)' if args.takeover else ''} running at the end: {alive}")
    if result.lost:
        print(f"  lost, e.g.: {sorted(result.lost)[:5]}")
    if result.spurious:
        print(f"  spurious, e.g.: {sorted(result.spurious)[:5]}")
    if args.keep is None:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
