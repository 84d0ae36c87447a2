"""Asterisk `cdr_csv` (Master.csv): rows with no header, columns in `build_csv_record` order.

The row says neither its time zone nor which optional columns follow `amaflags`: both come from the
profile. It says no direction either: the numbers and the dialplan context decide it.

Asterisk 12+ writes one row per party a call rang (main/cdr.c: each dial of party A gets its own CDR;
Dial(A&B), ring groups and queues give several), all with the caller's `uniqueid` and `linkedid`, written
together when the caller hangs up. Those rows are one call: merged into one record, answered if any party
answered (with that party's billsec), started at the first row's start.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from streams.adapters.common import (
    Number,
    Reject,
    SourceItem,
    build_record,
    call_direction,
    clid_number,
    csv_rows,
    local_time,
    number,
    number_value,
    outcome,
    require_presented_caller,
    stable_id,
)
from streams.adapters.profile import ASTERISK_BASE_COLUMNS, ASTERISK_NEW_COLUMNS, AsteriskOptions, Profile

FORMAT = "asterisk"
CALLER_FIX = "record it with Set(CDR(userfield)=${CALLERID(num)}) and set asterisk.caller_column: userfield"

BASE_COLUMNS = ASTERISK_BASE_COLUMNS

# disposition -> the SIP status chan_sip/chan_pjsip use for that hangup cause; FAILED has no single one.
# CANCEL (the caller hung up while it rang) is written by Asterisk 18.x+ with cdr.conf
# canceldispositionenabled=yes (main/cdr.c dial_status_to_disposition); otherwise that is NO ANSWER.
DISPOSITIONS: dict[str, int | None] = {
    "ANSWERED": 200,
    "NO ANSWER": 480,
    "BUSY": 486,
    "CONGESTION": 503,
    "FAILED": None,
    "CANCEL": 487,
}
MERGED_SKIP = "another party rung by the same call (merged into its record)"


def columns(options: AsteriskOptions) -> tuple[str, ...]:
    """The column names a row must have under this profile."""
    optional = (("uniqueid",) if options.uniqueid else ()) + (("userfield",) if options.userfield else ())
    return BASE_COLUMNS + optional + (ASTERISK_NEW_COLUMNS if options.newcdrcolumns else ())


def read(text: str, profile: Profile, *, stream: bool = False) -> Iterator[SourceItem]:
    """Every row converts on its own, then the rows of one call (same merge key) become one record.

    A file and a message of rows convert the same way: the merge sees the rows of its own text.
    """
    names = columns(profile.asterisk)
    key_at = _merge_column(names, profile.asterisk)
    items: list[SourceItem] = []
    keys: list[str] = []
    for line_no, row in csv_rows(text):
        location = f"line {line_no}"
        if isinstance(row, Reject):
            items.append(SourceItem(location, reject=row.reason))
            keys.append("")
        else:
            items.append(outcome(location, lambda row=row: convert_row(row, names, profile)))
            keys.append(row[key_at].strip() if key_at is not None and len(row) == len(names) else "")
    yield from merge_parties(items, keys)


def _merge_column(names: tuple[str, ...], options: AsteriskOptions) -> int | None:
    """Where the merge key is: the chosen column if the profile's rows have it, else none."""
    if options.merge_parties in names:
        return names.index(options.merge_parties)
    return None


def merge_parties(items: list[SourceItem], keys: list[str]) -> list[SourceItem]:
    """One record per merge key: the first answered row (its party's billsec), else the last row, with
    the earliest start; the group's other records become counted skips. Rejects and skips stay as they are."""
    groups: dict[str, list[int]] = {}
    for index, (item, key) in enumerate(zip(items, keys, strict=True)):
        if key and item.record is not None:
            groups.setdefault(key, []).append(index)
    merged = list(items)
    for key, members in groups.items():
        records = [items[index].record or {} for index in members]
        answered = [index for index, record in zip(members, records, strict=True) if record["answered"]]
        kept = answered[0] if answered else members[-1]
        for index in members:
            merged[index] = SourceItem(items[index].location, skip=MERGED_SKIP)
        merged[kept] = replace(items[kept], record=merged_party(records), call=key)
    return merged


def merged_party(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The rows of one call as one record: the first answered row (its party's billsec), else the last
    row, with the earliest start. The adapter merges a file's rows with it, the stream rows that came in
    separate messages (streams/parties.py)."""
    answered = [record for record in records if record["answered"]]
    record = dict(answered[0] if answered else records[-1])
    record["started_at"] = min(str(r["started_at"]) for r in records)
    return record


def convert_row(row: list[str], names: tuple[str, ...], profile: Profile) -> dict[str, Any]:
    """One Master.csv row to one canonical record."""
    if len(row) != len(names):
        raise Reject(
            f"expected {len(names)} columns ({_optional_label(names)}), got {len(row)}: "
            "set asterisk.uniqueid, asterisk.userfield and asterisk.newcdrcolumns in the profile to match "
            "cdr_csv.conf"
        )
    fields = dict(zip(names, row, strict=True))
    disposition = fields["disposition"].strip().upper()
    if disposition not in DISPOSITIONS:
        raise Reject(f"disposition: expected one of {', '.join(DISPOSITIONS)}, got {fields['disposition']!r}")
    caller = _caller(fields, profile)
    destination = number(fields["dst"], profile)
    inbound_context = fields["dcontext"].strip() in profile.asterisk.inbound_contexts
    direction = call_direction("outbound", caller, destination, inbound_context=inbound_context)
    require_presented_caller(direction, caller, destination, CALLER_FIX)
    return build_record(
        profile,
        call_id=fields.get("uniqueid", "").strip() or stable_id(FORMAT, *row),
        started_at=local_time(fields["start"], profile, "start"),
        direction=direction,
        caller=caller,
        destination=destination,
        answered=disposition == "ANSWERED",
        duration_s=number_value(fields["billsec"], "billsec", 0.0),
        sip_code=DISPOSITIONS[disposition],
        source=fields,
    )


def _caller(fields: dict[str, str], profile: Profile) -> Number:
    """The profile's caller column (`src` by default); an empty one falls back to `src`, then to `clid`."""
    chosen = fields.get(profile.asterisk.caller_column, "").strip()
    return number(chosen or fields["src"].strip() or clid_number(fields["clid"]), profile)


def _optional_label(names: tuple[str, ...]) -> str:
    optional = [name for name in ("uniqueid", "userfield", "linkedid") if name in names]
    label = [name if name != "linkedid" else "newcdrcolumns" for name in optional]
    return "with " + " and ".join(label) if label else "no uniqueid or userfield"
