"""Faults on a real broker: workers killed with SIGKILL mid-run lose no decision, and a survivor takes over.

Records are produced at a steady rate while the kills happen, so each kill lands in the middle of
batches: decisions sent but state not written, state written but offsets not committed.
"""

from __future__ import annotations

import shutil
import time

import pytest
from fault_harness import (
    Kill,
    Producer,
    committed,
    compare,
    end_offsets,
    expected_decisions,
    kill,
    wait_resumed,
)
from stream_fixtures import INVENTORY, stream_records, write_jsonl
from stream_harness import Worker, cidwatch, decisions, group_assignment, settle, wait_for

from bench.generate import cdrs

pytestmark = pytest.mark.kafka
PARTITIONS = 4
SESSION_TIMEOUT = 6.0  # the worker's default, the broker's minimum


def records() -> list[dict]:
    """The fixed stream set (French caps and a Paris-midnight unblock, standing blocks, duplicates)
    and generated traffic (every country, toll-free pairs, invalid and unauthorised CLIs), in time
    order, so the stream sees each subject's records in the order replay does."""
    mixed = stream_records() + list(cdrs(3000, clis=200, seed=5))
    return sorted(mixed, key=lambda r: r["started_at"].replace("Z", "+00:00"))


@pytest.fixture
def run(kafka_bootstrap, topic_prefix, tmp_path):
    cidwatch(kafka_bootstrap, topic_prefix, "topics", "create", "--partitions", str(PARTITIONS))
    workers: list[Worker] = []

    def worker(name: str, *args: str) -> Worker:
        w = Worker(kafka_bootstrap, topic_prefix, tmp_path / name, "--partitions", str(PARTITIONS),
                   "--inventory", INVENTORY, *args).start()
        workers.append(w)
        return w

    yield worker
    for w in workers:
        w.stop()


def produce_and_expect(kafka_bootstrap, topic_prefix, tmp_path, rate: float) -> tuple[Producer, list[dict]]:
    data = records()
    expected = expected_decisions(write_jsonl(tmp_path / "all.jsonl", data), INVENTORY)
    assert {d["kind"] for d in expected} == {"alert", "block", "unblock"}
    producer = Producer(kafka_bootstrap, f"{topic_prefix}cdr", data, rate)
    producer.start()
    return producer, expected


def kill_and_restart(w: Worker, wipe: bool, kafka_bootstrap: str, group: str, topic: str) -> Kill:
    """SIGKILL the worker, optionally remove its work dir (state then comes from the changelog alone),
    start it again, and measure how long until it judges again."""
    killed_at = time.monotonic()
    kill(w)
    before = committed(kafka_bootstrap, group, topic)
    if wipe:
        shutil.rmtree(w.workdir)
    w.start()
    resumed = wait_resumed(kafka_bootstrap, group, topic, set(range(PARTITIONS)), before, killed_at, timeout=120)
    if resumed is None and end_offsets(kafka_bootstrap, topic, PARTITIONS) == before:
        return Kill(killed_at, None)  # nothing was left to judge: resumption cannot be seen (not a failure)
    assert resumed is not None, f"judging did not resume within 120 s of the kill\n{w.log_tail()}"
    return Kill(killed_at, resumed)


@pytest.mark.parametrize("store,wipe", [("rocksdb", False), ("memory", True)],
                         ids=["rocksdb-kept", "workdir-wiped"])
def test_sigkill_twice_mid_run_loses_nothing(run, kafka_bootstrap, topic_prefix, tmp_path, store, wipe):
    producer, expected = produce_and_expect(kafka_bootstrap, topic_prefix, tmp_path, rate=200)
    group, topic = f"{topic_prefix}cidwatch", f"{topic_prefix}cdr"
    w = run("w1", "--store", store)
    kills: list[Kill] = []
    for fraction in (0.25, 0.75):
        wait_for(lambda f=fraction: producer.sent >= f * len(producer.records), 120, "records to be sent", w)
        kills.append(kill_and_restart(w, wipe, kafka_bootstrap, group, topic))
    producer.join(120)
    assert producer.error is None
    got = settle(lambda: decisions(kafka_bootstrap, topic_prefix), len(expected), timeout=180, quiet=5)
    report = compare(expected, got, kafka_bootstrap, topic_prefix)
    report.kills = kills
    print("\n".join(report.lines()))
    assert w.running(), w.log_tail()
    assert not report.lost, (sorted(report.lost)[:5], w.log_tail())
    assert not report.spurious, sorted(report.spurious)[:5]
    assert report.blocks_equal


def test_a_survivor_takes_over_a_killed_partner(run, kafka_bootstrap, topic_prefix, tmp_path):
    """Two workers; one is killed and not restarted. The survivor is given the dead one's partitions
    after the session timeout, recovers their state from the changelog, and judges everything."""
    producer, expected = produce_and_expect(kafka_bootstrap, topic_prefix, tmp_path, rate=400)
    group, topic = f"{topic_prefix}cidwatch", f"{topic_prefix}cdr"
    survivor, victim = run("w1"), run("w2")
    owners = wait_for(
        lambda: (lambda g: g if len(g) == 2 and all(g.values()) else None)(group_assignment(kafka_bootstrap, group)),
        120, "both workers owning partitions", victim)
    wait_for(lambda: producer.sent >= 0.4 * len(producer.records), 120, "records to be sent", victim)
    kill(victim)
    killed_at = time.monotonic()
    before = committed(kafka_bootstrap, group, topic)
    after = wait_for(lambda: (lambda g: g if len(g) == 1 else None)(group_assignment(kafka_bootstrap, group)),
                     60, "the survivor alone in the group", survivor)
    (gone,) = set(owners) - set(after)  # the victim's member id
    moved = {p for (t, p) in owners[gone] if t == topic}
    assert moved
    resumed = wait_resumed(kafka_bootstrap, group, topic, moved, before, killed_at, timeout=60)
    took_over = time.monotonic() - killed_at if resumed is None else resumed
    producer.join(120)
    assert producer.error is None
    got = settle(lambda: decisions(kafka_bootstrap, topic_prefix), len(expected), timeout=180, quiet=5)
    report = compare(expected, got, kafka_bootstrap, topic_prefix)
    print("\n".join(report.lines()))
    print(f"takeover: judging resumed on the moved partitions {took_over:.1f} s after the kill")
    assert survivor.running(), survivor.log_tail()
    assert not report.lost and not report.spurious, (sorted(report.lost)[:5], sorted(report.spurious)[:5])
    assert report.blocks_equal
    assert resumed is not None and resumed <= SESSION_TIMEOUT + 10, (resumed, survivor.log_tail())
    ends = end_offsets(kafka_bootstrap, topic, PARTITIONS)
    assert committed(kafka_bootstrap, group, topic) == ends  # drained: every record judged and committed
