"""The judge's batch logic without a broker: routing, dead letters, and a record that makes the engine raise.

The worker's Faust app is built but never started; its table is replaced by a dict and events are
plain objects with the fields Faust's events have. The broker tests (test_stream.py, test_faults.py)
prove the same paths end to end.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fake_events import Event, Message
from stream_fixtures import INVENTORY

from rules.inventory import load_inventory
from streams.app import CidwatchWorker, _json, partition_of
from streams.batch import Batch
from streams.config import WorkerConfig
from streams.settings import Settings

PARTITIONS = 4


@pytest.fixture
def worker(tmp_path) -> CidwatchWorker:
    w = CidwatchWorker(WorkerConfig(settings=Settings(topic_prefix="unit."), workdir=tmp_path, store="memory",
                                    partitions=PARTITIONS))
    w.table = {}  # type: ignore[assignment]
    w.engine.inventory = load_inventory(INVENTORY)
    return w


def cdr_event(record: dict[str, Any], offset: int, partition: int | None = None) -> Event:
    subject = record["caller_id"]
    part = partition_of(subject, PARTITIONS) if partition is None else partition
    return Event(Message("unit.cdr", part, offset, subject.encode()), json.dumps(record).encode())


def call(i: int, caller: str = "+33184884001") -> dict[str, Any]:
    return {"call_id": f"u{i}", "started_at": f"2026-05-04T10:{i:02d}:00Z", "caller_id": caller,
            "destination": "+33612345678", "tenant": "acme"}


def test_a_record_on_its_subjects_partition_is_judged_and_others_forwarded(worker):
    batch = Batch()
    worker._one(cdr_event(call(1), 0), batch)
    other = (partition_of("+33184884001", PARTITIONS) + 1) % PARTITIONS
    worker._one(cdr_event(call(2), 1, partition=other), batch)
    assert [d.rule for d in batch.decisions] == ["cli.not_authorized"]
    assert [(o.topic, o.key) for o in batch.outgoing] == [("cdr.by-subject", b"+33184884001")]


def test_a_record_the_engine_fails_on_is_dead_lettered_and_the_others_keep_their_effect(worker, monkeypatch):
    process = worker.engine.process

    def failing(cdr, state):
        if cdr.call_id == "u3":
            process(cdr, state)  # changes the state in place, then fails: the worst case
            raise OverflowError("boom")
        return process(cdr, state)

    monkeypatch.setattr(worker.engine, "process", failing)
    batch = Batch()
    for i in range(1, 6):
        worker._one(cdr_event(call(i), i), batch)
    dead = [json.loads(o.value) for o in batch.outgoing if o.topic == "dlq"]
    assert [(d["error_class"], d["source"]["offset"]) for d in dead] == [("internal_error", 3)]
    assert "OverflowError" in dead[0]["reason"]
    state = batch.touched["+33184884001"]
    assert state is worker._states["+33184884001"]
    assert len(state.seen) == 4  # u1, u2, u4, u5: the failed record left no trace
    # the block from u1, kept once; u2 presents the blocked CLI: cli.used_while_blocked, once in its window
    assert [d.rule for d in batch.decisions] == ["cli.not_authorized", "cli.used_while_blocked"]


def test_garbage_goes_to_the_dlq_with_its_reason(worker):
    batch = Batch()
    worker._one(Event(Message("unit.cdr", 0, 7, b"x"), b"{not json"), batch)
    (dead,) = [json.loads(o.value) for o in batch.outgoing]
    assert dead["error_class"] == "not_json" and batch.dead == {"not_json": 1}


def test_changelog_records_are_the_bytes_the_tables_codecs_write(worker):
    """The worker writes its changelog with the producer directly; recovery decodes with the table's
    codecs, so the bytes must be theirs (a Faust upgrade that changes them fails here, not at recovery)."""
    table = worker.app.tables["subjects"]
    state = {"v": 2, "counts": {"fr.daily_limit|2026-06-01": [251, 1.75e9]}, "text": "Appel émis", "none": None}
    assert _json("+33184884001") == table.changelog_topic.prepare_key("+33184884001", table.key_serializer)[0]
    assert _json(state) == table.changelog_topic.prepare_value(state, table.value_serializer)[0]
