"""Replay in several processes gives the single pass's result, decision for decision, in its order.

Large inputs are read in parts by worker processes and judged by partitions of subjects (see
cidwatch/replay.py); here the parts are made small so a small input takes that path too.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.generate import cdrs, write_inventory
from cidwatch import replay as replay_module
from cidwatch.inputs import read_canonical
from cidwatch.replay import ReplayResult, replay, replay_files
from rules.cdr import CdrError, parse_cdr
from rules.engine import Engine
from rules.inventory import load_inventory
from rules.pack import load_packs
from rules.state import DictState

NOW = datetime(2026, 7, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """30,000 generated CDRs over 3 days (busy French CLIs blocked each day, so unblocks of several
    CLIs fall at the same midnight), a stretch out of time order, and lines that are rejected."""
    folder = tmp_path_factory.mktemp("parallel")
    lines = [json.dumps(record) for record in cdrs(30_000)]
    rng = random.Random(7)
    stretch = lines[10_000:12_000]
    rng.shuffle(stretch)
    lines[10_000:12_000] = stretch
    for at, bad in ((5, "not json"), (9_000, '{"call_id": "x"}'), (20_000, ""), (25_000, "[1, 2]")):
        lines.insert(at, bad)
    path = folder / "cdrs.jsonl"
    path.write_text("\n".join(lines))  # no newline at the end
    return path, write_inventory(folder / "inventory.yaml")


def engine(inventory: Path) -> Engine:
    return Engine(load_packs(), load_inventory(inventory))


def outcome(result: ReplayResult) -> dict:
    return {
        "decisions": [decision.to_dict() for decision in result.decisions],
        "rejects": [reject.to_dict() for reject in result.rejects],
        "counts": dict(result.counts),
        "callers": [(cli, stats.calls, stats.answered, list(stats.days.items()), stats.daily_cap)
                    for cli, stats in result.callers.items()],
        "risk_peaks": list(result.risk_peaks.items()),
        "span": (result.first_call, result.last_call),
    }


def test_parts_and_partitions_give_the_single_pass_result(traffic, monkeypatch):
    path, inventory = traffic
    single = outcome(replay(read_canonical(path), engine(inventory), now=NOW))
    assert [reject["line"] for reject in single["rejects"]] == ["line 6", "line 9001", "line 25001"]
    unblocks = [d["at"] for d in single["decisions"] if d["kind"] == "unblock"]
    assert len(unblocks) > len(set(unblocks)) > 1  # unblocks of several CLIs at one time: their order matters
    monkeypatch.setattr(replay_module, "PART_BYTES", 256 << 10)
    monkeypatch.setattr(replay_module, "PARALLEL_BYTES", 0)
    assert outcome(replay_files([path], engine(inventory), now=NOW, workers=2)) == single
    assert outcome(replay(read_canonical(path), engine(inventory), now=NOW, workers=3)) == single


def test_jsonl_parts_end_at_line_ends_and_know_their_first_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"a\nbb\n\nccc\nd")
    parts = list(replay_module._jsonl_parts(path, size=3))
    assert parts == [(0, 5, 1), (5, 10, 3), (10, 11, 5)]


def test_risk_peaks_are_the_highest_score_of_any_call(traffic):
    """Replay skips scoring a call whose bound cannot beat the CLI's peak so far: the peaks it reports
    are still the highest `score_latest()` over every call, scored after each one in a plain loop."""
    path, inventory = traffic
    result = replay(read_canonical(path), engine(inventory), now=NOW)
    cdrs = []
    for raw in read_canonical(path):
        try:
            cdrs.append(parse_cdr(raw.value))
        except (CdrError, TypeError):
            continue
    cdrs.sort(key=lambda cdr: cdr.started_at)
    plain, store, highest = engine(inventory), DictState(), {}
    for cdr in cdrs:
        outcome = plain.judge(cdr, store)
        risk = store.subjects[outcome.subject].risk if outcome.subject in store.subjects else None
        if outcome.status == "judged" and cdr.direction == "outbound" and risk is not None:
            highest[outcome.subject] = max(highest.get(outcome.subject, 0.0), risk.score_latest().score)
    peaks = {cli: score.score for cli, score in result.risk_peaks.items()}
    assert peaks == highest
    assert sum(score >= 30 for score in peaks.values()) >= 2  # some CLIs score high, not only zeros


def test_keyed_states_judged_apart_give_the_single_pass_result():
    """The French frequency counts calls of several caller IDs (several partitions) to one consumer:
    partitions judged apart, then the keyed step in order, give the single pass's decisions."""
    fixtures = Path(__file__).parent / "fixtures"
    path, inventory = fixtures / "jurisdictions.jsonl", fixtures / "jurisdictions-inventory.yaml"
    single = outcome(replay(read_canonical(path), engine(inventory), now=NOW))
    frequency = [d for d in single["decisions"] if d["rule"] == "fr.telemarketing_frequency"]
    assert [(d["caller_id"], d["count"]) for d in frequency] == [("+33150000004", 5)]
    for workers in (2, 3):
        assert outcome(replay(read_canonical(path), engine(inventory), now=NOW, workers=workers)) == single
