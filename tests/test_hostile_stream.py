"""Hostile records on a real broker: each one is dead-lettered with its reason, no agent crashes, and
the good records around them get exactly replay's decisions.

The lines are tests/hostile_fixtures.py's, the ones the replay and produce tests use. `cidwatch
produce` sends them byte for byte (the oversized one, which it cannot send, is left to its own test).
"""

from __future__ import annotations

import base64
import json

import pytest
from hostile_fixtures import HOSTILE, good_records, mixed_lines
from stream_fixtures import INVENTORY, comparable, replay_decisions, write_jsonl
from stream_harness import Worker, cidwatch, decisions, read_topic, settle, wait_for

pytestmark = pytest.mark.kafka


@pytest.fixture
def worker(kafka_bootstrap, topic_prefix, tmp_path):
    cidwatch(kafka_bootstrap, topic_prefix, "topics", "create", "--partitions", "4")
    started = Worker(kafka_bootstrap, topic_prefix, tmp_path / "w1", "--partitions", "4",
                     "--inventory", INVENTORY).start()
    yield started
    started.stop()


def dead_letters(bootstrap: str, prefix: str) -> list[dict]:
    return [json.loads(value) for _, value in read_topic(bootstrap, f"{prefix}dlq")]


def test_every_hostile_record_is_dead_lettered_and_the_good_ones_judged(worker, kafka_bootstrap, topic_prefix,
                                                                        tmp_path):
    text, where = mixed_lines(HOSTILE)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(text)
    expected = replay_decisions(write_jsonl(tmp_path / "good.jsonl", good_records()))
    assert {d["kind"] for d in expected} == {"alert", "block"} and len(expected) >= 5
    proc = cidwatch(kafka_bootstrap, topic_prefix, "produce", mixed)
    assert f"sent {len(text.splitlines())} records" in proc.stdout

    dlq = wait_for(lambda: (lambda d: d if len(d) >= len(HOSTILE) else None)(
        dead_letters(kafka_bootstrap, topic_prefix)), 90, "every hostile record in the DLQ", worker)
    got = settle(lambda: decisions(kafka_bootstrap, topic_prefix), len(expected), timeout=60)
    dlq = dead_letters(kafka_bootstrap, topic_prefix)  # after the decisions settled: nothing more came
    by_value = {base64.b64decode(d["value_b64"]): d for d in dlq}
    assert len(dlq) == len(by_value) == len(HOSTILE)
    for bad in where.values():
        letter = by_value.get(bad.line)
        assert letter is not None, f"{bad.kind} is neither judged nor dead-lettered"
        assert (letter["error_class"], letter["field"]) == (bad.error_class, bad.field), bad.kind
        assert bad.reason in letter["reason"], (bad.kind, letter["reason"])
        assert letter["source"]["topic"] == f"{topic_prefix}cdr"
    assert worker.running(), worker.log_tail()
    assert "Crashed reason" not in worker.log.read_text(errors="replace"), worker.log_tail()  # no agent restarted
    assert comparable(got) == comparable(expected), worker.log_tail()
    assert len(got) == len({d["id"] for d in got})
