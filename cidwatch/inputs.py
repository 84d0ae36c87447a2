"""Reading canonical CDR files (JSON Lines, CSV, Parquet) record by record, with their locations.

Each record keeps its file and line so a reject can say exactly where it came from; a malformed
line is a reject, never the end of the run: whatever its bytes (not UTF-8, not JSON, nested too deeply,
numbers too long to read), a JSON Lines line becomes a record or a reject with its reason, and a CSV
cell that is not UTF-8 reaches `parse_cdr` as text with lone surrogates, which it rejects by field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rules.cdr import CdrError, parse_json

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")


class InputError(ValueError):
    """A file that cannot be read at all (as opposed to a bad record inside it)."""


@dataclass(frozen=True, slots=True)
class RawRecord:
    file: str
    location: str  # "line 12" (JSON Lines, CSV) or "row 3" (Parquet)
    value: Any  # a mapping when the record parsed, else None
    error: str | None = None  # why it could not be read as a record


def canonical_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise InputError(f"{path}: unknown file type {suffix!r}; expected .jsonl, .csv or .parquet")


def read_canonical(path: Path) -> Iterator[RawRecord]:
    """Records of one canonical file, chosen by extension."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    kind = canonical_kind(path)
    if kind == "jsonl":
        yield from _read_jsonl(path)
    elif kind == "csv":
        yield from _read_csv(path)
    else:
        yield from _read_parquet(path)


def _read_jsonl(path: Path) -> Iterator[RawRecord]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"line {number}"
            try:
                text = line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                yield RawRecord(str(path), where, None, "record: not valid UTF-8")
                continue
            try:
                value = parse_json(text)
            except json.JSONDecodeError as exc:
                yield RawRecord(str(path), where, None, f"record: not valid JSON ({exc.msg})")
                continue
            except CdrError as exc:  # nested too deeply, a number too long to read
                yield RawRecord(str(path), where, None, str(exc))
                continue
            yield RawRecord(str(path), where, value)


def _read_csv(path: Path) -> Iterator[RawRecord]:
    try:
        # object, not str: pandas' Arrow-backed strings refuse the surrogate escapes of undecodable bytes
        frame = pd.read_csv(path, dtype=object, keep_default_na=False, encoding="utf-8",
                            encoding_errors="surrogateescape")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a readable CSV file: {exc}") from exc
    for offset, row in enumerate(frame.to_dict("records")):
        yield RawRecord(str(path), f"line {offset + 2}", row)


def _read_parquet(path: Path) -> Iterator[RawRecord]:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise InputError(f"{path}: not a readable Parquet file: {exc}") from exc
    for offset, row in enumerate(frame.to_dict("records")):
        yield RawRecord(str(path), f"row {offset + 1}", row)
