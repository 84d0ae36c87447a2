"""`cidwatch history CLI --from DIR` over a replay output folder (the topic is tested in test_stream.py)."""

from __future__ import annotations

import json

from stream_harness import cidwatch

from cidwatch.history import history

EXAMPLE = "examples/cdrs.jsonl"
INVENTORY = "examples/inventory.yaml"


def test_history_of_a_replay_folder_oldest_first(tmp_path):
    cidwatch("127.0.0.1:1", "x.", "replay", EXAMPLE, "--inventory", INVENTORY, "--out", tmp_path)
    proc = cidwatch("127.0.0.1:1", "x.", "history", "+33 1 84 88 40 00", "--from", tmp_path)
    lines = proc.stdout.splitlines()
    assert [line.split("  ")[1:3] for line in lines] == [
        ["alert", "fr.daily_limit"], ["block", "fr.daily_limit"], ["alert", "cli.used_while_blocked"],
        ["alert", "fr.callback_unanswered"], ["unblock", "fr.daily_limit"]]
    ats = [line.split("  ")[0] for line in lines]
    assert ats == sorted(ats)
    assert "5 decision(s) about +33 1 84 88 40 00" in proc.stderr
    as_json = cidwatch("127.0.0.1:1", "x.", "history", "+33184884000", "--from", tmp_path, "--json").stdout
    assert [json.loads(line)["rule"] for line in as_json.splitlines()][2] == "cli.used_while_blocked"


def test_history_keeps_each_id_once_and_sorts_by_at():
    decisions = [{"id": "b", "caller_id": "+33184884000", "at": "2026-05-04T11:00:00Z"},
                 {"id": "a", "caller_id": "+33184884000", "at": "2026-05-04T10:00:00Z"},
                 {"id": "b", "caller_id": "+33184884000", "at": "2026-05-04T11:00:00Z"},  # re-sent after a restart
                 {"id": "c", "caller_id": "+33184884001", "at": "2026-05-04T09:00:00Z"}]
    assert [d["id"] for d in history(decisions, "+33 1 84 88 40 00")] == ["a", "b"]


def test_history_of_a_folder_without_decisions_is_one_line(tmp_path):
    proc = cidwatch("127.0.0.1:1", "x.", "history", "+33184884000", "--from", tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"cidwatch: error: {tmp_path}/decisions.jsonl: cannot read: No such file or directory "
        f"(is {tmp_path} a replay --out folder?)"]
