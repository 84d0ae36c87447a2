"""Asterisk rows of one call sent one line per Kafka message (as Filebeat, Vector or Fluent Bit ship
Master.csv) are judged as replay judges the file, on a real broker: an inbound call that a later party
answered is not an unanswered callback, a call nobody answered is judged once the next call comes or the
wait ends, and a SIGKILL while rows are held loses nothing (the commit stayed behind them)."""

from __future__ import annotations

import json
import signal

from stream_fixtures import comparable
from stream_harness import Worker, cidwatch, decisions, settle, wait_for

from streams.adapters import load_profile, read_source

PROFILE = """timezone: Europe/Paris
default_region: FR
asterisk:
  newcdrcolumns: true
  merge_wait_seconds: 12
"""
INVENTORY = """numbers:
  - {number: "+33145678900", source: claimed, tenant: acme}
  - {number: "+33145678902", source: claimed, tenant: acme}
"""
_ROW = ('"","{src}","{dst}","{ctx}","""X"" <{src}>","PJSIP/a-1","PJSIP/{party}-2","Dial","PJSIP/{party},20",'
        '"2024-03-12 {start}","{answer}","2024-03-12 09:05:00",{dur},{bill},"{disp}","DOCUMENTATION","{uid}","",'
        '"","{uid}",{seq}')


def row(uid: str, src: str, dst: str, party: str, disp: str, seq: int, *, start: str = "09:00:00",
        ctx: str = "from-pstn") -> bytes:
    answered = disp == "ANSWERED"
    return _ROW.format(src=src, dst=dst, ctx=ctx, party=party, start=start, uid=uid, seq=seq, disp=disp,
                       answer="2024-03-12 09:00:09" if answered else "", dur=129 if answered else 9,
                       bill=120 if answered else 0).encode()


# A: inbound to +33145678900, rung on three phones, the second answered (judged unanswered from its first
# row alone: a false fr.callback_unanswered). B: inbound to +33145678902, nobody answered (a true one).
# C: outbound from a number nobody listed (cli.not_authorized), one row.
CALL_A = [row("1710234000.1", "0612345678", "0145678900", p, d, n)
          for n, (p, d) in enumerate([("1001", "NO ANSWER"), ("1002", "ANSWERED"), ("1003", "NO ANSWER")])]
CALL_B = [row("1710234100.2", "0612345679", "0145678902", p, "NO ANSWER", 10 + n, start="09:01:40")
          for n, p in enumerate(("1001", "1002"))]
CALL_C = [row("1710234200.3", "0145678999", "0612345670", "trunk", "ANSWERED", 20, start="09:03:20",
              ctx="from-internal")]


def start_worker(kafka_bootstrap, topic_prefix, tmp_path, name: str) -> Worker:
    return Worker(kafka_bootstrap, topic_prefix, tmp_path / name, "--partitions", "2", "--input-format", "asterisk",
                  "--profile", tmp_path / "profile.yaml", "--inventory", tmp_path / "inventory.yaml").start()


def replayed(tmp_path, rows: list[bytes]) -> list[dict]:
    """Replay of the same rows as one file: the adapter merges the parties."""
    source = tmp_path / "Master.csv"
    source.write_bytes(b"\n".join(rows) + b"\n")
    converted = tmp_path / "converted.jsonl"
    records = [item.record for item in read_source(source, "asterisk", load_profile(tmp_path / "profile.yaml"))]
    converted.write_text("".join(json.dumps(r) + "\n" for r in records if r is not None), encoding="utf-8")
    out = tmp_path / "replay"
    cidwatch("", "", "replay", converted, "--inventory", tmp_path / "inventory.yaml", "--out", out)
    return [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]


def setup(kafka_bootstrap, topic_prefix, tmp_path) -> None:
    (tmp_path / "profile.yaml").write_text(PROFILE, encoding="utf-8")
    (tmp_path / "inventory.yaml").write_text(INVENTORY, encoding="utf-8")
    cidwatch(kafka_bootstrap, topic_prefix, "topics", "create", "--partitions", "2")


def send_lines(kafka_bootstrap, topic_prefix, rows: list[bytes], partition: int = 0) -> None:
    """One line a message, all to one partition (a shipper keying by its host)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for line in rows:
        producer.send(f"{topic_prefix}raw.asterisk", key=b"pbx1", value=line + b"\n", partition=partition)
    producer.flush()
    producer.close()


def test_rows_in_separate_messages_are_judged_as_the_file(kafka_bootstrap, topic_prefix, tmp_path):
    setup(kafka_bootstrap, topic_prefix, tmp_path)
    rows = CALL_A + CALL_B + CALL_C
    expected = replayed(tmp_path, rows)
    assert {(d["rule"], d["caller_id"]) for d in expected} == {
        ("fr.callback_unanswered", "+33145678902"), ("cli.not_authorized", "+33145678999")}
    worker = start_worker(kafka_bootstrap, topic_prefix, tmp_path, "w1")
    try:
        send_lines(kafka_bootstrap, topic_prefix, rows)
        got = settle(lambda: decisions(kafka_bootstrap, topic_prefix), len(expected), timeout=90, quiet=6)
        assert comparable(got) == comparable(expected), worker.log_tail()
    finally:
        worker.stop()


def test_held_rows_survive_a_sigkill(kafka_bootstrap, topic_prefix, tmp_path):
    """B's rows, the last of their partition, are held (nobody answered yet, more rows may come) when C,
    sent to the other partition after them, is judged and committed; the worker is killed then. Its
    successor reads B's partition again from before B's rows and judges B once the wait ends."""
    setup(kafka_bootstrap, topic_prefix, tmp_path)
    expected = replayed(tmp_path, CALL_B + CALL_C)
    worker = start_worker(kafka_bootstrap, topic_prefix, tmp_path, "w1")
    try:
        send_lines(kafka_bootstrap, topic_prefix, CALL_B, partition=0)
        send_lines(kafka_bootstrap, topic_prefix, CALL_C, partition=1)
        wait_for(lambda: any(d["rule"] == "cli.not_authorized" for d in decisions(kafka_bootstrap, topic_prefix)),
                 60, "C judged", worker)
        assert not any(d["rule"] == "fr.callback_unanswered" for d in decisions(kafka_bootstrap, topic_prefix))
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait(10)
    finally:
        worker.stop()
    successor = start_worker(kafka_bootstrap, topic_prefix, tmp_path, "w2")
    try:
        got = settle(lambda: decisions(kafka_bootstrap, topic_prefix), len(expected), timeout=90, quiet=6)
        assert comparable(got) == comparable(expected), successor.log_tail()
    finally:
        successor.stop()
