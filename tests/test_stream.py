"""The stream on a real Kafka broker: the same decisions as replay, the DLQ, restarts and rebalances,
the compacted blocks topic, and inventory pushes."""

from __future__ import annotations

import base64
import json

import pytest
from stream_fixtures import (
    INVENTORY,
    JURISDICTIONS,
    JURISDICTIONS_INVENTORY,
    OWNED_FR,
    ROGUE_FR,
    ROOT,
    call_end_order,
    comparable,
    replay_decisions,
    stream_records,
    write_jsonl,
)
from stream_harness import Worker, cidwatch, decisions, group_assignment, read_topic, settle, wait_for

pytestmark = pytest.mark.kafka


@pytest.fixture
def stack(kafka_bootstrap, topic_prefix, tmp_path):
    """Topics created, and a factory of workers stopped at the end of the test."""
    cidwatch(kafka_bootstrap, topic_prefix, "topics", "create", "--partitions", "4")
    workers: list[Worker] = []

    def start(name: str = "w1", *args) -> Worker:
        worker = Worker(kafka_bootstrap, topic_prefix, tmp_path / name, "--partitions", "4", *args).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def produce(bootstrap, prefix, path):
    cidwatch(bootstrap, prefix, "produce", path)


def test_stream_gives_replays_decisions(stack, kafka_bootstrap, topic_prefix, tmp_path):
    path = write_jsonl(tmp_path / "cdrs.jsonl", call_end_order(stream_records()))
    expected = replay_decisions(path)
    assert {d["kind"] for d in expected} == {"alert", "block", "unblock"}
    assert any(d["kind"] == "unblock" and d["rule"] == "fr.daily_limit" for d in expected)
    # both French CLIs keep calling once blocked: the stream must page as replay does
    assert {d["caller_id"] for d in expected if d["rule"] == "cli.used_while_blocked"} == {OWNED_FR, ROGUE_FR}
    worker = stack("w1", "--inventory", INVENTORY)
    produce(kafka_bootstrap, topic_prefix, path)
    partitions = {key for key, _ in read_topic(kafka_bootstrap, f"{topic_prefix}cdr")}
    assert len(partitions) > 2  # many keys: spread over the 4 partitions
    got = settle(lambda: decisions(kafka_bootstrap, topic_prefix), len(expected), timeout=120)
    assert worker.running(), worker.log_tail()
    assert comparable(got) == comparable(expected), worker.log_tail()
    assert len(got) == len({d["id"] for d in got})  # no id sent twice on a clean run


def test_stream_gives_replays_decisions_on_the_jurisdictions_file(stack, kafka_bootstrap, topic_prefix):
    """The shared file of the jurisdiction rules: the French frequency rule's calls travel a second time,
    to the partition of their tenant and consumer's state, and decide what replay decides."""
    expected = replay_decisions(JURISDICTIONS, JURISDICTIONS_INVENTORY)
    rules = {d["rule"] for d in expected}
    assert {"fr.telemarketing_hours", "fr.telemarketing_frequency", "fr.automated_not_npv", "us.calling_hours",
            "es.mobile_cli_commercial", "spoof.national_cli_from_abroad"} <= rules
    worker = stack("w1", "--inventory", JURISDICTIONS_INVENTORY)
    produce(kafka_bootstrap, topic_prefix, JURISDICTIONS)
    got = settle(lambda: decisions(kafka_bootstrap, topic_prefix), len(expected), timeout=120)
    assert worker.running(), worker.log_tail()
    assert comparable(got) == comparable(expected), worker.log_tail()
    keyed = [key for key, _ in read_topic(kafka_bootstrap, f"{topic_prefix}cdr.by-subject")
             if key.startswith(b"fr.telemarketing_frequency|")]
    assert keyed and all(b"+336" not in key for key in keyed)  # keyed states: hashed consumers only


def test_malformed_records_go_to_the_dlq_and_the_worker_keeps_going(stack, kafka_bootstrap, topic_prefix, tmp_path):
    worker = stack("w1", "--max-record-bytes", "20000")
    good = {
        "call_id": "ok-1",
        "started_at": "2026-05-04T10:00:00Z",
        "caller_id": "anonymous",
        "destination": "+33612345678",
    }
    oversized = json.dumps({**good, "call_id": "big", "campaign": "x" * 100_000}).encode()
    bad = [
        b"this is not json",
        json.dumps({"started_at": "2026-05-04T10:00:00Z"}).encode(),
        json.dumps({**good, "call_id": "t1", "answered": "maybe"}).encode(),
        oversized,
        b'{"call_id": "\xff\xfe", "started_at": "2026-05-04T10:00:00Z"}',
    ]
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=2_000_000)
    for value in [*bad, json.dumps(good).encode()]:
        producer.send(f"{topic_prefix}cdr", key=b"k", value=value)
    producer.flush()
    producer.close()
    dlq = wait_for(
        lambda: (
            [json.loads(v) for _, v in read_topic(kafka_bootstrap, f"{topic_prefix}dlq")]
            if len(read_topic(kafka_bootstrap, f"{topic_prefix}dlq")) >= 5
            else None
        ),
        90,
        "5 DLQ records",
    )
    assert [d["error_class"] for d in dlq] == ["not_json", "missing_field", "bad_type", "oversized", "bad_utf8"]
    assert [d["field"] for d in dlq][:3] == ["record", "call_id", "answered"]
    assert base64.b64decode(dlq[0]["value_b64"]) == b"this is not json"
    assert base64.b64decode(dlq[4]["value_b64"]) == bad[4]
    assert dlq[3]["truncated"] and dlq[3]["value_length"] == len(oversized) and len(dlq[3]["value_sha256"]) == 64
    assert len(base64.b64decode(dlq[3]["value_b64"])) == 64 * 1024
    assert all(d["source"]["topic"] == f"{topic_prefix}cdr" for d in dlq)
    assert [d["source"]["offset"] for d in dlq] == [0, 1, 2, 3, 4]
    got = wait_for(lambda: decisions(kafka_bootstrap, topic_prefix), 60, "the good record's decision", worker)
    assert [(d["rule"], d["call_id"]) for d in got] == [("cli.invalid", "ok-1")]
    assert worker.running()


def test_blocks_topic_shows_what_is_blocked_now(stack, kafka_bootstrap, topic_prefix, tmp_path):
    path = write_jsonl(tmp_path / "cdrs.jsonl", call_end_order(stream_records()))
    expected = replay_decisions(path)
    stack("w1", "--inventory", INVENTORY)
    produce(kafka_bootstrap, topic_prefix, path)
    settle(lambda: decisions(kafka_bootstrap, topic_prefix), len(expected), timeout=120)
    latest: dict[bytes, dict] = {}
    for key, value in read_topic(kafka_bootstrap, f"{topic_prefix}blocks"):
        latest[key] = json.loads(value)
    blocked = {key.decode() for key, value in latest.items() if value["kind"] == "block"}
    assert blocked == {
        f"{ROGUE_FR}|cli.not_authorized|{{}}",  # still blocked after its fr.daily_limit unblock
        '+18005550100|us.tollfree_to_tollfree|{"destination_type":"toll_free"}',
        "+448701234567|uk.cli_not_permitted|{}",
        "+611300123456|au.cli_not_permitted|{}",
        '+18445550111|au.cli_not_permitted|{"destination_country":"AU"}',
    }
    assert latest[f"{ROGUE_FR}|fr.daily_limit|{{}}".encode()]["kind"] == "unblock"
    assert latest[f"{OWNED_FR}|fr.daily_limit|{{}}".encode()]["kind"] == "unblock"
    listing = cidwatch(kafka_bootstrap, topic_prefix, "blocks", "list").stdout
    assert ROGUE_FR in listing and "cli.not_authorized" in listing and "fr.daily_limit" not in listing


def test_inventory_push_changes_later_decisions_and_lifts_blocks(stack, kafka_bootstrap, topic_prefix, tmp_path):
    worker = stack("w1", "--inventory", INVENTORY)
    first = [
        {
            "call_id": "p-1",
            "started_at": "2026-05-04T10:00:00Z",
            "caller_id": ROGUE_FR,
            "destination": "+33612345678",
            "tenant": "acme",
        }
    ]
    produce(kafka_bootstrap, topic_prefix, write_jsonl(tmp_path / "a.jsonl", first))
    wait_for(lambda: decisions(kafka_bootstrap, topic_prefix), 90, "the cli.not_authorized block", worker)
    assert [(d["kind"], d["rule"]) for d in decisions(kafka_bootstrap, topic_prefix)] == [
        ("block", "cli.not_authorized")
    ]
    widened = tmp_path / "inventory.yaml"
    widened.write_text(
        INVENTORY.read_text() + f'  - {{number: "{ROGUE_FR}", source: ported, tenant: acme}}\n'
        '  - {number: "+12125550143", source: claimed, tenant: acme}\n'
    )
    cidwatch(kafka_bootstrap, topic_prefix, "inventory", "push", widened)
    unblock = wait_for(
        lambda: [d for d in decisions(kafka_bootstrap, topic_prefix) if d["kind"] == "unblock"],
        60,
        "the unblock after the inventory push",
    )
    assert unblock[0]["rule"] == "cli.not_authorized" and unblock[0]["caller_id"] == ROGUE_FR
    later = [
        {
            "call_id": "p-2",
            "started_at": "2026-05-04T11:00:00Z",
            "caller_id": ROGUE_FR,
            "destination": "+33612345678",
            "tenant": "acme",
        },
        {
            "call_id": "p-3",
            "started_at": "2026-05-04T11:00:00Z",
            "caller_id": "+12125550143",
            "destination": "+13125550100",
            "tenant": "acme",
        },
    ]
    produce(kafka_bootstrap, topic_prefix, write_jsonl(tmp_path / "b.jsonl", later))
    got = wait_for(
        lambda: (lambda ds: ds if len(ds) >= 3 else None)(decisions(kafka_bootstrap, topic_prefix)),
        60,
        "the later calls' decisions",
    )
    # The newly claimed US number is authorised now but has no CNAM: the inventory decides its alert.
    assert [(d["kind"], d["rule"]) for d in got] == [
        ("block", "cli.not_authorized"),
        ("unblock", "cli.not_authorized"),
        ("alert", "us.cnam_missing"),
    ], worker.log_tail()


def test_blocks_clear_writes_the_unblock(stack, kafka_bootstrap, topic_prefix, tmp_path):
    w = stack("w1")
    record = [
        {
            "call_id": "u-1",
            "started_at": "2026-05-04T10:00:00Z",
            "caller_id": "+448701234567",
            "destination": "+442071838750",
        }
    ]
    produce(kafka_bootstrap, topic_prefix, write_jsonl(tmp_path / "a.jsonl", record))
    wait_for(lambda: decisions(kafka_bootstrap, topic_prefix), 90, "the UK block", w)
    out = cidwatch(kafka_bootstrap, topic_prefix, "blocks", "clear", "+44 870 123 4567", "--by", "alice",
                   "--reason", "number ported  to us, ticket 42").stdout
    assert "uk.cli_not_permitted" in out
    got = wait_for(
        lambda: (lambda ds: ds if len(ds) >= 3 else None)(decisions(kafka_bootstrap, topic_prefix)),
        60,
        "the worker's unblock",
    )
    # the command's unblock, then the worker's: the same id and message (who and why reach the worker)
    assert [d["kind"] for d in got] == ["block", "unblock", "unblock"]
    assert got[1] == got[2]
    assert got[1]["message"] == ("Block of +448701234567 by uk.cli_not_permitted cleared by alice: "
                                 "number ported to us, ticket 42")
    assert "+448701234567" not in cidwatch(kafka_bootstrap, topic_prefix, "blocks", "list").stdout
    history = cidwatch(kafka_bootstrap, topic_prefix, "history", "+44 870 123 4567")
    lines = history.stdout.splitlines()
    assert [line.split("  ")[1:3] for line in lines] == [["block", "uk.cli_not_permitted"],
                                                         ["unblock", "uk.cli_not_permitted"]]
    assert lines[0].startswith("2026-05-04T10:00:00Z") and "cleared by alice" in lines[1]
    assert "2 decision(s) about +44 870 123 4567" in history.stderr


def test_restart_and_rebalance_lose_nothing(stack, kafka_bootstrap, topic_prefix, tmp_path):
    records = call_end_order(stream_records())
    own = [r for r in records if r["caller_id"] == OWNED_FR]
    first = [r for r in records if r["caller_id"] != OWNED_FR] + own[:230]  # OWNED_FR between 200 and 250
    second, third = own[230:], records[-5:]  # the rest of OWNED_FR, then re-deliveries
    path = write_jsonl(tmp_path / "all.jsonl", first + second + third)
    expected = replay_decisions(path)

    w1 = stack("w1", "--inventory", INVENTORY)
    produce(kafka_bootstrap, topic_prefix, write_jsonl(tmp_path / "1.jsonl", first))
    wait_for(
        lambda: any(d["caller_id"] == OWNED_FR and d["count"] == 200 for d in decisions(kafka_bootstrap, topic_prefix)),
        120,
        "OWNED_FR's 200-call alert",
        w1,
    )
    assert w1.stop() == 0  # graceful
    w1.start()
    produce(kafka_bootstrap, topic_prefix, write_jsonl(tmp_path / "2.jsonl", second))
    block = wait_for(
        lambda: [
            d for d in decisions(kafka_bootstrap, topic_prefix) if d["caller_id"] == OWNED_FR and d["kind"] == "block"
        ],
        120,
        "OWNED_FR's block after the restart",
        w1,
    )
    assert block[0]["count"] == 250 and block[0]["call_id"] == "own-249"  # the count survived the restart

    group = f"{topic_prefix}cidwatch"
    before = wait_for(lambda: group_assignment(kafka_bootstrap, group), 30, "w1 in the group")
    assert len(before) == 1
    w2 = stack("w2", "--inventory", INVENTORY)
    after = wait_for(
        lambda: (lambda g: g if len(g) == 2 and all(g.values()) else None)(group_assignment(kafka_bootstrap, group)),
        120,
        "w2 owning partitions",
        w2,
    )

    def by_subject(owned: set[tuple[str, int]]) -> set[int]:
        return {p for topic, p in owned if topic == f"{topic_prefix}cdr.by-subject"}

    assert [by_subject(p) for p in before.values()] == [{0, 1, 2, 3}]  # w1 alone owned every partition
    assert all(by_subject(p) for p in after.values())  # now each worker owns some of them: they moved
    assert set().union(*map(by_subject, after.values())) == {0, 1, 2, 3}
    produce(kafka_bootstrap, topic_prefix, write_jsonl(tmp_path / "3.jsonl", third))
    got = settle(lambda: decisions(kafka_bootstrap, topic_prefix), len(expected), timeout=120)
    assert w1.running() and w2.running()
    assert {d["id"] for d in got} == {d["id"] for d in expected}
    assert comparable(got) == comparable(expected)


ASTERISK = ROOT / "tests" / "fixtures" / "adapters" / "asterisk"


def test_raw_format_topic_is_converted_in_the_stream(stack, kafka_bootstrap, topic_prefix, tmp_path):
    """`worker --input-format asterisk` reads raw.asterisk (one Master.csv row a message) and judges it
    exactly as replay --format asterisk does; a row that does not convert goes to the DLQ."""
    from kafka import KafkaProducer

    profile = ASTERISK / "rules.profile.yaml"
    rows = (ASTERISK / "rules.csv").read_bytes().splitlines()
    out = tmp_path / "replay"
    cidwatch(
        kafka_bootstrap,
        topic_prefix,
        "replay",
        ASTERISK / "rules.csv",
        "--format",
        "asterisk",
        "--profile",
        profile,
        "--out",
        out,
    )
    expected = [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]
    assert {d["rule"] for d in expected} >= {"fr.daily_limit", "us.tollfree_to_tollfree", "uk.cli_not_permitted"}
    worker = stack("w1", "--input-format", "asterisk", "--profile", profile)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for row in [*rows, b'"only","three","columns"']:
        producer.send(f"{topic_prefix}raw.asterisk", key=b"pbx1", value=row)
    producer.flush()
    producer.close()
    got = settle(lambda: decisions(kafka_bootstrap, topic_prefix), len(expected), timeout=120)
    assert comparable(got) == comparable(expected), worker.log_tail()
    dlq = wait_for(
        lambda: [json.loads(v) for _, v in read_topic(kafka_bootstrap, f"{topic_prefix}dlq")],
        60,
        "the unconvertible row in the DLQ",
        worker,
    )
    assert [d["error_class"] for d in dlq] == ["conversion"]
    assert dlq[0]["source"]["topic"] == f"{topic_prefix}raw.asterisk"


def test_produce_converts_other_formats(stack, kafka_bootstrap, topic_prefix):
    proc = cidwatch(
        kafka_bootstrap,
        topic_prefix,
        "produce",
        ASTERISK / "golden.csv",
        "--format",
        "asterisk",
        "--profile",
        ASTERISK / "golden.profile.yaml",
    )
    sent = [json.loads(v) for _, v in read_topic(kafka_bootstrap, f"{topic_prefix}cdr")]
    lines = (ASTERISK / "golden.expected.jsonl").read_text().splitlines()
    expected = [json.loads(line)["record"] for line in lines if json.loads(line).get("record")]
    assert f"sent {len(expected)} records" in proc.stdout
    assert sorted(sent, key=lambda r: r["call_id"]) == sorted(expected, key=lambda r: r["call_id"])
