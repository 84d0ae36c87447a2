"""`cidwatch replay --format NAME` end to end on the rule-tripping fixtures of every adapter.

Each fixture (written by fixtures/adapters/make_fixtures.py, in that system's own shape) carries the
same calls, so the same decisions must come out whatever the format: a toll-free to toll-free block,
a UK 0870 block, and the French daily limit (alert at 200, block at 250) for +33123456789.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from adapter_helpers import FIXTURES, REPO

RULE_FIXTURES = {
    "asterisk": ("asterisk/rules.csv", "asterisk/rules.profile.yaml"),
    "freeswitch-csv": ("freeswitch-csv/rules.csv", "freeswitch-csv/rules.profile.yaml"),
    "freeswitch-json": ("freeswitch-json/rules.jsonl", None),
    "connect-ctr": ("connect-ctr/rules.jsonl", None),
    "twilio": ("twilio/rules.json", None),
    "kamailio-acc": ("kamailio-acc/rules.txt", None),
}
TOLLFREE_CLI, UK_CLI, FR_CLI = "+18005550100", "+448701234567", "+33123456789"


def replay(out: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "cidwatch", "replay", *map(str, args), "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def decisions(out: Path) -> list[dict]:
    lines = (out / "decisions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def replay_fixture(fmt: str, out: Path, format_arg: str | None = None) -> tuple[list[dict], str]:
    data, profile = RULE_FIXTURES[fmt]
    args: list[str | Path] = [FIXTURES / data, "--format", format_arg or fmt]
    if profile:
        args += ["--profile", FIXTURES / profile]
    proc = replay(out, *args)
    return decisions(out), proc.stdout


@pytest.mark.parametrize("fmt", RULE_FIXTURES)
def test_replay_trips_the_rules(fmt: str, tmp_path: Path) -> None:
    found, _ = replay_fixture(fmt, tmp_path)
    kinds = Counter((d["rule"], d["kind"], d["caller_id"]) for d in found)
    assert kinds[("us.tollfree_to_tollfree", "block", TOLLFREE_CLI)] == 1
    assert kinds[("uk.cli_not_permitted", "block", UK_CLI)] == 1
    assert kinds[("fr.daily_limit", "alert", FR_CLI)] == 1
    assert kinds[("fr.daily_limit", "block", FR_CLI)] == 1
    assert not [d for d in found if d["rule"] == "cli.invalid"], "a skipped or converted record raised cli.invalid"
    fr_alert = next(d for d in found if d["rule"] == "fr.daily_limit" and d["kind"] == "alert")
    fr_block = next(d for d in found if d["rule"] == "fr.daily_limit" and d["kind"] == "block")
    assert (fr_alert["count"], fr_block["count"]) == (200, 250)


def test_replay_judges_a_connect_contact_once_whatever_its_copies(tmp_path: Path) -> None:
    found, stdout = replay_fixture("connect-ctr", tmp_path)
    tollfree = [d for d in found if d["rule"] == "us.tollfree_to_tollfree"]
    assert len(tollfree) == 1
    copies = [json.loads(line) for line in (FIXTURES / "connect-ctr/rules.jsonl").read_text().splitlines()]
    contact = next(r for r in copies if r["SystemEndpoint"] and r["SystemEndpoint"]["Address"] == TOLLFREE_CLI)
    assert sum(r["ContactId"] == contact["ContactId"] for r in copies) == 3
    assert tollfree[0]["call_id"] == contact["ContactId"]
    assert "older copy of a contact" in stdout and "records read: 262" in stdout


@pytest.mark.parametrize("fmt", ["asterisk", "connect-ctr", "kamailio-acc"])
def test_replay_auto_detects_and_says_which(fmt: str, tmp_path: Path) -> None:
    found, stdout = replay_fixture(fmt, tmp_path, format_arg="auto")
    assert f"format {fmt}" in stdout
    assert {d["rule"] for d in found} >= {"us.tollfree_to_tollfree", "uk.cli_not_permitted", "fr.daily_limit"}


def test_replay_reports_adapter_rejects_with_their_location(tmp_path: Path) -> None:
    replay(tmp_path, FIXTURES / "asterisk/malformed.csv", "--format", "asterisk",
           "--profile", FIXTURES / "asterisk/malformed.profile.yaml")
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == ["line 1", "line 2", "line 3", "line 4"]
    assert "disposition" in rejects[2]["reason"]


def test_make_fixtures_reproduces_the_committed_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_fixtures", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    module.main(tmp_path)
    for name in module.RULE_FIXTURES:
        assert (tmp_path / name).read_bytes() == (FIXTURES / name).read_bytes(), name
