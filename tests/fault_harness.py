"""Fault runs on a real broker: CDRs produced at a steady rate while workers are killed with SIGKILL.

Used by tests/test_faults.py (small runs in CI) and bench/faults.py (100k CDRs, 10 kills, on demand).
What a run checks is what an operator needs after a crash: every decision replay makes on the same
records reached the decisions topic (duplicates with the same id allowed, nothing lost, nothing
spurious), and the compacted blocks topic read from the start says exactly what replay says is
blocked at the end.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from stream_harness import HASH_KEY, Worker, read_topic

from cidwatch.inputs import read_canonical
from cidwatch.replay import replay
from rules.engine import Engine
from rules.inventory import load_inventory
from rules.pack import load_packs


def subject_key(record: dict[str, Any]) -> bytes:
    """The key `cidwatch produce` gives a record: its subject, so it lands on its state's partition."""
    engine = _ENGINE
    from rules.cdr import parse_cdr

    return engine.subject(parse_cdr(record)).encode()


_ENGINE = Engine(load_packs())


class Producer(threading.Thread):
    """Sends records to the cdr topic at `rate` a second, keyed by subject, in the background."""

    def __init__(self, bootstrap: str, topic: str, records: list[dict[str, Any]], rate: float) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.records, self.rate = bootstrap, topic, records, rate
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5, acks="all")
            start = time.monotonic()
            for i, record in enumerate(self.records):
                delay = start + i / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                producer.send(self.topic, key=subject_key(record), value=json.dumps(record).encode())
                self.sent = i + 1
            producer.flush()
            producer.close()
        except BaseException as exc:  # reported by the test
            self.error = exc


def expected_decisions(path: Path, inventory: Path) -> list[dict[str, Any]]:
    engine = Engine(load_packs(), load_inventory(inventory), hash_key=HASH_KEY.encode())  # the workers' key
    return [d.to_dict() for d in replay(read_canonical(path), engine, now=datetime.now(UTC)).decisions]


def final_blocks(decisions: Iterable[dict[str, Any]]) -> set[str]:
    """Block keys whose last decision is a block, in order: what a dialer reading `blocks` must see."""
    last: dict[str, dict[str, Any]] = {}
    for decision in decisions:
        if decision["kind"] != "alert":
            last[f"{decision['caller_id']}|{decision['rule']}|{json.dumps(decision['scope'], sort_keys=True)}"] = \
                decision
    return {key for key, decision in last.items() if decision["kind"] == "block"}


def blocks_topic(bootstrap: str, prefix: str) -> set[str]:
    """The compacted blocks topic read from the start: keys whose latest value is a block."""
    latest: dict[bytes | None, bytes | None] = {}
    for key, value in read_topic(bootstrap, f"{prefix}blocks"):
        latest[key] = value
    out = set()
    for key, value in latest.items():
        if value and json.loads(value)["kind"] == "block":
            decision = json.loads(value)
            out.add(f"{decision['caller_id']}|{decision['rule']}|{json.dumps(decision['scope'], sort_keys=True)}")
            assert key is not None
    return out


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset of each partition of `topic`."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None})[group]
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        consumer.close()
    return {tp.partition: offset for tp, offset in ends.items()}


def wait_resumed(bootstrap: str, group: str, topic: str, partitions: set[int], since: dict[int, int],
                 start: float, timeout: float) -> float | None:
    """Seconds from `start` (a monotonic time: the kill) until the group's committed offset of any of
    `partitions` moves past `since` (read after the kill: judging resumed there), or None when it did
    not within `timeout`. Commits follow a batch made durable within about a second."""
    while time.monotonic() - start < timeout:
        now = committed(bootstrap, group, topic)
        if any(now.get(p, -1) > since.get(p, -1) for p in partitions):
            return time.monotonic() - start
        time.sleep(0.2)
    return None


@dataclass
class Kill:
    at: float  # seconds into the run
    resumed_after: float | None  # seconds from the kill until judging resumed (None: not measured)


@dataclass
class FaultReport:
    expected: int
    got: int
    lost: set[str] = field(default_factory=set)
    spurious: set[str] = field(default_factory=set)
    duplicates: int = 0
    blocks_equal: bool = False
    kills: list[Kill] = field(default_factory=list)

    def lines(self) -> list[str]:
        resumed = [k.resumed_after for k in self.kills if k.resumed_after is not None]
        return [
            f"decisions expected {self.expected}, received {self.got} ({self.duplicates} re-sent duplicates)",
            f"lost {len(self.lost)}, spurious {len(self.spurious)}, blocks topic equal to replay: {self.blocks_equal}",
            "judging resumed after each kill (s): " + ", ".join(f"{s:.1f}" for s in resumed),
        ]


def compare(expected: list[dict[str, Any]], got: list[dict[str, Any]], bootstrap: str, prefix: str) -> FaultReport:
    want = {d["id"] for d in expected}
    have = [d["id"] for d in got]
    report = FaultReport(len(want), len(have))
    report.lost = want - set(have)
    report.spurious = set(have) - want
    report.duplicates = len(have) - len(set(have))
    report.blocks_equal = blocks_topic(bootstrap, prefix) == final_blocks(expected)
    return report


def kill(worker: Worker) -> None:
    """SIGKILL: no shutdown code runs, as when the host or the OOM killer takes the process."""
    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGKILL)
    worker.proc.wait(10)
