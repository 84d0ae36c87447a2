"""`cidwatch replay` end to end: formats, outputs, rejects and errors, through the real command line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import hostile_fixtures
import pandas as pd
import pytest
from hostile_fixtures import HOSTILE, OVERSIZED, mixed_lines

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cdrs.jsonl"
INVENTORY = ROOT / "examples" / "inventory.yaml"
CONTRACT_FIELDS = ["id", "kind", "rule", "severity", "caller_id", "call_id", "tenant", "at", "scope", "until",
                   "count", "threshold", "message", "source"]


def cidwatch(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "cidwatch", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def good_records():
    return [r for r in read_jsonl(EXAMPLE) if "T" in r["started_at"]]


def test_example_replay_outputs(tmp_path):
    proc = cidwatch("replay", EXAMPLE, "--inventory", INVENTORY, "--out", tmp_path)
    assert "rejected: 1" in proc.stdout and "duplicates ignored: 1" in proc.stdout
    decisions = read_jsonl(tmp_path / "decisions.jsonl")
    assert all(list(d) == CONTRACT_FIELDS for d in decisions)
    assert [d["at"] for d in decisions] == sorted(d["at"] for d in decisions)
    assert {d["rule"] for d in decisions} == {
        "cli.invalid", "cli.not_authorized", "us.tollfree_to_tollfree", "tollfree.international",
        "au.cli_not_permitted", "uk.cli_not_permitted", "fr.daily_limit", "fr.callback_unanswered",
        "us.cnam_missing", "cli.used_while_blocked"}
    rejects = read_jsonl(tmp_path / "rejects.jsonl")
    assert rejects == [{"file": str(EXAMPLE), "line": "line 117", "field": "started_at",
                        "reason": "time 2026-03-29 10:00:00 has no UTC offset (pass --assume-tz to name its zone)"}]
    summary = pd.read_csv(tmp_path / "summary.csv")
    row = summary.set_index("caller_id").loc["+33184884000"]
    assert row["calls"] == 262 and row["peak_day_calls_Europe/Paris"] == 262
    assert row["fr.daily_limit"] == 3  # alert, block, unblock


def test_assume_tz_accepts_times_without_offset(tmp_path):
    cidwatch("replay", EXAMPLE, "--assume-tz", "Europe/Paris", "--out", tmp_path)
    assert read_jsonl(tmp_path / "rejects.jsonl") == []


def test_jsonl_csv_and_parquet_give_identical_decisions(tmp_path):
    records = good_records()
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    frame = pd.DataFrame(records)
    csv = tmp_path / "in.csv"
    frame.assign(answered=frame["answered"].map({True: "true", False: "false"})).to_csv(csv, index=False)
    parquet = tmp_path / "in.parquet"
    native = frame.assign(started_at=pd.to_datetime(frame["started_at"], utc=True, format="ISO8601"),
                          answered=frame["answered"].astype(bool))
    native.to_parquet(parquet)
    assert str(pd.read_parquet(parquet)["started_at"].dtype) == "datetime64[ns, UTC]" or "UTC" in str(
        pd.read_parquet(parquet)["started_at"].dtype)
    assert pd.read_parquet(parquet)["answered"].dtype == bool
    outputs = []
    for source in (jsonl, csv, parquet):
        out = tmp_path / source.suffix.strip(".")
        cidwatch("replay", source, "--inventory", INVENTORY, "--out", out)
        assert read_jsonl(out / "rejects.jsonl") == []
        outputs.append(read_jsonl(out / "decisions.jsonl"))
    assert len(outputs[0]) == 14
    assert outputs[0] == outputs[1] == outputs[2]


def test_bad_records_are_rejected_with_file_line_and_field(tmp_path):
    source = tmp_path / "bad.jsonl"
    lines = [
        '{"call_id": "a", "started_at": "2026-05-04T10:00:00Z", "caller_id": "+33123456789"}',
        "not json at all",
        '{"started_at": "2026-05-04T10:00:00Z"}',
        '{"call_id": "b", "started_at": "yesterday"}',
        '{"call_id": "c", "started_at": "2026-05-04T10:00:00Z", "answered": "maybe"}',
        '{"call_id": "d", "started_at": "2026-05-04T10:00:00Z", "duration_s": -3}',
        '{"call_id": "e", "started_at": "2026-05-04T10:00:00Z", "direction": "sideways"}',
        '{"call_id": {"x": 1}, "started_at": "2026-05-04T10:00:00Z"}',
        '[1, 2]',
    ]
    source.write_text("\n".join(lines) + "\n")
    proc = cidwatch("replay", source, "--out", tmp_path / "out")
    assert "rejected: 8" in proc.stdout
    rejects = read_jsonl(tmp_path / "out" / "rejects.jsonl")
    assert [(r["line"], r["field"]) for r in rejects] == [
        ("line 2", "record"), ("line 3", "call_id"), ("line 4", "started_at"), ("line 5", "answered"),
        ("line 6", "duration_s"), ("line 7", "direction"), ("line 8", "call_id"), ("line 9", "record")]
    assert all(r["file"] == str(source) for r in rejects)


def test_errors_that_stop_the_run_are_clear(tmp_path):
    missing = cidwatch("replay", tmp_path / "nope.jsonl", "--out", tmp_path, check=False)
    assert missing.returncode == 2 and "nope.jsonl: no such file" in missing.stderr
    bad_inventory = tmp_path / "inv.yaml"
    bad_inventory.write_text("numbers:\n  - {number: '+33123456789', source: stolen}\n")
    proc = cidwatch("replay", EXAMPLE, "--inventory", bad_inventory, "--out", tmp_path, check=False)
    assert proc.returncode == 2
    assert "inv.yaml: entry 1: field source" in proc.stderr and "Traceback" not in proc.stderr
    proc = cidwatch("replay", EXAMPLE, "--inventory", tmp_path / "absent.yaml", "--out", tmp_path, check=False)
    assert proc.returncode == 2 and "cannot read inventory" in proc.stderr


def test_empty_inventory_is_not_a_missing_one(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("numbers: []\n")
    proc = cidwatch("replay", EXAMPLE, "--inventory", empty, "--out", tmp_path / "o")
    assert "inventory: 0 numbers" in proc.stdout
    assert "cli.not_authorized" in proc.stdout
    proc = cidwatch("replay", EXAMPLE, "--out", tmp_path / "p")
    assert "no inventory given: inventory clauses skipped" in proc.stdout


def test_inventory_csv(tmp_path):
    inv = tmp_path / "inv.csv"
    inv.write_text("number,source,npv,cnam,tenant\n+33184884000,claimed,true,,acme\n")
    proc = cidwatch("replay", EXAMPLE, "--inventory", inv, "--out", tmp_path / "o")
    assert "inventory: 1 numbers" in proc.stdout
    assert "fr.daily_limit" not in proc.stdout  # npv: true in the inventory


@pytest.mark.parametrize(("edit", "message"), [
    (("at: 250", "at: 150"), "strictly ascending"),
    (("id: fr.daily_limit", "id: fr.daily_limits"), "unknown rule 'fr.daily_limits'"),
    (("timezone: Europe/Paris\n    source: >-\n      Callr", "timezone: Mars/Olympus\n    source: >-\n      Callr"),
     "unknown time zone 'Mars/Olympus'"),
    (("kind: threshold", "kind: alert"), "fr.daily_limit is a threshold rule"),
])
def test_rules_check_names_file_rule_and_field(tmp_path, edit, message):
    pack = tmp_path / "fr.yaml"
    text = (ROOT / "rules" / "packs" / "fr.yaml").read_text()
    assert edit[0] in text
    pack.write_text(text.replace(edit[0], edit[1], 1))
    proc = cidwatch("rules", "check", pack, check=False)
    assert proc.returncode == 2
    assert str(pack) in proc.stderr and message in proc.stderr


def test_rules_list_and_check_shipped_packs():
    listing = cidwatch("rules", "list").stdout
    for rule in ("cli.invalid", "fr.daily_limit", "au.cli_not_permitted", "us.cnam_missing"):
        assert rule in listing
    assert "source:" in listing
    for pack in (ROOT / "rules" / "packs").glob("*.yaml"):
        assert "OK" in cidwatch("rules", "check", pack).stdout


def test_hostile_lines_are_rejects_and_never_a_traceback(tmp_path):
    """Each hostile kind (tests/hostile_fixtures.py, the lines the stream and produce tests send) is a
    reject with its line, field and reason; the good lines around them are judged as if alone. The
    file's name is not UTF-8: rejects.jsonl still writes it (as the JSON escape of its surrogate)."""
    text, where = mixed_lines([*HOSTILE, OVERSIZED])
    source = tmp_path / os.fsdecode(b"hostile-\xff.jsonl")
    source.write_bytes(text)
    proc = cidwatch("replay", source, "--inventory", INVENTORY, "--out", tmp_path / "out", check=False)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    rejects = read_jsonl(tmp_path / "out" / "rejects.jsonl")
    assert [(r["line"], r["field"]) for r in rejects] == [(f"line {n}", bad.field) for n, bad in where.items()]
    for reject, bad in zip(rejects, where.values(), strict=True):
        assert bad.reason in reject["reason"] and len(reject["reason"]) < 400, (bad.kind, reject)
        assert reject["file"] == str(source)
    alone = tmp_path / "good.jsonl"
    alone.write_text("".join(json.dumps(r) + "\n" for r in hostile_fixtures.good_records()))
    cidwatch("replay", alone, "--inventory", INVENTORY, "--out", tmp_path / "alone")
    assert read_jsonl(tmp_path / "out" / "decisions.jsonl") == read_jsonl(tmp_path / "alone" / "decisions.jsonl")
    assert len(read_jsonl(tmp_path / "alone" / "decisions.jsonl")) >= 5


def test_csv_rows_that_are_not_utf8_or_too_long_are_rejects(tmp_path):
    source = tmp_path / "hostile.csv"
    source.write_bytes(hostile_fixtures.CSV)
    proc = cidwatch("replay", source, "--out", tmp_path / "out")
    assert "records read: 4, rejected: 2" in proc.stdout
    rejects = [(r["line"], r["field"], r["reason"]) for r in read_jsonl(tmp_path / "out" / "rejects.jsonl")]
    expected = hostile_fixtures.CSV_REJECTS
    assert [r[:2] for r in rejects] == [e[:2] for e in expected]
    assert all(e[2] in r[2] for r, e in zip(rejects, expected, strict=True))


def test_the_hash_key_is_a_secret_never_a_flag(tmp_path):
    """A flag is in every user's process list: `--hash-key` is refused in one line; the key comes from a
    file or CIDWATCH_HASH_KEY, and both give the same decisions."""
    shared = ROOT / "tests" / "fixtures" / "jurisdictions.jsonl"
    refused = cidwatch("replay", shared, "--out", tmp_path / "x", "--hash-key", "k1", check=False)
    assert refused.returncode == 2 and "--hash-key is not accepted" in refused.stderr
    assert "Traceback" not in refused.stderr and "k1" not in refused.stderr.replace("--hash-key", "")
    (tmp_path / "k1.key").write_text("k1\n", encoding="utf-8")
    cidwatch("replay", shared, "--out", tmp_path / "file", "--hash-key-file", tmp_path / "k1.key")
    env = subprocess.run([sys.executable, "-m", "cidwatch", "replay", str(shared), "--out", str(tmp_path / "env")],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "CIDWATCH_HASH_KEY": "k1"})
    assert env.returncode == 0, env.stderr
    assert (tmp_path / "file" / "decisions.jsonl").read_text() == (tmp_path / "env" / "decisions.jsonl").read_text()
    missing = cidwatch("replay", shared, "--out", tmp_path / "y", "--hash-key-file", tmp_path / "nope.key",
                       check=False)
    assert missing.returncode != 0 and "--hash-key-file" in missing.stderr and "Traceback" not in missing.stderr


def test_hash_key_keys_the_consumer_hashes_and_the_summary_counts_missing_fields(tmp_path):
    shared = ROOT / "tests" / "fixtures" / "jurisdictions.jsonl"
    scopes = {}
    for key in ("", "k1", "k2"):
        out = tmp_path / (key or "none")
        key_file = tmp_path / f"{key or 'none'}.key"
        key_file.write_text(key, encoding="utf-8")
        proc = cidwatch("replay", shared, "--out", out, "--hash-key-file", key_file)
        # Without a key (an empty file), one line says the hashes written are unkeyed.
        assert ("no hash key: destination hashes in --out are unkeyed" in proc.stderr) == (key == ""), proc.stderr
        # The 7 spoofing calls have no purpose, and without the inventory neither has the campaign call.
        assert "without purpose: 8 of 39 outbound calls" in proc.stdout
        assert "without ingress_country: 32 of 39 outbound calls" in proc.stdout
        scopes[key] = [d["scope"]["consumer"] for d in read_jsonl(out / "decisions.jsonl")
                       if d["rule"] == "fr.telemarketing_frequency"]
    assert all(len(found) == 1 for found in scopes.values())
    assert len({found[0] for found in scopes.values()}) == 3
    assert all("620000001" not in (tmp_path / d / "decisions.jsonl").read_text() for d in ("none", "k1", "k2"))
