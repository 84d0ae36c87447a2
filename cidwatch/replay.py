"""`replay`: the stream's rule engine over historical CDR files, with no broker.

Records are validated as they are read, held in columns (`CdrTable`), ordered by `started_at`
(stable) and fed to the same `Engine` the workers run, over the same `SubjectState`; event time
drives time-boxed unblocks, and the wall clock is looked at once, at the end of the input. What the
summary and report need is counted as the records pass (per caller ID, per caller ID and local day),
so memory follows the number of caller IDs and days, not the number of records.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from cidwatch.cdr_table import CdrTable
from cidwatch.inputs import RawRecord, read_canonical
from rules.cdr import Cdr, CdrError, parse_cdr
from rules.decision import Decision
from rules.engine import Engine, Outcome
from rules.inventory import Inventory
from rules.numbers import classify_with_region, strip_separators
from rules.registry import inventory_clauses
from rules.risk import RiskScore
from rules.state import DictState
from rules.window import windows_for

PROGRESS_THRESHOLD = 100_000
SUMMARY_ZONE = "Europe/Paris"


@dataclass
class Reject:
    file: str
    line: str
    field: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "line": self.line, "field": self.field, "reason": self.reason}


@dataclass
class CallerStats:
    """One caller ID's judged outbound calls, as the summary and the report show them."""

    calls: int = 0
    answered: int = 0
    days: Counter[str] = field(default_factory=Counter)  # local day (ISO date) -> calls
    daily_cap: float | None = None  # the cap the engine holds this CLI's day to (its last word)


@dataclass
class ReplayResult:
    decisions: list[Decision] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    callers: dict[str, CallerStats] = field(default_factory=dict)  # judged outbound calls per CLI
    skipped: Counter[str] = field(default_factory=Counter)  # adapter skips by reason
    risk_peaks: dict[str, RiskScore] = field(default_factory=dict)  # CLI -> its highest spam-label risk
    summary_zone: str = SUMMARY_ZONE
    first_call: datetime | None = None  # the earliest and latest judged outbound calls
    last_call: datetime | None = None


def load_records(items: Iterable[RawRecord], result: ReplayResult, assume_tz: tzinfo | None) -> CdrTable:
    """Validate raw records into CDRs; every failure becomes a reject with file, line and field."""
    table = CdrTable()
    for item in items:
        result.counts["read"] += 1
        if item.error is not None:
            field_name, _, reason = item.error.partition(": ")
            result.rejects.append(Reject(item.file, item.location, field_name, reason))
            continue
        try:
            table.append(parse_cdr(item.value, assume_tz))
        except CdrError as exc:
            result.rejects.append(Reject(item.file, item.location, exc.field, exc.reason))
    return table


def run_engine(records: CdrTable, engine: Engine, result: ReplayResult, now: datetime) -> None:
    """Feed records in `started_at` order (stable), then let the wall clock lift what is due."""
    store = DictState()
    days = windows_for("local_day", result.summary_zone)
    progress = tqdm(records.ordered(), desc="replay", unit="cdr", total=len(records),
                    disable=len(records) <= PROGRESS_THRESHOLD)
    for cdr in progress:
        outcome = engine.judge(cdr, store)
        if outcome.decisions:
            result.decisions.extend(outcome.decisions)
        _count(outcome.status, cdr, engine, result)
        if outcome.status == "judged" and cdr.direction == "outbound":
            _tally(result, outcome, cdr, days.of(cdr.started_at).key)
            risk = store.get(outcome.subject).risk
            if risk is not None:
                peak = result.risk_peaks.get(outcome.subject)
                # The bound spares scoring a call that cannot beat the peak (most calls).
                if peak is None or (risk.bound_below(peak.score) is None and risk.latest_value() > peak.score):
                    result.risk_peaks[outcome.subject] = risk.score_latest()
    result.decisions.extend(engine.expire(store, now))
    result.decisions.sort(key=lambda decision: decision.at)


def _tally(result: ReplayResult, outcome: Outcome, cdr: Cdr, day: str) -> None:
    stats = result.callers.get(outcome.subject)
    if stats is None:
        stats = result.callers[outcome.subject] = CallerStats()
    stats.calls += 1
    stats.answered += cdr.answered
    if result.first_call is None:
        result.first_call = cdr.started_at  # records come in time order
    result.last_call = cdr.started_at
    stats.days[day] += 1
    if outcome.daily_cap is not None:
        stats.daily_cap = outcome.daily_cap


def _count(status: str, cdr: Cdr, engine: Engine, result: ReplayResult) -> None:
    if status == "duplicate":
        result.counts["duplicates"] += 1
        return
    result.counts[cdr.direction] += 1
    if cdr.direction != "internal" and _unclassified(cdr.destination, engine.default_region):
        result.counts["unclassified_destinations"] += 1


def _unclassified(destination: str, default_region: str | None) -> bool:
    """A destination not written in E.164 that the default region (if any) could not normalise."""
    if strip_separators(destination).startswith("+"):
        return False
    return default_region is None or not classify_with_region(destination, default_region).valid


def replay(
    raw: Iterable[RawRecord],
    engine: Engine,
    assume_tz: tzinfo | None = None,
    now: datetime | None = None,
    summary_zone: str = SUMMARY_ZONE,
) -> ReplayResult:
    result = ReplayResult(summary_zone=summary_zone)
    records = load_records(raw, result, assume_tz)
    run_engine(records, engine, result, now or datetime.now(UTC))
    return result


def canonical_records(paths: Iterable[Path]) -> Iterator[RawRecord]:
    for path in paths:
        yield from read_canonical(path)


# -- outputs ------------------------------------------------------------------------------------


def write_outputs(result: ReplayResult, out: Path, summary_zone: str = SUMMARY_ZONE) -> pd.DataFrame:
    """decisions.jsonl, rejects.jsonl and summary.csv in `out`. A lone surrogate (a file name that is
    not UTF-8, read by Python as surrogate escapes) is written as its JSON escape, "\\udcff", which
    reads back as the same string, instead of failing the whole write."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "decisions.jsonl").open("w", encoding="utf-8", errors="backslashreplace") as handle:
        for decision in result.decisions:
            handle.write(json.dumps(decision.to_dict(), ensure_ascii=False) + "\n")
    with (out / "rejects.jsonl").open("w", encoding="utf-8", errors="backslashreplace") as handle:
        for reject in result.rejects:
            handle.write(json.dumps(reject.to_dict(), ensure_ascii=False) + "\n")
    summary = summary_frame(result, summary_zone)
    summary.to_csv(out / "summary.csv", index=False)
    return summary


def daily_frame(result: ReplayResult) -> pd.DataFrame:
    """Judged outbound calls per caller ID and local day (`result.summary_zone`): caller_id, day
    (a date), calls, answered (per caller ID, on its rows), daily_cap."""
    rows = [(cli, day, n, stats.calls, stats.answered, stats.daily_cap)
            for cli, stats in result.callers.items() for day, n in stats.days.items()]
    frame = pd.DataFrame(rows, columns=["caller_id", "day", "calls", "cli_calls", "cli_answered", "daily_cap"])
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    return frame


def summary_frame(result: ReplayResult, summary_zone: str = SUMMARY_ZONE) -> pd.DataFrame:
    """Per caller ID: calls, answer rate, peak local-day count, and decisions per rule."""
    if summary_zone != result.summary_zone:
        raise ValueError(f"the replay counted days in {result.summary_zone}, not {summary_zone}")
    if not result.callers:
        per_cli = pd.DataFrame(columns=["caller_id", "calls", "answer_rate", "peak_day_calls", "peak_day"])
    else:
        rows = []
        for cli, stats in result.callers.items():
            peak_day, peak = min(stats.days.items(), key=lambda item: (-item[1], item[0]))
            rows.append((cli, stats.calls, round(stats.answered / stats.calls, 4), peak,
                         pd.Timestamp(peak_day).date()))
        per_cli = pd.DataFrame(rows, columns=["caller_id", "calls", "answer_rate", "peak_day_calls", "peak_day"])
    decisions = pd.DataFrame([d.to_dict() for d in result.decisions], columns=["caller_id", "rule", "kind"])
    if not decisions.empty:
        pivot = decisions.pivot_table(index="caller_id", columns="rule", values="kind", aggfunc="count", fill_value=0)
        pivot["decisions"] = pivot.sum(axis=1)
        per_cli = per_cli.merge(pivot.reset_index(), on="caller_id", how="outer")
    per_cli = per_cli.rename(columns={"peak_day_calls": f"peak_day_calls_{summary_zone}",
                                      "peak_day": f"peak_day_{summary_zone}"})
    count_columns = [c for c in per_cli.columns if c == "calls" or c == "decisions" or "." in c]
    per_cli[count_columns] = per_cli[count_columns].fillna(0).astype(int)
    return per_cli.sort_values("caller_id").reset_index(drop=True)


def summary_lines(result: ReplayResult, inventory: Inventory | None) -> list[str]:
    counts = result.counts
    lines = [
        f"records read: {counts['read']}, rejected: {len(result.rejects)}, duplicates ignored: {counts['duplicates']}",
        f"outbound: {counts['outbound']}, inbound: {counts['inbound']}, internal: {counts['internal']}, "
        f"unclassified destinations: {counts['unclassified_destinations']}",
    ]
    if result.skipped:
        lines.append("skipped by the adapter: " + ", ".join(f"{k}: {v}" for k, v in sorted(result.skipped.items())))
    if inventory is None:
        lines.append(f"no inventory given: inventory clauses skipped ({', '.join(inventory_clauses())})")
    else:
        lines.append(f"inventory: {len(inventory)} numbers")
    by_rule = Counter((d.rule, d.kind) for d in result.decisions)
    lines.append(f"decisions: {len(result.decisions)}")
    lines.extend(f"  {rule:<26} {kind:<8} {n}" for (rule, kind), n in sorted(by_rule.items()))
    return lines


def as_dicts(decisions: Iterable[Decision]) -> list[dict[str, Any]]:
    return [decision.to_dict() for decision in decisions]
