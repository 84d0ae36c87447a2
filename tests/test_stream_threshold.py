"""The example threshold packs on a real Kafka broker: one worker run with every example pack enabled
(`--rules` a folder where they are), and one test per pack holding its decisions equal to replay's (the
packs' replay tests are tests/rules/test_{runaway,asr,shortcalls,sequential}.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stream_fixtures import comparable, write_jsonl
from stream_harness import Worker, cidwatch, decisions, read_topic, settle
from threshold_fixtures import HASH_KEY, IDLE_CLI, SILENT_CLI, all_records, examples_folder, replayed

pytestmark = pytest.mark.kafka

RULES = ["runaway.calls_per_minute", "asr.low_answer_rate", "shortcalls.share", "sequential.same_destination"]


@pytest.fixture(scope="module")
def both(kafka_bootstrap: str,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[dict], list[dict], Worker]]:
    """(replay's decisions, the stream's, the worker) for every example pack's traffic, from one worker run."""
    tmp = tmp_path_factory.mktemp("threshold")
    folder = examples_folder(tmp / "rules")
    records = all_records()
    expected = replayed(records, folder)
    prefix = f"t{uuid.uuid4().hex[:8]}."
    cidwatch(kafka_bootstrap, prefix, "topics", "create", "--partitions", "4")
    key_file = tmp / "hash.key"
    key_file.write_bytes(HASH_KEY + b"\n")  # an editor's trailing newline is not part of the key
    worker = Worker(kafka_bootstrap, prefix, tmp / "w1", "--partitions", "4", "--rules", folder,
                    "--hash-key-file", key_file).start()
    try:
        cidwatch(kafka_bootstrap, prefix, "produce", write_jsonl(tmp / "cdrs.jsonl", records))
        got = settle(lambda: decisions(kafka_bootstrap, prefix), len(expected), timeout=150)
        assert worker.running(), worker.log_tail()
        yield expected, got, worker
    finally:
        worker.stop()


def _of(decisions_: list[dict[str, Any]], rule: str) -> set[tuple]:
    return comparable([d for d in decisions_ if d["rule"] == rule])


@pytest.mark.parametrize("rule", RULES)
def test_example_pack_decides_on_the_broker_what_replay_decides(both: tuple, rule: str) -> None:
    expected, got, worker = both
    wanted = _of(expected, rule)
    assert {kind for _, kind, *_ in wanted} >= {"alert", "resolve"}, "the traffic makes the rule fire and clear"
    assert _of(got, rule) == wanted, worker.log_tail()


@pytest.mark.parametrize("cli", [SILENT_CLI, IDLE_CLI])
def test_a_caller_id_that_stops_calling_is_cleared_as_replay_clears_it(both: tuple, cli: str) -> None:
    """SILENT_CLI's clear is made by a later record of its partition (event time), IDLE_CLI's by the idle
    worker's clock (no later record reaches its partition): both at the instant replay gives."""
    expected, got, worker = both
    wanted = comparable([d for d in expected if d["caller_id"] == cli and d["rule"] == RULES[0]])
    assert {kind for _, kind, *_ in wanted} == {"alert", "block", "unblock", "resolve"}
    assert comparable([d for d in got if d["caller_id"] == cli and d["rule"] == RULES[0]]) == wanted, worker.log_tail()


def test_the_run_as_a_whole_matches_replay(both: tuple) -> None:
    expected, got, worker = both
    assert comparable(got) == comparable(expected), worker.log_tail()
    assert len(got) == len({d["id"] for d in got})


def test_resolves_go_with_the_alerts_and_never_to_the_blocks_topic(both: tuple, kafka_bootstrap: str) -> None:
    _expected, got, worker = both
    prefix = worker.prefix
    blocks = [json.loads(value) for _, value in read_topic(kafka_bootstrap, f"{prefix}blocks") if value]
    alerts = [json.loads(value) for _, value in read_topic(kafka_bootstrap, f"{prefix}alerts") if value]
    assert {d["kind"] for d in blocks if d["rule"] in RULES} == {"block", "unblock"}
    resolves = {d["id"] for d in got if d["kind"] == "resolve"}
    assert resolves and resolves == {d["id"] for d in alerts if d["kind"] == "resolve"}


def test_the_example_packs_are_in_the_folder_given(tmp_path: Path) -> None:
    folder = examples_folder(tmp_path / "rules")
    out = cidwatch("127.0.0.1:1", "x.", "rules", "list", "--rules", folder).stdout
    assert all(rule in out for rule in RULES)
