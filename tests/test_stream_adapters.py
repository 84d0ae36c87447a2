"""The stream's raw.NAME path judges the stock-shape golden files (tests/fixtures/adapters, issue 10) as
replay does: FreeSWITCH JSON CDRs one document a message, Asterisk rows one call a message (a call's rows
are consecutive lines of Master.csv, written at once: docs/adapters.md), a Twilio page and a Kamailio log
file as one message each. One worker reads the four raw topics; replay reads the same conversions."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from stream_fixtures import INVENTORY, ROOT, comparable
from stream_harness import Worker, cidwatch, decisions, settle

from streams.adapters import load_profile, read_source

FIXTURES = ROOT / "tests" / "fixtures" / "adapters"
PROFILE = """timezone: Europe/Paris
default_region: FR
asterisk:
  newcdrcolumns: true
kamailio:
  inbound_source_ips: [203.0.113.0/24]
  inbound_from_domains: [ims.carrier.example.net]
  inbound_to_prefixes: ["+3314567890"]
"""
# In the order of their calls' times: the Asterisk and Kamailio files share a caller, and the worker judges
# in arrival order what replay judges in time order, so each format is sent once the previous is judged.
GOLDENS = {
    "asterisk": "asterisk/multiparty.csv",
    "kamailio-acc": "kamailio-acc/syslog_mixed.log",
    "freeswitch-json": "freeswitch-json/encoded_originate.jsonl",
    "twilio": "twilio/child_legs.json",
}


def messages(fmt: str, data: bytes) -> list[bytes]:
    """How a shipper sends each export (see the module docstring)."""
    if fmt == "freeswitch-json":
        return [line for line in data.splitlines() if line.strip()]
    if fmt == "asterisk":
        calls: dict[bytes, list[bytes]] = defaultdict(list)
        for line in data.splitlines():
            calls[line.split(b",")[16]].append(line)  # uniqueid (column 17)
        return [b"\n".join(rows) + b"\n" for rows in calls.values()]
    return [data]


@pytest.fixture
def worker(kafka_bootstrap, topic_prefix, tmp_path):
    cidwatch(kafka_bootstrap, topic_prefix, "topics", "create", "--partitions", "4")
    profile = tmp_path / "profile.yaml"
    profile.write_text(PROFILE, encoding="utf-8")
    formats = [arg for fmt in GOLDENS for arg in ("--input-format", fmt)]
    started = Worker(kafka_bootstrap, topic_prefix, tmp_path / "w1", "--partitions", "4", *formats, "--profile",
                     profile, "--inventory", INVENTORY).start()
    yield started, profile
    started.stop()


def test_stock_shapes_judged_alike_in_the_stream_and_replay(worker, kafka_bootstrap, topic_prefix, tmp_path):
    from kafka import KafkaProducer

    running, profile_path = worker
    profile = load_profile(profile_path)
    canonical = tmp_path / "converted.jsonl"
    call_ids: dict[str, set[str]] = defaultdict(set)
    with canonical.open("w", encoding="utf-8") as out:
        for fmt, name in GOLDENS.items():
            for item in read_source(FIXTURES / name, fmt, profile):
                if item.record is not None:
                    call_ids[fmt].add(item.record["call_id"])
                    out.write(json.dumps(item.record) + "\n")
    cidwatch(kafka_bootstrap, topic_prefix, "replay", canonical, "--inventory", INVENTORY, "--out", tmp_path / "r")
    expected = [json.loads(line) for line in (tmp_path / "r" / "decisions.jsonl").read_text().splitlines()]
    assert {d["rule"] for d in expected} == {"cli.not_authorized", "us.tollfree_to_tollfree",
                                            "cli.used_while_blocked"}
    assert "+33698765432" not in {d["caller_id"] for d in expected}  # the inbound acc call judges nobody
    # asterisk, freeswitch-json and twilio each decide something (Kamailio's caller is already blocked; the
    # unauthorised CLI's later calls are uses of its block: cli.used_while_blocked)
    assert {fmt for fmt in GOLDENS for d in expected if d["call_id"] in call_ids[fmt]} == {
        "asterisk", "freeswitch-json", "twilio"}

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    sent: set[str] = set()
    for fmt, name in GOLDENS.items():
        for value in messages(fmt, (FIXTURES / name).read_bytes()):
            producer.send(f"{topic_prefix}raw.{fmt}", key=b"pbx1", value=value)
        producer.flush()
        sent |= call_ids[fmt]
        due = sum(d["call_id"] in sent for d in expected)
        got = settle(lambda: decisions(kafka_bootstrap, topic_prefix), due, timeout=120)
    producer.close()
    assert comparable(got) == comparable(expected), running.log_tail()
