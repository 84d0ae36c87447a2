"""Asterisk `cdr_csv` (Master.csv): one row per call, no header, columns in `build_csv_record` order.

The row says neither its time zone nor which optional columns follow `amaflags`: both come from the
profile. It says no direction either: the numbers and the dialplan context decide it.
"""

from __future__ import annotations

from collections.abc import Iterator
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
from streams.adapters.profile import ASTERISK_BASE_COLUMNS, AsteriskOptions, Profile

FORMAT = "asterisk"
CALLER_FIX = "record it with Set(CDR(userfield)=${CALLERID(num)}) and set asterisk.caller_column: userfield"

BASE_COLUMNS = ASTERISK_BASE_COLUMNS

# disposition -> the SIP status chan_sip/chan_pjsip use for that hangup cause; FAILED has no single one.
DISPOSITIONS: dict[str, int | None] = {
    "ANSWERED": 200,
    "NO ANSWER": 480,
    "BUSY": 486,
    "CONGESTION": 503,
    "FAILED": None,
}


def columns(options: AsteriskOptions) -> tuple[str, ...]:
    """The column names a row must have under this profile."""
    optional = (("uniqueid",) if options.uniqueid else ()) + (("userfield",) if options.userfield else ())
    return BASE_COLUMNS + optional


def read(text: str, profile: Profile, *, stream: bool = False) -> Iterator[SourceItem]:
    """Rows are independent, so a file and a message of rows convert the same way."""
    names = columns(profile.asterisk)
    for line_no, row in csv_rows(text):
        location = f"line {line_no}"
        if isinstance(row, Reject):
            yield SourceItem(location, reject=row.reason)
        else:
            yield outcome(location, lambda row=row: convert_row(row, names, profile))


def convert_row(row: list[str], names: tuple[str, ...], profile: Profile) -> dict[str, Any]:
    """One Master.csv row to one canonical record."""
    if len(row) != len(names):
        raise Reject(
            f"expected {len(names)} columns ({_optional_label(names)}), got {len(row)}: "
            "set asterisk.uniqueid and asterisk.userfield in the profile to match cdr.conf"
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
    )


def _caller(fields: dict[str, str], profile: Profile) -> Number:
    """The profile's caller column (`src` by default); an empty one falls back to `src`, then to `clid`."""
    chosen = fields.get(profile.asterisk.caller_column, "").strip()
    return number(chosen or fields["src"].strip() or clid_number(fields["clid"]), profile)


def _optional_label(names: tuple[str, ...]) -> str:
    optional = [name for name in ("uniqueid", "userfield") if name in names]
    return "with " + " and ".join(optional) if optional else "no uniqueid or userfield"
