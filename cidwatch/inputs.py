"""Reading canonical CDR files (JSON Lines, CSV, Parquet) record by record, with their locations.

Each record keeps its file and line so a reject can say exactly where it came from; a malformed
line is a reject, never the end of the run: whatever its bytes (not UTF-8, not JSON, nested too deeply,
numbers too long to read), a JSON Lines line becomes a record or a reject with its reason, and a CSV
cell that is not UTF-8 reaches `parse_cdr` as text with lone surrogates, which it rejects by field.
"""

from __future__ import annotations

import gzip
import io
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
CHUNK_ROWS = 65_536  # CSV and Parquet rows turned into records at a time
# Columns a canonical CSV or Parquet file must have: without them every row would be rejected (call_id,
# started_at) or judged with an empty caller ID (a false cli.invalid on every call).
REQUIRED_COLUMNS = ("call_id", "started_at", "caller_id")
GZIP_MAGIC = b"\x1f\x8b"


class InputError(ValueError):
    """A file that cannot be read at all (as opposed to a bad record inside it)."""


@dataclass(frozen=True, slots=True)
class RawRecord:
    file: str
    location: str  # "line 12" (JSON Lines, CSV) or "row 3" (Parquet)
    value: Any  # a mapping when the record parsed, else None
    error: str | None = None  # why it could not be read as a record


def is_gzip(path: Path) -> bool:
    """Rotated switch exports and archives are gzip files: known by their magic bytes, whatever the name."""
    with path.open("rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def open_bytes(path: Path) -> io.BufferedIOBase:
    """The file's bytes, decompressed when it is gzip: every reader opens files through this."""
    if is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def read_bytes(path: Path) -> bytes:
    """The whole file, decompressed when it is gzip; a broken archive is an InputError."""
    try:
        with open_bytes(path) as handle:
            return handle.read()
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable gzip file: {exc}") from exc


def canonical_kind(path: Path) -> str:
    """The canonical kind by extension; `.gz` after it (cdrs.jsonl.gz) is read through gzip."""
    suffix = (path.with_suffix("") if path.suffix.lower() == ".gz" else path).suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise InputError(f"{path}: unknown file type {suffix!r}; expected .jsonl, .csv or .parquet")


def require_file(path: Path) -> None:
    """Raise InputError when `path` is not a file: missing, or a directory (name the files instead)."""
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a file; name the files in it (for example {path}/*.jsonl)")
    if not path.is_file():
        raise InputError(f"{path}: no such file")


def read_canonical(path: Path) -> Iterator[RawRecord]:
    """Records of one canonical file, chosen by extension."""
    require_file(path)
    kind = canonical_kind(path)
    if kind == "jsonl":
        yield from _read_jsonl(path)
    elif kind == "csv":
        yield from _read_csv(path)
    else:
        yield from _read_parquet(path)


def read_jsonl_part(path: Path, start: int, end: int, first_line: int) -> Iterator[RawRecord]:
    """The records of a JSON Lines file's lines from byte `start` to byte `end` (both where a line
    starts, or the end of the file), numbered from `first_line`: how replay reads a file in parts."""
    return _read_jsonl(path, start, end, first_line)


def _read_jsonl(path: Path, start: int = 0, end: int | None = None, first_line: int = 1) -> Iterator[RawRecord]:
    with open_bytes(path) as handle:
        if start:
            handle.seek(start)
        lines = handle if end is None else io.BytesIO(handle.read(end - start))
        for number, line in enumerate(lines, start=first_line):
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
        with open_bytes(path) as handle:
            yield from _csv_records(path, handle)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable CSV file: {exc}") from exc


def _csv_records(path: Path, handle: io.BufferedIOBase) -> Iterator[RawRecord]:
    offset = 0
    # object, not str: pandas' Arrow-backed strings refuse the surrogate escapes of undecodable bytes
    with pd.read_csv(handle, dtype=object, keep_default_na=False, encoding="utf-8",
                     encoding_errors="surrogateescape", chunksize=CHUNK_ROWS) as chunks:
        for frame in chunks:
            if offset == 0:  # the first chunk (a file of a header alone has no rows to reject)
                require_columns(path, "line 1: the header", [str(name) for name in frame.columns])
            for row in frame.to_dict("records"):
                yield RawRecord(str(path), f"line {offset + 2}", row)
                offset += 1


def require_columns(path: Path, where: str, columns: list[str]) -> None:
    """One error for the file, not one reject per row, when a required column is absent."""
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise InputError(f"{path}: {where} lacks the required column{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(missing)}")


def _read_parquet(path: Path) -> Iterator[RawRecord]:
    try:
        frame = pd.read_parquet(io.BytesIO(read_bytes(path)) if is_gzip(path) else path)
    except InputError:
        raise
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise InputError(f"{path}: not a readable Parquet file: {exc}") from exc
    require_columns(path, "the schema", list(frame.columns))
    for start in range(0, len(frame), CHUNK_ROWS):  # one chunk of dicts at a time
        for offset, row in enumerate(frame.iloc[start:start + CHUNK_ROWS].to_dict("records"), start=start):
            yield RawRecord(str(path), f"row {offset + 1}", row)
