"""`cidwatch replay --report`: the HTML page, its four embedded plots, and the numbers behind them.

The page itself was also rendered with headless Chromium and looked at (see cidwatch/report.py);
these tests pin what a reader relies on: it exists, it is self-contained, it names every rule that
decided something, and the risk scores and caps are the engine's own.
"""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cidwatch.replay import ReplayResult, summary_frame
from cidwatch.report import FULL_RISK_NOTE, NO_RISK_NOTE, cap_label, risk_peaks, write_report
from rules.risk import RiskScore

ROOT = Path(__file__).resolve().parent.parent
IMAGE = re.compile(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def images(page: str) -> dict[str, bytes]:
    return {alt: base64.b64decode(data) for alt, data in IMAGE.findall(page)}


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("replay")
    done = subprocess.run(
        [sys.executable, "-m", "cidwatch", "replay", "examples/cdrs.jsonl", "--inventory", "examples/inventory.yaml",
         "--out", str(out), "--report"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert f"wrote {out / 'report.html'}" in done.stdout
    return out


def test_report_embeds_four_plots(replayed: Path) -> None:
    page = (replayed / "report.html").read_text(encoding="utf-8")
    found = images(page)
    assert list(found) == ["Daily volume per caller ID against its cap", "Decisions over time by rule",
                           "Spam-label risk score distribution", "Answer rate by caller country"]
    for png in found.values():
        assert png.startswith(PNG_MAGIC) and len(png) > 5_000  # a real plot, not an empty canvas
    assert "<img" in page and 'src="http' not in page and "<script" not in page  # self-contained


def test_report_names_the_rules_inputs_and_counts(replayed: Path) -> None:
    page = (replayed / "report.html").read_text(encoding="utf-8")
    rules = {json.loads(line)["rule"] for line in (replayed / "decisions.jsonl").read_text().splitlines()}
    assert len(rules) >= 8
    for rule in rules:
        assert f"<td>{rule}</td>" in page and f"docs/runbooks/{rule}.md" in page
    assert "<code>examples/cdrs.jsonl</code>" in page
    assert "<td>records read</td><td class=n>534</td>" in page
    assert "<td>decisions</td><td class=n>14</td>" in page
    assert re.search(r"Generated at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page)
    assert html.escape(FULL_RISK_NOTE) in page  # replay records the engine's own scores, all factors


def test_an_empty_replay_still_gives_a_page(tmp_path: Path) -> None:
    result = ReplayResult()
    path = write_report(result, tmp_path, summary_frame(result))
    page = path.read_text(encoding="utf-8")
    assert len(images(page)) == 4 and "No decisions." in page and "No calls." in page


def test_the_cap_line_is_the_engines_own(tmp_path: Path) -> None:
    """The daily-volume plot draws the cap the engine reported for each caller ID: the French
    operators' cap for a non-NPV French number, the spam guidance for an NPV or a US one."""
    from cidwatch.inputs import RawRecord
    from cidwatch.replay import replay
    from cidwatch.report import calls_frame
    from rules.engine import Engine
    from rules.pack import load_packs

    start = datetime(2026, 3, 2, 8, tzinfo=UTC)
    records = [{"call_id": f"{cli}-{i}", "started_at": (start + timedelta(minutes=i)).isoformat(), "caller_id": cli,
                "destination": "+33612345678"}
               for cli in ("+33184884000", "+33162000010", "+14155550100") for i in range(3)]
    raw = [RawRecord("t.jsonl", f"line {i + 1}", r) for i, r in enumerate(records)]
    result = replay(raw, Engine(load_packs()), now=datetime(2000, 1, 1, tzinfo=UTC))
    caps = calls_frame(result).groupby("caller_id")["daily_cap"].first().to_dict()
    assert caps == {"+33184884000": 250.0, "+33162000010": 100.0, "+14155550100": 100.0}
    assert cap_label(250.0) == (250.0, "cap 250") and cap_label(None) == (100.0, "guidance 100/day")


def test_engine_scores_are_shown_and_a_disabled_risk_rule_says_so() -> None:
    result = ReplayResult()
    assert risk_peaks(result) == ({}, NO_RISK_NOTE)
    engine = RiskScore(91.0, {"volume": 20.0, "short_calls": 15.0})
    result.risk_peaks = {"+14155550100": engine}
    assert risk_peaks(result) == ({"+14155550100": engine}, FULL_RISK_NOTE)


def test_a_section_per_enabled_jurisdiction_pack(tmp_path: Path) -> None:
    fixtures = ROOT / "tests" / "fixtures"
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "cidwatch", "replay", fixtures / "jurisdictions.jsonl", "--inventory",
                    fixtures / "jurisdictions-inventory.yaml", "--out", out, "--report"], check=True, cwd=ROOT,
                   capture_output=True)
    page = (out / "report.html").read_text(encoding="utf-8")
    for pack in ("fr (FR)", "us (US)", "es (ES)", "spoof (global)", "cli (global)"):
        assert f"<h2>Jurisdiction pack {pack}</h2>" in page, pack
    fr = page[page.index("Jurisdiction pack fr (FR)"):page.index("Jurisdiction pack spam")]
    assert "judged outbound calls presenting a FR caller ID: 26." in fr
    assert ("<td>fr.automated_not_npv</td><td class=n>0</td><td class=n>2</td><td class=n>0</td><td class=n>0</td>"
            "<td class=n>2</td>") in fr  # alert, block, unblock, resolve, caller IDs
    assert "purpose: 7 of 39 outbound calls lacked it" in fr and "ingress_country" not in fr
    spoof = page[page.index("Jurisdiction pack spoof"):]
    assert "ingress_country: 32 of 39 outbound calls lacked it" in spoof
    # Disabled packs have no section.
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(ROOT / "rules" / "packs" / "es.yaml", rules / "es.yaml")
    subprocess.run([sys.executable, "-m", "cidwatch", "replay", fixtures / "jurisdictions.jsonl", "--rules", rules,
                    "--out", out, "--report"], check=True, cwd=ROOT, capture_output=True)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert re.findall(r"<h2>Jurisdiction pack ([^<]*)</h2>", page) == ["es (ES)"]
