"""`replay`: the stream's rule engine over historical CDR files, with no broker.

Records are ordered by `started_at` (stable) and fed to the same `Engine` the workers run; event
time drives time-boxed unblocks, and the wall clock is looked at once, at the end of the input.
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

from cidwatch.inputs import RawRecord, read_canonical
from rules.decision import Decision
from rules.engine import Engine
from rules.inventory import Inventory
from rules.numbers import classify_with_region, strip_separators
from rules.risk import RiskScore
from rules.state import DictState
from streams.cdr import Cdr, CdrError, parse_cdr

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
class ReplayResult:
    decisions: list[Decision] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    calls: list[tuple[str, datetime, bool]] = field(default_factory=list)  # judged outbound: (CLI, start, answered)
    skipped: Counter[str] = field(default_factory=Counter)  # adapter skips by reason
    risk_peaks: dict[str, RiskScore] = field(default_factory=dict)  # CLI -> its highest spam-label risk


def load_records(items: Iterable[RawRecord], result: ReplayResult, assume_tz: tzinfo | None) -> list[Cdr]:
    """Validate raw records into CDRs; every failure becomes a reject with file, line and field."""
    records = []
    for item in items:
        result.counts["read"] += 1
        if item.error is not None:
            field_name, _, reason = item.error.partition(": ")
            result.rejects.append(Reject(item.file, item.location, field_name, reason))
            continue
        try:
            records.append(parse_cdr(item.value, assume_tz))
        except CdrError as exc:
            result.rejects.append(Reject(item.file, item.location, exc.field, exc.reason))
    return records


def run_engine(records: list[Cdr], engine: Engine, result: ReplayResult, now: datetime) -> None:
    """Feed records in `started_at` order (stable), then let the wall clock lift what is due."""
    state = DictState()
    ordered = sorted(records, key=lambda cdr: cdr.started_at)
    progress = tqdm(ordered, desc="replay", unit="cdr", disable=len(ordered) <= PROGRESS_THRESHOLD)
    for cdr in progress:
        result.decisions.extend(engine.expire(cdr.started_at, state))
        outcome = engine.process(cdr, state)
        result.decisions.extend(outcome.decisions)
        _count(outcome.status, cdr, engine, result)
        if outcome.status == "judged" and cdr.direction == "outbound":
            result.calls.append((outcome.subject, cdr.started_at, cdr.answered))
        if outcome.risk is not None:
            peak = result.risk_peaks.get(outcome.subject)
            if peak is None or outcome.risk.score > peak.score:
                result.risk_peaks[outcome.subject] = outcome.risk
    result.decisions.extend(engine.expire(now, state, force=True))
    result.decisions.sort(key=lambda decision: decision.at)


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
) -> ReplayResult:
    result = ReplayResult()
    records = load_records(raw, result, assume_tz)
    run_engine(records, engine, result, now or datetime.now(UTC))
    return result


def canonical_records(paths: Iterable[Path]) -> Iterator[RawRecord]:
    for path in paths:
        yield from read_canonical(path)


# -- outputs ------------------------------------------------------------------------------------


def write_outputs(result: ReplayResult, out: Path, summary_zone: str = SUMMARY_ZONE) -> pd.DataFrame:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "decisions.jsonl").open("w", encoding="utf-8") as handle:
        for decision in result.decisions:
            handle.write(json.dumps(decision.to_dict(), ensure_ascii=False) + "\n")
    with (out / "rejects.jsonl").open("w", encoding="utf-8") as handle:
        for reject in result.rejects:
            handle.write(json.dumps(reject.to_dict(), ensure_ascii=False) + "\n")
    summary = summary_frame(result, summary_zone)
    summary.to_csv(out / "summary.csv", index=False)
    return summary


def summary_frame(result: ReplayResult, summary_zone: str = SUMMARY_ZONE) -> pd.DataFrame:
    """Per caller ID: calls, answer rate, peak local-day count, and decisions per rule."""
    calls = pd.DataFrame(result.calls, columns=["caller_id", "started_at", "answered"])
    if calls.empty:
        per_cli = pd.DataFrame(columns=["caller_id", "calls", "answer_rate", "peak_day_calls", "peak_day"])
    else:
        calls["day"] = pd.to_datetime(calls["started_at"], utc=True).dt.tz_convert(summary_zone).dt.date
        grouped = calls.groupby("caller_id")
        per_cli = pd.DataFrame({"calls": grouped.size(), "answer_rate": grouped["answered"].mean().round(4)})
        daily = calls.groupby(["caller_id", "day"]).size().rename("n").reset_index()
        peaks = daily.sort_values(["caller_id", "n", "day"], ascending=[True, False, True]).drop_duplicates("caller_id")
        peaks = peaks.set_index("caller_id")[["n", "day"]].rename(columns={"n": "peak_day_calls", "day": "peak_day"})
        per_cli = per_cli.join(peaks)
        per_cli = per_cli.reset_index()
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
        lines.append("no inventory given: inventory clauses skipped (cli.not_authorized, au.cli_not_permitted "
                     "ownership, fr.callback_unanswered, us.cnam_missing)")
    else:
        lines.append(f"inventory: {len(inventory)} numbers")
    by_rule = Counter((d.rule, d.kind) for d in result.decisions)
    lines.append(f"decisions: {len(result.decisions)}")
    lines.extend(f"  {rule:<26} {kind:<8} {n}" for (rule, kind), n in sorted(by_rule.items()))
    return lines


def as_dicts(decisions: Iterable[Decision]) -> list[dict[str, Any]]:
    return [decision.to_dict() for decision in decisions]
