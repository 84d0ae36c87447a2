"""`cidwatch replay --report`: the HTML page, its four embedded plots, and the numbers behind them.

The page itself was also rendered with headless Chromium and looked at (see cidwatch/report.py);
these tests pin what a reader relies on: it exists, it is self-contained, it names every rule that
decided something, and the risk score says how much of the model it could compute.
"""

from __future__ import annotations

import base64
import html
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cidwatch.replay import ReplayResult, summary_frame
from cidwatch.report import FULL_RISK_NOTE, daily_cap, partial_risk_peaks, risk_peaks, write_report
from rules.risk import DEFAULT_CONFIG, RiskScore

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
    assert "<td>decisions</td><td class=n>13</td>" in page
    assert re.search(r"Generated at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page)
    assert html.escape(FULL_RISK_NOTE) in page  # replay records the engine's own scores, all factors


def test_an_empty_replay_still_gives_a_page(tmp_path: Path) -> None:
    result = ReplayResult()
    path = write_report(result, tmp_path, summary_frame(result))
    page = path.read_text(encoding="utf-8")
    assert len(images(page)) == 4 and "No decisions." in page and "No calls." in page


def test_caps_follow_the_rule_and_the_guidance() -> None:
    assert daily_cap("+33184884000", 250.0) == (250.0, "cap 250 (FR, not NPV)")
    assert daily_cap("+33162000010", 250.0)[0] == 100.0  # NPV: no operator cap, the spam guidance
    assert daily_cap("+14155550100", 250.0)[0] == 100.0
    assert daily_cap("anonymous", 250.0)[0] == 100.0


def test_partial_risk_is_the_lower_bound_of_three_factors() -> None:
    """A robocall-like CLI (300 calls in 3 h, 5 % answered) scores the full volume, burst and
    answer-rate points, and nothing for the factors the replay does not record."""
    start = datetime(2026, 3, 2, 8, tzinfo=UTC)
    calls = [("+14155550100", start + timedelta(seconds=36 * i), i % 20 == 0) for i in range(300)]
    calls += [("+14155550199", start + timedelta(minutes=10 * i), i % 2 == 0) for i in range(30)]  # an agent
    peaks = partial_risk_peaks(calls, DEFAULT_CONFIG)
    robo, agent = peaks["+14155550100"], peaks["+14155550199"]
    assert robo.factors["volume"] == 20.0 and robo.factors["burst"] == 15.0 and robo.factors["answer_rate"] == 20.0
    assert robo.score == 55.0
    assert {robo.factors[f] for f in ("short_calls", "rejections", "attestation", "distinct_destinations")} == {0.0}
    assert agent.score == 0.0


def test_engine_scores_win_when_the_replay_records_them() -> None:
    result = ReplayResult()
    result.calls.append(("+14155550100", datetime(2026, 3, 2, 8, tzinfo=UTC), False))
    engine = RiskScore(91.0, {"volume": 20.0, "short_calls": 15.0})
    result.risk_peaks = {"+14155550100": engine}  # type: ignore[attr-defined]  # the field asked for
    peaks, note, ceiling = risk_peaks(result)
    assert peaks == {"+14155550100": engine} and note == FULL_RISK_NOTE and ceiling == 100.0
