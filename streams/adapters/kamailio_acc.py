"""Kamailio and OpenSIPS `acc` rows: CSV exports, pipe-separated `db_flatstore` files, or syslog lines.

An acc row has no column names, so the profile gives them (the core `method, from_tag, to_tag, callid,
sip_code, sip_reason, time` and the extras that carry the numbers). In transaction mode an answered call
is an INVITE row and a BYE row: they are joined on `callid` and the duration is the gap between them.
Missed-call rows (an INVITE with a 3xx-6xx code) are unanswered attempts with that SIP code. Several
rows of one Call-ID are one attempt: the answered INVITE wins, else the last failed branch.

The syslog backend writes `ACC: transaction answered: timestamp=…;method=…;call_id=…;code=…` lines;
their key=value pairs are read into the same row shape, so they join with the rest.
"""

from __future__ import annotations

import csv
import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streams.adapters.common import (
    Reject,
    SourceItem,
    build_record,
    call_direction,
    epoch_time,
    local_time,
    number,
    number_value,
    outcome,
    require_presented_caller,
    sip_code_value,
)
from streams.adapters.detect import SIP_METHODS
from streams.adapters.profile import KamailioOptions, Profile

FORMAT = "kamailio-acc"
CALLER_FIX = "set kamailio.caller_column to the acc extra that holds the presented number"

SYSLOG_MARKER = re.compile(r"\bACC: ([^:]*): ")
# Names the syslog backend uses for the core fields -> the database column names.
SYSLOG_KEYS = {"timestamp": "time", "call_id": "callid", "code": "sip_code", "reason": "sip_reason"}
EPOCH = re.compile(r"[0-9]+(\.[0-9]+)?")
# The head of a syslog line: RFC 3164 ("Mar 12 10:00:00 host prog[pid]: ") or an ISO stamp (RFC 5424,
# rsyslog's high-precision format, journalctl -o short-iso).
SYSLOG_HEAD = re.compile(r"(<[0-9]+>[0-9]* ?)?([A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} "
                         r"|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})")
HEADER_REQUIRED = ("method", "callid", "sip_code", "time")
LOG_LINE_SKIP = "log line that is not an acc record"


@dataclass
class AccRow:
    """One parsed row: its location, its named fields, and the values every decision needs."""

    index: int
    location: str
    fields: dict[str, str]
    method: str
    callid: str
    code: int
    time: datetime


def read(text: str, profile: Profile, *, stream: bool = False) -> Iterator[SourceItem]:
    """Parse every row, then decide per Call-ID; a message of rows is joined the same way as a file."""
    parsed = list(_parse_lines(text, profile))
    decided = _decide([row for row in parsed if isinstance(row, AccRow)], profile)  # index -> outcome
    for row in parsed:
        yield row if isinstance(row, SourceItem) else decided[row.index]


# --- parsing ----------------------------------------------------------------------------------------

def _parse_lines(text: str, profile: Profile) -> Iterator[AccRow | SourceItem]:
    options = profile.kamailio
    names = options.column_names()
    separator = options.separator
    header_seen = False
    lines = text.splitlines()
    syslog = any(SYSLOG_MARKER.search(line) for line in lines)
    for index, (line_no, line) in enumerate(enumerate(lines, 1)):
        if not line.strip():
            continue
        location = f"line {line_no}"
        if SYSLOG_MARKER.search(line):
            yield _row_or_reject(index, location, lambda line=line: _syslog_fields(line), profile)
            continue
        if SYSLOG_HEAD.match(line) or (syslog and not _looks_like_row(line)):  # other modules' log lines
            yield SourceItem(location, skip=LOG_LINE_SKIP)
            continue
        separator = separator or ("|" if "|" in line else ",")
        try:
            values = _split(line, separator)
        except csv.Error as exc:  # a field over the csv module's size limit
            yield SourceItem(location, reject=f"unreadable CSV: {exc}")
            continue
        if not header_seen and _is_header(values):
            header_seen = True
            names = names if options.columns is not None else tuple(value.strip() for value in values)
            missing = [name for name in HEADER_REQUIRED if name not in names]
            if missing:  # every row would be rejected: one error for the whole source instead
                raise ValueError(f"{location}: the header lacks the required column"
                                 f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
            continue
        header_seen = True
        yield _row_or_reject(index, location, lambda values=values, names=names: _named(values, names), profile)


def _looks_like_row(line: str) -> bool:
    """An acc row (or its header) starts with a SIP method (or `method`); a log line does not."""
    first = re.split(r"[|,;\t]", line.strip().strip('"'), maxsplit=1)[0].strip().strip('"').upper()
    return first in SIP_METHODS or first == "METHOD"


def _split(line: str, separator: str) -> list[str]:
    """db_flatstore writes values unquoted; CSV exports may quote them."""
    quoting = csv.QUOTE_NONE if separator == "|" else csv.QUOTE_MINIMAL
    return next(csv.reader([line], delimiter=separator, quoting=quoting))


def _is_header(values: list[str]) -> bool:
    lowered = {value.strip().lower() for value in values}
    return "method" in lowered and bool(lowered & {"callid", "sip_code", "from_tag", "time"})


def _named(values: list[str], names: tuple[str, ...]) -> dict[str, str]:
    if len(values) != len(names):
        raise Reject(f"expected {len(names)} columns (kamailio.columns), got {len(values)}")
    return {name: value.strip() for name, value in zip(names, values, strict=True)}


def _syslog_fields(line: str) -> dict[str, str]:
    """The key=value pairs after 'ACC: <event>: ', with the syslog names mapped to column names."""
    match = SYSLOG_MARKER.search(line)
    assert match is not None
    fields: dict[str, str] = {}
    for pair in line[match.end():].strip().split(";"):
        key, sep, value = pair.partition("=")
        if sep:
            fields[SYSLOG_KEYS.get(key.strip(), key.strip())] = value.strip()
    return fields


def _row_or_reject(
    index: int, location: str, read_fields: Callable[[], dict[str, str]], profile: Profile
) -> AccRow | SourceItem:
    """The row with its core values checked, or the reject that names the bad field."""
    try:
        fields = read_fields()
        return AccRow(
            index=index,
            location=location,
            fields=fields,
            method=_required(fields, "method").upper(),
            callid=_required(fields, "callid"),
            code=sip_code_value(_required(fields, "sip_code"), "sip_code") or 0,
            time=acc_time(_required(fields, "time"), profile, "time"),
        )
    except Reject as reject:
        return SourceItem(location, reject=reject.reason)


def _required(fields: dict[str, str], name: str) -> str:
    value = fields.get(name, "")
    if not value:
        raise Reject(f"{name}: required field is missing")
    return value


def acc_time(value: str, profile: Profile, field: str) -> datetime:
    """db_flatstore writes Unix time; a database export writes a local DATETIME in the server's zone."""
    if EPOCH.fullmatch(value.strip()):
        return epoch_time(value, field)
    try:
        return local_time(value, profile, field)
    except Reject:
        raise Reject(f"{field}: expected a Unix time or a time like 2024-03-12 08:00:00, got {value!r}") from None


# --- joining rows into call attempts -----------------------------------------------------------------

def _decide(rows: list[AccRow], profile: Profile) -> dict[int, SourceItem]:
    """One outcome per row: each Call-ID gives at most one record; its other rows are counted skips."""
    calls: dict[str, list[AccRow]] = {}
    for row in rows:
        calls.setdefault(row.callid, []).append(row)
    decided: dict[int, SourceItem] = {}
    for members in calls.values():
        decided.update(_decide_call(members, profile))
    return decided


def _decide_call(members: list[AccRow], profile: Profile) -> dict[int, SourceItem]:
    invites = [row for row in members if row.method == "INVITE" and row.code >= 200]
    answered = [row for row in invites if row.code < 300]
    kept = answered[0] if answered else (invites[-1] if invites else None)
    bye = _bye_after(members, kept) if kept and answered else None
    decided = {}
    for row in members:
        if row is kept:
            decided[row.index] = outcome(row.location, lambda: convert(kept, bye, profile))
        else:
            decided[row.index] = SourceItem(row.location, skip=_skip_reason(row, kept, bye))
    return decided


def _bye_after(members: list[AccRow], invite: AccRow) -> AccRow | None:
    byes = [row for row in members if row.method == "BYE" and row.time >= invite.time]
    return byes[0] if byes else None


def _skip_reason(row: AccRow, kept: AccRow | None, bye: AccRow | None) -> str:
    """Why a row of a call is not a record of its own."""
    if row is bye and kept is not None:
        return "BYE joined to its INVITE (duration)"
    if row.method == "BYE":
        return "BYE without an answered INVITE in this source: the call is judged where its INVITE is"
    if row.method != "INVITE":
        return f"method {row.method}: not a call attempt"
    if row.code < 200:
        return f"provisional response {row.code}: not a final outcome"
    assert kept is not None  # an INVITE with a final code always yields a kept row
    if row.code < 300:
        return "re-INVITE of an answered call"
    return "failed branch of a call recorded on another row"


def convert(invite: AccRow, bye: AccRow | None, profile: Profile) -> dict[str, Any]:
    """The kept INVITE (plus its BYE) to one canonical record."""
    options: KamailioOptions = profile.kamailio
    caller = number(invite.fields.get(options.caller_column), profile)
    destination = number(invite.fields.get(options.callee_column), profile)
    answered = 200 <= invite.code < 300
    direction = call_direction("outbound", caller, destination,
                               inbound_context=is_inbound(invite.fields, destination.text, options))
    require_presented_caller(direction, caller, destination, CALLER_FIX)
    return build_record(
        profile,
        call_id=invite.callid,
        started_at=_started_at(invite, profile),
        direction=direction,
        caller=caller,
        destination=destination,
        answered=answered,
        duration_s=_duration(invite, bye, options) if answered else 0.0,
        sip_code=invite.code,
        source=invite.fields,
    )


def is_inbound(fields: dict[str, str], callee: str, options: KamailioOptions) -> bool:
    """The profile's inbound rule: a carrier's source address, a From domain, or a DID prefix."""
    source = fields.get("src_ip", "").strip().strip("[]")
    if source and options.inbound_source_ips:
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            address = None
        if address is not None and any(address in ipaddress.ip_network(net, strict=False)
                                       for net in options.inbound_source_ips):
            return True
    if fields.get("src_domain", "").strip().lower() in {d.lower() for d in options.inbound_from_domains}:
        return True
    raw_callee = fields.get(options.callee_column, "").strip()
    return any(text.startswith(prefix) for prefix in options.inbound_to_prefixes for text in (raw_callee, callee)
               if text)


def _started_at(invite: AccRow, profile: Profile) -> datetime:
    """OpenSIPS CDR mode's `created` is the INVITE's arrival; `time` is when the answer was accounted."""
    created = invite.fields.get("created", "")
    return acc_time(created, profile, "created") if created else invite.time


def _duration(invite: AccRow, bye: AccRow | None, options: KamailioOptions) -> float:
    """CDR mode writes the duration; transaction mode measures INVITE to BYE (0 with no BYE yet)."""
    if options.mode == "cdr":
        return number_value(invite.fields.get("duration"), "duration", 0.0)
    if bye is None:
        return 0.0
    return (bye.time - invite.time).total_seconds()
