"""`--format auto`: recognise a source by the shape of its first records, never by its file name.

Switches name their files Master.csv whatever the template, so only the content can say. Each test is
a positive signature of one format; anything that matches none is an error, not a guess.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streams.adapters.common import decode, head_bytes

CANONICAL = "canonical"
KNOWN = ("asterisk", "freeswitch-csv", "freeswitch-json", "connect-ctr", "twilio", "kamailio-acc")
HEAD_BYTES = 256 * 1024
PARQUET_MAGIC = b"PAR1"
# The four events Kamailio's and OpenSIPS's acc write to syslog (acc.h ACC_REQUEST, ACC_MISSED, ...).
ACC_LOG = re.compile(r"\bACC: (?:request accounted|call missed|transaction answered|request acknowledged): ")
SIP_METHODS = frozenset({"INVITE", "BYE", "ACK", "CANCEL", "OPTIONS", "REGISTER", "MESSAGE", "PRACK",
                         "UPDATE", "INFO", "NOTIFY", "SUBSCRIBE", "PUBLISH", "REFER"})
STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
ASTERISK_DISPOSITIONS = frozenset({"ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION", "CANCEL"})


def detect_format(path: Path, *, canonical: bool = False) -> str:
    """The adapter name for a file (gzip or not), or "canonical" when `canonical` allows it (JSON Lines,
    CSV with a canonical header, Parquet); ValueError when unknown."""
    raw = head_bytes(Path(path), HEAD_BYTES)
    name = CANONICAL if raw.startswith(PARQUET_MAGIC) else detect_text(decode(raw))
    if name == CANONICAL and not canonical:
        raise ValueError("these are canonical CDRs, not a switch format: use --format canonical (the default)")
    if name is None:
        raise ValueError(f"cannot recognise the CDR format from the first records (known: {', '.join(KNOWN)}); "
                         "pass --format NAME")
    return name


def detect_text(text: str) -> str | None:
    """The format of a text's first records ("canonical" for canonical CDRs), or None."""
    stripped = text.lstrip()
    if not stripped:
        return None
    if stripped[0] in "[{":
        return _detect_json(stripped)
    first_line = stripped.splitlines()[0]
    if ACC_LOG.search(stripped):  # a syslog file: the acc lines sit among other modules' lines
        return "kamailio-acc"
    return _detect_delimited(first_line)


def _detect_json(text: str) -> str | None:
    value = _first_json_value(text)
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, Mapping):
        return None
    if "ContactId" in value:
        return "connect-ctr"
    if "calls" in value or ("sid" in value and "account_sid" in value):
        return "twilio"
    if "variables" in value and ("callflow" in value or "channel_data" in value):
        return "freeswitch-json"
    if "call_id" in value and "started_at" in value:
        return CANONICAL
    return None


def _first_json_value(text: str) -> Any:
    """The first JSON value; a truncated head still tells its keys through the first complete line."""
    decoder = json.JSONDecoder()
    try:
        return decoder.raw_decode(text)[0]
    except json.JSONDecodeError:
        pass
    try:
        return decoder.raw_decode(text.splitlines()[0])[0]
    except json.JSONDecodeError:
        return _partial_keys(text)


def _partial_keys(text: str) -> dict[str, None]:
    """Top-level-looking keys of a document cut off by the head limit (a huge mod_json_cdr file)."""
    return dict.fromkeys(re.findall(r'"([A-Za-z_-]+)"\s*:', text[:HEAD_BYTES]))


def _detect_delimited(line: str) -> str | None:
    if "|" in line and line.split("|", 1)[0].strip().upper() in SIP_METHODS:
        return "kamailio-acc"
    row = next(csv.reader(io.StringIO(line)), [])
    cells = [cell.strip() for cell in row]
    lowered = {cell.lower() for cell in cells}
    if cells and (cells[0].upper() in SIP_METHODS or {"method", "callid"} <= lowered):
        return "kamailio-acc"
    if {"call_id", "started_at"} <= lowered:
        return CANONICAL
    if len(cells) >= 15 and STAMP.fullmatch(cells[4]) and UUID.fullmatch(cells[10]):
        return "freeswitch-csv"
    if 16 <= len(cells) <= 21 and STAMP.fullmatch(cells[9]) and cells[14].upper() in ASTERISK_DISPOSITIONS:
        return "asterisk"
    return None
