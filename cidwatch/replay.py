"""`replay`: the stream's rule engine over historical CDR files, with no broker.

Records are validated as they are read, held in columns (`CdrTable`), ordered by `started_at`
(stable) and fed to the same `Engine` the workers run, over the same `SubjectState`; event time
drives time-boxed unblocks, and the wall clock is looked at once, at the end of the input. What the
summary and report need is counted as the records pass (per caller ID, per caller ID and local day),
so memory follows the number of caller IDs and days, not the number of records.

Large inputs use every core, as the stream uses several workers. JSON Lines files are read and
validated in parts by worker processes (`rules.cdr.parse_cdr` in each; parts come back in order, as
columns and rejects). The engine's state is one value per subject, so the sorted records are split
by subject into partitions judged in parallel, the stream's partitioning by subject; the only thing
a single pass shares between subjects is event time, which lifts a time-boxed block or clears a
threshold level before the first record at or after its instant (lifted decisions in order of time,
then id): the merge places them there (`_merge`), so the output is the single pass's, decision for
decision.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from cidwatch.cdr_table import CdrTable, batch_of, cdrs_of, file_chunks, table_chunks
from cidwatch.inputs import RawRecord, canonical_kind, is_gzip, read_canonical, read_jsonl_part
from rules.cdr import Cdr, CdrError, parse_cdr
from rules.decision import Decision
from rules.engine import Engine, Outcome
from rules.inventory import Inventory
from rules.numbers import classify_with_region, strip_separators
from rules.registry import inventory_clauses, needed_fields
from rules.risk import RiskConfig, RiskScore, score_inputs
from rules.state import DictState, SubjectState
from rules.window import Windows, windows_for

PROGRESS_THRESHOLD = 100_000
SUMMARY_ZONE = "Europe/Paris"
PART_BYTES = 16 << 20  # JSON Lines read in parts of about this size by the worker processes
PARALLEL_BYTES = 2 * PART_BYTES  # smaller inputs are read, and judged, in this process


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


def default_workers() -> int:
    """Processes for a large replay: the cores this process may use (env CIDWATCH_REPLAY_WORKERS)."""
    configured = os.environ.get("CIDWATCH_REPLAY_WORKERS")
    if configured:
        return max(1, int(configured))
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def partition(subject: str, parts: int) -> int:
    """The engine partition of a subject (any fixed function of the subject would do)."""
    return zlib.crc32(subject.encode("utf-8", "surrogatepass")) % parts if parts > 1 else 0


def _validate(items: Iterable[RawRecord], rejects: list[Reject], assume_tz: tzinfo | None) -> Iterator[Cdr]:
    """Validate raw records into CDRs; every failure becomes a reject with file, line and field."""
    for item in items:
        if item.error is not None:
            field_name, _, reason = item.error.partition(": ")
            rejects.append(Reject(item.file, item.location, field_name, reason))
            continue
        try:
            yield parse_cdr(item.value, assume_tz)
        except CdrError as exc:
            rejects.append(Reject(item.file, item.location, exc.field, exc.reason))


def load_records(items: Iterable[RawRecord], result: ReplayResult, assume_tz: tzinfo | None,
                 table: CdrTable | None = None, engine: Engine | None = None, parts: int = 1) -> CdrTable:
    """Validate raw records into CDRs (in `table`, with their engine partition when `parts` > 1)."""
    table = CdrTable() if table is None else table
    counted = _Counted(items)
    for cdr in _validate(counted, result.rejects, assume_tz):
        table.append(cdr, partition(engine.subject(cdr), parts) if engine is not None and parts > 1 else None)
    result.counts["read"] += counted.count
    return table


class _Counted:
    """An iterable that counts what passes through it."""

    def __init__(self, items: Iterable[RawRecord]) -> None:
        self.items, self.count = items, 0

    def __iter__(self) -> Iterator[RawRecord]:
        for item in self.items:
            self.count += 1
            yield item


# -- worker processes --------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}  # in a worker process: its engine, assume_tz and partition count


def _start_worker(engine: bytes, assume_tz: tzinfo | None, parts: int) -> None:
    """A worker's set-up: `engine` pickled, `parts` the engine partitions."""
    from rules.registry import registry

    registry()  # every check module, before the engine's references to some of them are unpickled
    _WORKER.update(engine=pickle.loads(engine), assume_tz=assume_tz, parts=parts)  # noqa: S301 (our own bytes)


def _read_part(engine: Engine, assume_tz: tzinfo | None, parts: int, path: Path, start: int, end: int,
               first_line: int) -> tuple[pa.RecordBatch, list[Reject], int]:
    """One part of a JSON Lines file, validated: its records' columns (with their partitions), its
    rejects, and how many records it held."""
    rejects: list[Reject] = []
    counted = _Counted(read_jsonl_part(path, start, end, first_line))
    cdrs = list(_validate(counted, rejects, assume_tz))
    known: dict[tuple[str, str], int] = {}  # a caller ID (or our number called) is routed once per part
    places = []
    for cdr in cdrs:
        route = (cdr.direction, cdr.destination if cdr.direction == "inbound" else cdr.caller_id)
        place = known.get(route)
        if place is None:
            place = known[route] = partition(engine.subject(cdr), parts)
        places.append(place)
    return batch_of(cdrs, places), rejects, counted.count


def _read_part_in_worker(path: Path, start: int, end: int, first_line: int) -> tuple[pa.RecordBatch, list[Reject], int]:
    return _read_part(_WORKER["engine"], _WORKER["assume_tz"], _WORKER["parts"], path, start, end, first_line)


def _judge_in_worker(path: Path, now: datetime, summary_zone: str) -> _Partition:
    return _judge(_WORKER["engine"], file_chunks(path), now, summary_zone, None, alone=False)


def _pool(engine: Engine, assume_tz: tzinfo | None, processes: int, parts: int) -> ProcessPoolExecutor:
    # spawn: a fresh interpreter, never a fork of this one (pyarrow keeps threads).
    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(pickle.dumps(engine), assume_tz, parts))


def _jsonl_parts(path: Path, size: int = PART_BYTES) -> Iterator[tuple[int, int, int]]:
    """(start, end, first line) of parts of about `size` bytes, each ending where a line ends."""
    start, line = 0, 1
    with path.open("rb") as handle:
        while True:
            block = handle.read(size)
            if not block:
                return
            tail = handle.readline()  # finish the line the block stops in
            end = start + len(block) + len(tail)
            yield start, end, line
            line += block.count(b"\n") + tail.count(b"\n")
            start = end


# -- the engine ----------------------------------------------------------------------------------


# Where a single pass emits a decision: (record, 1, n) for the n-th of a record's own decisions, (record, 2, n)
# for its keyed rules' step judged apart, (record, 0, at, id) for one event time lifted before that record.
Place = tuple[Any, ...]


@dataclass
class _Partition:
    """What judging one partition of the records found. `decisions` in the order they were emitted,
    each with its place in a single pass over all the records (`places`): (record, 1, n) for the n-th
    of that record's own decisions, None for those event time lifted, which `_merge` places."""

    decisions: list[Decision] = field(default_factory=list)
    places: list[Place | None] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    callers: dict[str, tuple[int, CallerStats]] = field(default_factory=dict)  # CLI -> (first record, stats)
    # CLI -> (first record, highest score, what scores it with its breakdown, the model's config)
    risk_peaks: dict[str, tuple[int, float, tuple[int, int, int], RiskConfig]] = field(default_factory=dict)
    first_call: tuple[int, datetime] | None = None
    last_call: tuple[int, datetime] | None = None
    # Calls keyed rules judge next (record, the call, the keyed state's key), when partitions are judged
    # apart: a keyed state (per tenant and consumer) gathers calls of caller IDs of every partition.
    follow: list[tuple[int, Cdr, str]] = field(default_factory=list)


def _judge(engine: Engine, chunks: Iterable[tuple[pa.Table, Sequence[int]]], now: datetime, summary_zone: str,
           progress: tqdm | None, alone: bool = True) -> _Partition:
    """Judge a partition's records (`chunks` of them, sorted, with each one's place among all the records).
    `alone`: these are all the records, so keyed states are judged here too (else `_judge_keyed` does)."""
    store = DictState()
    days = windows_for("local_day", summary_zone)
    found = _Partition()
    judge, subjects, region = engine.judge, store.subjects, engine.default_region
    for chunk, places in chunks:
        if progress is not None:
            progress.update(chunk.num_rows)
        for record, cdr in zip(places, cdrs_of(chunk), strict=True):
            outcome = judge(cdr, store, alone)
            if not alone and outcome.follow:
                found.follow.extend((record, cdr, key) for key in outcome.follow)
            _judge_one(record, cdr, outcome, found, subjects, days, region)
            if outcome.status == "judged" and cdr.direction == "outbound" and engine.needs:
                found.counts["outbound_judged"] += 1
                for name in engine.lacking(cdr):
                    found.counts[f"lacking {name}"] += 1
    final = engine.expire(store, now)
    found.decisions += final
    found.places += [None] * len(final)
    return found


def _judge_one(record: int, cdr: Cdr, outcome: Outcome, found: _Partition, subjects: dict[str, SubjectState],
               days: Windows, region: str | None) -> None:
    """What replay keeps of one record's outcome (`record`: its place among all the records)."""
    if outcome.decisions:
        own = 0
        for n, decision in enumerate(outcome.decisions):
            found.decisions.append(decision)
            if n < outcome.lifted:  # what event time made due: `_merge` places it
                found.places.append(None)
                continue
            found.places.append((record, 1, own))
            own += 1
    counts = found.counts
    status, direction = outcome.status, cdr.direction
    if status == "duplicate":
        counts["duplicates"] += 1
        return
    counts[direction] += 1
    if direction != "internal" and _unclassified(cdr.destination, region):
        counts["unclassified_destinations"] += 1
    if status != "judged" or direction != "outbound":
        return
    subject = outcome.subject
    entry = found.callers.get(subject)
    if entry is None:
        entry = found.callers[subject] = (record, CallerStats())
    stats = entry[1]
    stats.calls += 1
    stats.answered += cdr.answered
    if found.first_call is None:
        found.first_call = (record, cdr.started_at)  # records come in time order
    found.last_call = (record, cdr.started_at)
    stats.days[days.of(cdr.started_at).key] += 1
    if outcome.daily_cap is not None:
        stats.daily_cap = outcome.daily_cap
    risk = subjects[subject].risk
    if risk is not None:
        peak = found.risk_peaks.get(subject)
        # The bound spares scoring a call that cannot beat the peak. Scores are multiples of 0.1 and the
        # bound is one of the rounded score, so a bound under peak + 0.09 means a score of peak or less.
        if peak is None:
            found.risk_peaks[subject] = (record, risk.latest_value(), risk.latest_inputs(), risk.config)
        elif risk.bound_below(peak[1] + 0.09) is None and risk.latest_value() > peak[1]:
            found.risk_peaks[subject] = (peak[0], risk.latest_value(), risk.latest_inputs(), risk.config)


def _judge_keyed(engine: Engine, follow: list[tuple[int, Cdr, str]], now: datetime) -> _Partition:
    """The keyed rules' step of the calls that partitions judged apart, in the single pass's order: each
    call after its own step (its decisions placed after the call's others), event time lifting what is
    due in the keyed states before it, the wall clock at the end."""
    store = DictState()
    found = _Partition()
    own: Counter[int] = Counter()
    for record, cdr, key in sorted(follow, key=lambda entry: entry[0]):
        if store.has_due(cdr.started_at.timestamp()):
            lifted = engine.expire(store, cdr.started_at)
            found.decisions += lifted
            found.places += [None] * len(lifted)
        state = store.get(key)
        for decision in engine.process_keyed(cdr, key, state).decisions:
            found.decisions.append(decision)
            found.places.append((record, 2, own[record]))
            own[record] += 1
        due = state.due()
        if due is not None:
            store.note_due(key, due)
    final = engine.expire(store, now)
    found.decisions += final
    found.places += [None] * len(final)
    return found


def _unclassified(destination: str, default_region: str | None) -> bool:
    """A destination not written in E.164 that the default region (if any) could not normalise."""
    if destination[:1] == "+" or strip_separators(destination).startswith("+"):
        return False
    return default_region is None or not classify_with_region(destination, default_region).valid


def run_engine(records: CdrTable, engine: Engine, result: ReplayResult, now: datetime, workers: int = 1,
               pool: Executor | None = None) -> None:
    """Feed records in `started_at` order (stable), then let the wall clock lift what is due; with
    `workers` > 1, by partitions of subjects, judged in `pool` (all but the first, judged here) from
    files, so that no process holds the records while it judges them."""
    if workers <= 1:
        table = records.sorted_table()
        progress = tqdm(desc="replay", unit="cdr", total=table.num_rows, disable=table.num_rows <= PROGRESS_THRESHOLD)
        found = [_judge(engine, table_chunks(table), now, result.summary_zone, progress)]
        progress.close()
        _merge(found, None, result)
        return
    if pool is None:
        raise ValueError("run_engine: several workers need a pool")
    with tempfile.TemporaryDirectory(prefix="cidwatch-replay-") as folder:
        paths, seconds = records.partition_files(workers, Path(folder))
        futures = [pool.submit(_judge_in_worker, path, now, result.summary_zone) for path in paths[1:]]
        progress = tqdm(desc=f"replay (1 of {workers} partitions)", unit="cdr", total=len(seconds) // workers,
                        disable=len(seconds) <= PROGRESS_THRESHOLD)
        found = [_judge(engine, file_chunks(paths[0]), now, result.summary_zone, progress, alone=False)]
        progress.close()
        found += [future.result() for future in futures]
        found.append(_judge_keyed(engine, [entry for part in found for entry in part.follow], now))
    _merge(found, seconds, result)


def _merge(found: list[_Partition], seconds: np.ndarray | None, result: ReplayResult) -> None:
    """The partitions' findings as one pass over all the records would have made them: decisions in
    the order it emits them, then (stable) by time. `seconds`: every record's time, in order (None: one
    partition, already in that order).

    A single pass lifts what event time makes due (a time-boxed block's end, a threshold level's clear)
    before the first record at or after its instant, or at the end, in order of time then id; a
    partition lifts the same decision, later or at its end, as its own records come: placed by its
    instant."""
    if seconds is None:  # one partition: the order it emitted them in
        (part,) = found
        decisions = part.decisions
    else:
        def place(decision: Decision) -> Place:
            at = decision.at.timestamp()
            return int(np.searchsorted(seconds, at, side="left")), 0, at, decision.id

        placed = [(where or place(decision), decision) for part in found
                  for where, decision in zip(part.places, part.decisions, strict=True)]
        placed.sort(key=lambda entry: entry[0])
        decisions = [decision for _, decision in placed]
    decisions.sort(key=lambda decision: decision.at)
    result.decisions.extend(decisions)
    for part in found:
        result.counts.update(part.counts)
    callers = sorted((entry for part in found for entry in part.callers.items()), key=lambda item: item[1][0])
    result.callers.update((cli, stats) for cli, (_, stats) in callers)
    peaks = sorted((entry for part in found for entry in part.risk_peaks.items()), key=lambda item: item[1][0])
    result.risk_peaks.update((cli, score_inputs(inputs, config)) for cli, (_, _, inputs, config) in peaks)
    firsts = [part.first_call for part in found if part.first_call is not None]
    lasts = [part.last_call for part in found if part.last_call is not None]
    if firsts:
        result.first_call = min(firsts, key=lambda entry: entry[0])[1]
        result.last_call = max(lasts, key=lambda entry: entry[0])[1]


def replay(
    raw: Iterable[RawRecord],
    engine: Engine,
    assume_tz: tzinfo | None = None,
    now: datetime | None = None,
    summary_zone: str = SUMMARY_ZONE,
    workers: int = 1,
) -> ReplayResult:
    """Replay records from any source (adapters, tests), read in this process; the engine in
    `workers` processes."""
    result = ReplayResult(summary_zone=summary_zone)
    records = load_records(raw, result, assume_tz, engine=engine, parts=workers)
    if workers <= 1:
        run_engine(records, engine, result, now or datetime.now(UTC))
        return result
    with _pool(engine, assume_tz, workers - 1, workers) as pool:
        run_engine(records, engine, result, now or datetime.now(UTC), workers, pool)
    return result


def replay_files(
    paths: Sequence[Path],
    engine: Engine,
    assume_tz: tzinfo | None = None,
    now: datetime | None = None,
    summary_zone: str = SUMMARY_ZONE,
    workers: int | None = None,
) -> ReplayResult:
    """Replay canonical files: JSON Lines read in parts and validated by `workers` processes (default:
    the cores available; this one and workers - 1 others) when the input is large, CSV and Parquet
    read here a chunk at a time."""
    workers = default_workers() if workers is None else max(1, workers)
    size = sum(path.stat().st_size for path in paths if _in_parts(path))
    if workers <= 1 or size < PARALLEL_BYTES:
        return replay(canonical_records(paths), engine, assume_tz, now, summary_zone)
    result = ReplayResult(summary_zone=summary_zone)
    records = CdrTable()
    with _pool(engine, assume_tz, workers - 1, workers) as pool:
        for path in paths:
            if not _in_parts(path):
                load_records(read_canonical(path), result, assume_tz, records, engine, workers)
                continue
            parts = list(_jsonl_parts(path))
            # The other processes take parts from the front, this one from the back: they meet where
            # the work is shared evenly, whatever each one's speed.
            futures = [pool.submit(_read_part_in_worker, path, *part) for part in parts]
            read_here: dict[int, tuple[pa.RecordBatch, list[Reject], int]] = {}
            for number in reversed(range(len(parts))):
                if not futures[number].cancel():
                    break  # taken by another process already, and so are the parts before it
                read_here[number] = _read_part(engine, assume_tz, workers, path, *parts[number])
            for number, future in enumerate(futures):
                batch, rejects, read = read_here.pop(number) if number in read_here else future.result()
                records.add_batch(batch)
                result.rejects.extend(rejects)
                result.counts["read"] += read
        run_engine(records, engine, result, now or datetime.now(UTC), workers, pool)
    return result


def _in_parts(path: Path) -> bool:
    """Plain JSON Lines files are read in byte ranges by several processes; a gzip stream cannot seek."""
    return canonical_kind(path) == "jsonl" and not is_gzip(path)


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
    needed = needed_fields()
    for name in sorted(needed):
        if "outbound_judged" in counts:
            lines.append(f"without {name}: {counts[f'lacking {name}']} of {counts['outbound_judged']} outbound calls "
                         f"(not judged by {', '.join(needed[name])})")
    by_rule = Counter((d.rule, d.kind) for d in result.decisions)
    lines.append(f"decisions: {len(result.decisions)}")
    lines.extend(f"  {rule:<26} {kind:<8} {n}" for (rule, kind), n in sorted(by_rule.items()))
    return lines


def as_dicts(decisions: Iterable[Decision]) -> list[dict[str, Any]]:
    return [decision.to_dict() for decision in decisions]
