"""The local Kafka broker and the commands around it: topics, produce, tail, blocks."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import hostile_fixtures
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hostile_fixtures import HOSTILE, OVERSIZED, mixed_lines
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from cidwatch import blocks, produce, tail, topics_cmd
from cidwatch.dev import broker
from streams.settings import TOPIC_NAMES, Settings
from streams.topics import admin_client, create_topics, topic_names


def settings_for(bootstrap: str, prefix: str) -> Settings:
    return Settings(broker=f"kafka://{bootstrap}", topic_prefix=prefix)


def run_cli(argv: list[str]) -> int:
    """Run one of this suite's sub-commands through its own `register`, as `cidwatch` would."""
    parser = argparse.ArgumentParser(prog="cidwatch")
    subparsers = parser.add_subparsers()
    for module in (broker, topics_cmd, produce, tail, blocks):
        module.register(subparsers)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def java_processes_for(data_dir: Path) -> list[int]:
    """Pids of java processes whose command line mentions `data_dir`."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "java" in text and str(data_dir) in text:
            pids.append(int(cmdline.parent.name))
    return pids


def read_all(settings: Settings, topic: str, expected: int) -> list:
    """Every record of `topic` from the beginning (at least `expected` of them, 30 s at most)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list = []
        deadline = time.monotonic() + 30
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def decision(kind: str, caller_id: str, rule: str, at: str = "2026-05-04T10:00:00Z") -> dict:
    return {"id": f"{kind}-{caller_id}-{rule}", "kind": kind, "rule": rule, "severity": "high",
            "caller_id": caller_id, "call_id": None, "tenant": "acme", "at": at, "scope": {},
            "until": None, "count": 3, "threshold": 2.0, "message": f"{rule} on {caller_id}", "source": "test"}


def block_record(kind: str | None, caller_id: str, rule: str) -> tuple[bytes, bytes | None]:
    """A blocks-topic record keyed per caller, rule and scope; kind None makes a tombstone."""
    key = f"{caller_id}|{rule}|{{}}".encode()
    return key, None if kind is None else json.dumps(decision(kind, caller_id, rule)).encode()


# --- jars (no broker needed) ------------------------------------------------------------------


@pytest.mark.kafka
def test_second_ensure_jars_does_not_run_maven(monkeypatch: pytest.MonkeyPatch) -> None:
    lib_dir = broker.ensure_jars()

    def no_maven(lib: Path) -> None:
        raise AssertionError("ensure_jars ran Maven although the jars are there")

    monkeypatch.setattr(broker, "_run_maven", no_maven)
    assert broker.ensure_jars() == lib_dir
    assert any(lib_dir.glob("kafka_2.13-3.9.*.jar"))
    assert any(lib_dir.glob("slf4j-reload4j-*.jar"))


def test_ensure_jars_fetches_again_when_a_jar_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_maven(lib: Path) -> None:
        calls.append(lib)
        (lib / "kafka_2.13-3.9.9.jar").write_bytes(b"jar")
        (lib / "other.jar").write_bytes(b"jar")

    monkeypatch.setattr(broker, "_run_maven", fake_maven)
    broker.ensure_jars(tmp_path)
    broker.ensure_jars(tmp_path)
    assert len(calls) == 1
    (tmp_path / "other.jar").unlink()
    broker.ensure_jars(tmp_path)
    assert len(calls) == 2


# --- broker lifecycle (its own broker, so stopping it does not disturb the session's) ----------


@pytest.mark.kafka
def test_broker_start_status_restart_stop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "broker"
    info = broker.start(port=0, data_dir=data_dir)
    try:
        assert info.running and not info.already_running
        status = broker.status(data_dir)
        assert (status.running, status.pid, status.port) == (True, info.pid, info.port)
        again = broker.start(port=0, data_dir=data_dir)
        assert again.already_running and again.pid == info.pid and again.port == info.port
        assert run_cli(["broker", "status", "--data-dir", str(data_dir)]) == 0
        out = capsys.readouterr().out
        assert "running" in out and str(info.port) in out and "broker.log" in out
        assert (data_dir / "cluster.id").read_text().strip()
    finally:
        assert broker.stop(data_dir)
    assert java_processes_for(data_dir) == []
    assert not broker.status(data_dir).running
    assert broker.stop(data_dir) is False
    assert run_cli(["broker", "status", "--data-dir", str(data_dir)]) == 1
    assert "not running" in capsys.readouterr().out


# --- topics -----------------------------------------------------------------------------------


@pytest.mark.kafka
def test_topics_create_makes_every_topic_idempotently(kafka_bootstrap: str, topic_prefix: str) -> None:
    settings = settings_for(kafka_bootstrap, topic_prefix)
    names = topic_names(settings)
    assert list(names) == list(TOPIC_NAMES)

    first = create_topics(settings, partitions=8)
    assert sorted(first.created) == sorted(names.values()) and first.existing == []

    with admin_client(settings) as admin:
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(list(names.values()))}
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names.values()]
        configs = admin.describe_configs(resources)["topic"]
    for short, full in names.items():
        assert described[full] == (1 if short == "inventory" else 8), short
        policy = configs[full]["cleanup.policy"]["value"]
        assert policy == ("compact" if short in ("blocks", "inventory") else "delete"), short

    second = create_topics(settings, partitions=8)
    assert second.created == [] and sorted(second.existing) == sorted(names.values())


# --- produce ----------------------------------------------------------------------------------


JSONL = (
    b'{"call_id":"a1","started_at":"2026-05-04T10:00:00Z","caller_id":"+33140000001"}\n'
    b'{"call_id": "a2", "caller_id": "+33140000002",   "started_at": "2026-05-04T10:00:01Z"}\r\n'
    b"{not json at all\n"
    b"\n"
    b'{"call_id":"a3","started_at":"2026-05-04T10:00:02Z"}\n'
)


def test_read_jsonl_keeps_lines_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "cdrs.jsonl"
    path.write_bytes(JSONL)
    records = list(produce.read_canonical_file(path))
    assert [line.key for line in records] == [b"+33140000001", b"+33140000002", None, b""]
    assert records[1].value == b'{"call_id": "a2", "caller_id": "+33140000002",   "started_at": "2026-05-04T10:00:01Z"}'
    assert records[2].value == b"{not json at all"
    assert [line.where for line in records] == [f"{path} line {n}" for n in (1, 2, 3, 5)]


def test_read_csv_and_parquet_as_json_objects(tmp_path: Path) -> None:
    csv_path = tmp_path / "cdrs.csv"
    csv_path.write_text("call_id,started_at,caller_id,answered,sip_code\n"
                        "c1,2026-05-04T10:00:00Z,+33140000001,true,200\nc2,2026-05-04T10:00:00Z,,,\n")
    rows = [(line.key, json.loads(line.value)) for line in produce.read_canonical_file(csv_path)]
    assert rows == [(b"+33140000001", {"call_id": "c1", "started_at": "2026-05-04T10:00:00Z",
                                       "caller_id": "+33140000001", "answered": "true", "sip_code": "200"}),
                    (b"", {"call_id": "c2", "started_at": "2026-05-04T10:00:00Z"})]

    parquet_path = tmp_path / "cdrs.parquet"
    table = pa.table({
        "call_id": ["p1", "p2"],
        "started_at": pa.array([datetime(2026, 5, 4, 10, 0, tzinfo=UTC), None], pa.timestamp("us", tz="UTC")),
        "caller_id": ["+33140000001", None],
        "answered": [True, False],
        "duration_s": [12.5, float("nan")],
    })
    pq.write_table(table, parquet_path)
    rows = [(line.key, json.loads(line.value)) for line in produce.read_canonical_file(parquet_path)]
    assert rows == [(b"+33140000001", {"call_id": "p1", "started_at": "2026-05-04T10:00:00Z",
                                       "caller_id": "+33140000001", "answered": True, "duration_s": 12.5}),
                    (b"", {"call_id": "p2", "answered": False})]


def test_unsupported_file_type_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(produce.CliError, match="unsupported file type"):
        produce.read_canonical_file(tmp_path / "cdrs.xml")


@pytest.mark.kafka
def test_produce_keys_records_by_caller_id(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    settings = settings_for(kafka_bootstrap, topic_prefix)
    create_topics(settings)
    path = tmp_path / "cdrs.jsonl"
    path.write_bytes(JSONL)

    began = time.monotonic()
    sent = produce.produce_records(settings, produce.read_canonical_file(path), rate=20, progress=False)
    assert sent == 4
    assert time.monotonic() - began >= 0.14  # 4 records at 20/s: three waits of 50 ms

    records = read_all(settings, settings.topic("cdr"), expected=4)
    got = sorted(((r.key, r.value) for r in records), key=lambda kv: kv[1])
    expected = sorted(((line.key, line.value) for line in produce.read_canonical_file(path)), key=lambda kv: kv[1])
    assert got == expected


@pytest.mark.kafka
def test_produce_cli_sends_files(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    settings = settings_for(kafka_bootstrap, topic_prefix)
    monkeypatch.setenv("CIDWATCH_BROKER", settings.broker)
    monkeypatch.setenv("CIDWATCH_TOPIC_PREFIX", topic_prefix)
    assert run_cli(["topics", "create", "--partitions", "2"]) == 0
    assert "created" in capsys.readouterr().out
    path = tmp_path / "cdrs.jsonl"
    path.write_bytes(JSONL)
    assert run_cli(["produce", str(path), str(path)]) == 0
    assert f"sent 8 records to {topic_prefix}cdr" in capsys.readouterr().out
    assert len(read_all(settings, settings.topic("cdr"), expected=8)) == 8


def test_hostile_lines_are_read_as_they_are_with_their_line_numbers(tmp_path: Path) -> None:
    """What `produce` can send goes byte for byte (the worker dead-letters it with a reason); only CSV
    rows it cannot turn into JSON carry a problem."""
    text, where = mixed_lines([*HOSTILE, OVERSIZED])
    jsonl = tmp_path / "hostile.jsonl"
    jsonl.write_bytes(text)
    lines = list(produce.read_canonical_file(jsonl))
    assert [line.value for line in lines] == text.splitlines()
    assert all(line.problem is None for line in lines)
    assert {int(line.where.rsplit(" ", 1)[1]) for line in lines if line.key is None} >= {
        n for n, bad in where.items() if bad.kind in ("deep_nesting", "not_utf8", "not_json", "lone_surrogate")}
    csv_path = tmp_path / "hostile.csv"
    csv_path.write_bytes(hostile_fixtures.CSV)
    rows = [(line.where.rsplit(" ", 2)[1:], line.problem) for line in produce.read_canonical_file(csv_path)]
    assert rows == [(["line", "2"], None), (["line", "3"], "not valid UTF-8 text"),
                    (["line", "4"], "not readable as CSV (field larger than field limit (131072))"),
                    (["line", "5"], None)]


@pytest.mark.kafka
def test_produce_skips_what_it_cannot_send_and_sends_every_other_line(
        kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    settings = settings_for(kafka_bootstrap, topic_prefix)
    create_topics(settings, partitions=1)
    text, where = mixed_lines([*HOSTILE, OVERSIZED])
    jsonl = tmp_path / "hostile.jsonl"
    jsonl.write_bytes(text)
    csv_path = tmp_path / "hostile.csv"
    csv_path.write_bytes(hostile_fixtures.CSV)
    monkeypatch.setenv("CIDWATCH_BROKER", settings.broker)
    monkeypatch.setenv("CIDWATCH_TOPIC_PREFIX", topic_prefix)
    oversized = next(n for n, bad in where.items() if bad is OVERSIZED)
    with pytest.raises(produce.CliError) as caught:
        run_cli(["produce", str(jsonl), str(csv_path)])
    message = str(caught.value)
    assert message.startswith(f"3 line(s) could not be sent to {topic_prefix}cdr and were skipped")
    assert f"{jsonl} line {oversized}: {len(OVERSIZED.line) + len(b'+33184884001')} bytes, over the producer's " \
           "maximum request size of 1048576" in message
    assert f"{csv_path} line 3: not valid UTF-8" in message and f"{csv_path} line 4: not readable as CSV" in message
    good_csv = [json.loads(line.value) for line in produce.read_canonical_file(csv_path) if line.problem is None]
    sent = [line for n, line in enumerate(text.splitlines(), 1) if n != oversized]
    assert f"sent {len(sent) + len(good_csv)} records to {topic_prefix}cdr" in capsys.readouterr().out
    records = read_all(settings, settings.topic("cdr"), expected=len(sent) + 2)
    assert [r.value for r in records[:len(sent)]] == sent  # in order, byte for byte
    assert [json.loads(r.value)["call_id"] for r in records[len(sent):]] == ["c-1", "c-4"]


def test_the_summary_names_the_first_skipped_lines_and_counts_the_rest() -> None:
    sent = produce.Sent(7, [(f"a.jsonl line {n}", "too big") for n in range(1, 9)])
    assert sent.summary("cdr") == (
        "8 line(s) could not be sent to cdr and were skipped (the other 7 were sent): a.jsonl line 1: too big; "
        "a.jsonl line 2: too big; a.jsonl line 3: too big; a.jsonl line 4: too big; a.jsonl line 5: too big; "
        "and 3 more")


# --- blocks and tail --------------------------------------------------------------------------


@pytest.mark.kafka
def test_current_blocks_keeps_the_last_value_per_key(kafka_bootstrap: str, topic_prefix: str,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    settings = settings_for(kafka_bootstrap, topic_prefix)
    create_topics(settings)
    assert blocks.current_blocks(settings).blocks == {}

    records = [
        block_record("block", "+33140000001", "spam-rate"),
        block_record("block", "+33140000001", "short-calls"),
        block_record("unblock", "+33140000001", "spam-rate"),  # the other rule's block stays
        block_record("block", "+33140000002", "spam-rate"),
        block_record(None, "+33140000002", "spam-rate"),  # tombstone: lifted
        block_record("block", "+33140000003", "spam-rate"),
    ]
    produce.produce_records(settings, records, progress=False, topic=settings.topic("blocks"))

    current = blocks.current_blocks(settings).blocks
    assert set(current) == {"+33140000001|short-calls|{}", "+33140000003|spam-rate|{}"}
    assert current["+33140000001|short-calls|{}"]["rule"] == "short-calls"

    monkeypatch.setenv("CIDWATCH_BROKER", settings.broker)
    monkeypatch.setenv("CIDWATCH_TOPIC_PREFIX", topic_prefix)
    assert run_cli(["blocks", "list"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines == [
        "+33140000001  acme  short-calls  -  since 2026-05-04T10:00:00Z  until -  short-calls on +33140000001",
        "+33140000003  acme  spam-rate  -  since 2026-05-04T10:00:00Z  until -  spam-rate on +33140000003",
    ]
    assert "2 block(s) in force on 2 caller ID(s)" in captured.err

    assert run_cli(["blocks", "list", "--rule", "spam-rate", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [{"cli": "+33140000003", "tenant": "acme", "rule": "spam-rate", "scope": {},
                       "since": "2026-05-04T10:00:00Z", "until": None, "message": "spam-rate on +33140000003",
                       "runbook": "docs/runbooks/spam-rate.md", "decision_id": "block-+33140000003-spam-rate"}]
    assert run_cli(["blocks", "list", "--tenant", "beta"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "0 block(s) in force" in captured.err


@pytest.mark.kafka
def test_tail_prints_decisions_one_per_line(kafka_bootstrap: str, topic_prefix: str,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    settings = settings_for(kafka_bootstrap, topic_prefix)
    create_topics(settings, partitions=1)
    records = [(b"+33140000001", json.dumps(decision("alert", "+33140000001", "spam-rate")).encode()),
               (b"+33140000002", json.dumps(decision("block", "+33140000002", "short-calls")).encode())]
    produce.produce_records(settings, records, progress=False, topic=settings.topic("decisions"))

    monkeypatch.setenv("CIDWATCH_BROKER", settings.broker)
    monkeypatch.setenv("CIDWATCH_TOPIC_PREFIX", topic_prefix)
    assert run_cli(["tail", "--from-beginning", "--max", "2", "--timeout", "10"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2026-05-04T10:00:00Z  alert  spam-rate  +33140000001  spam-rate on +33140000001",
        "2026-05-04T10:00:00Z  block  short-calls  +33140000002  short-calls on +33140000002",
    ]
    assert run_cli(["tail", "decisions", "--max", "1", "--timeout", "1"]) == 0  # new records only: none
    assert capsys.readouterr().out == ""


def test_format_record_for_dlq_tombstones_and_garbage() -> None:
    """A dead letter as the worker writes it (streams/dlq.py): the time it was dead-lettered (its Kafka
    timestamp), why, which field, where it came from, and the record it carries, decoded."""
    from streams.dlq import Rejected, dead_letter

    rejected = Rejected("missing_field", "started_at", "required field is missing")
    dlq = dead_letter(b'{"call_id": "c1"}', rejected, "cidwatch.cdr", 3, 41, key=b"+33140000001")
    assert tail.format_record("dlq", None, json.dumps(dlq).encode(), 1_777_888_999_123) == (
        '2026-05-04T10:03:19.123Z  missing_field: required field is missing  started_at  cidwatch.cdr/3@41  '
        '{"call_id": "c1"}')
    oversized = dead_letter(b"x" * 5000, Rejected("oversized", "record", "too big"), "cidwatch.cdr", 0, 7)
    line = tail.format_record("dlq", None, json.dumps(oversized).encode(), None)
    assert line.startswith("-  oversized: too big  record  cidwatch.cdr/0@7  xxx")
    assert line.endswith(f"... (5000 bytes, sha256 {oversized['value_sha256']})")
    multi = dead_letter(b"a\nb\xff", Rejected("bad_utf8", "record", "not UTF-8"), "t", 0, 1)
    assert tail.format_record("dlq", None, json.dumps(multi).encode()).endswith("t/0@1  a\\nb\\xff")
    assert tail.format_record("blocks", b"k", None).startswith("-  tombstone  k")
    assert tail.format_record("decisions", b"k", b"\xff").startswith("-  unreadable  k")
