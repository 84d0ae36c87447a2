"""FreeSWITCH `mod_cdr_csv`: one quoted row per leg, columns from the template (`example` by default).

The `example` template has no direction and no leg marker. `${bleg_uuid}` resolves to the originatee's
uuid, so it is filled on an A-leg that bridged and empty on B-legs: a row whose uuid another row names as
its `bleg_uuid` is a B-leg. That link needs both rows, so it is resolved over the whole file (or the whole
message). A template that adds `originating_leg_uuid` marks every B-leg by itself, even unbridged ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from streams.adapters import freeswitch
from streams.adapters.common import (
    Reject,
    SourceItem,
    build_record,
    call_direction,
    csv_rows,
    epoch_time,
    local_time,
    number,
    number_value,
    outcome,
    require_presented_caller,
)
from streams.adapters.profile import Profile

FORMAT = "freeswitch-csv"


def read(text: str, profile: Profile, *, stream: bool = False) -> Iterator[SourceItem]:
    """Two passes: first the A-leg -> B-leg links, then one outcome per row."""
    names = profile.freeswitch.columns
    rows = list(csv_rows(text))
    b_legs = _b_leg_links(rows, names)
    for line_no, row in rows:
        location = f"line {line_no}"
        if isinstance(row, Reject):
            yield SourceItem(location, reject=row.reason)
        else:
            yield outcome(location, lambda row=row: convert_row(row, names, profile, b_legs))


def _b_leg_links(rows: list[tuple[int, list[str] | Reject]], names: tuple[str, ...]) -> dict[str, str]:
    """B-leg uuid -> A-leg uuid, from the rows whose `bleg_uuid` is filled."""
    if "bleg_uuid" not in names or "uuid" not in names:
        return {}
    uuid_at, bleg_at = names.index("uuid"), names.index("bleg_uuid")
    links = {}
    for _, row in rows:
        if isinstance(row, list) and len(row) == len(names) and row[bleg_at].strip():
            links[row[bleg_at].strip()] = row[uuid_at].strip()
    return links


def convert_row(row: list[str], names: tuple[str, ...], profile: Profile, b_legs: dict[str, str]) -> dict[
        str, Any]:
    """One leg row to one canonical record, or a Skip for the leg the profile does not keep."""
    if len(row) != len(names):
        raise Reject(f"expected {len(names)} columns (freeswitch.columns), got {len(row)}")
    fields = {name: value.strip() for name, value in zip(names, row, strict=True)}
    uuid = fields.get("uuid", "")
    if not uuid:
        raise Reject("uuid: required field is missing")
    is_b_leg = bool(fields.get("originating_leg_uuid")) or uuid in b_legs
    freeswitch.check_leg(is_b_leg, profile.freeswitch)
    caller = number(freeswitch.presented_caller(fields, fields.get("caller_id_name", ""),
                                                fields.get("destination_number", "")), profile)
    destination = number(fields.get("destination_number"), profile)
    answered = _answered(fields)
    default = freeswitch.map_direction(fields.get("direction", ""), is_b_leg, profile.freeswitch)
    inbound_context = fields.get("context", "") in profile.freeswitch.inbound_contexts
    direction = call_direction(default, caller, destination, inbound_context=inbound_context)
    require_presented_caller(direction, caller, destination, freeswitch.CALLER_FIX)
    return build_record(
        profile,
        call_id=uuid,
        started_at=_started_at(fields, profile),
        direction=direction,
        caller=caller,
        destination=destination,
        answered=answered,
        duration_s=number_value(fields.get("billsec"), "billsec", 0.0),
        sip_code=freeswitch.sip_code(
            [("sip_term_status", fields.get("sip_term_status"))], fields.get("hangup_cause", ""), answered
        ),
        source=fields,
    )


def _started_at(fields: dict[str, str], profile: Profile) -> datetime:
    """`start_stamp` is local wall-clock time; a template may write `start_epoch` instead."""
    if fields.get("start_epoch"):
        return epoch_time(fields["start_epoch"], "start_epoch")
    if "start_stamp" not in fields:
        raise Reject("start_stamp: the template has neither start_stamp nor start_epoch")
    return local_time(fields["start_stamp"], profile, "start_stamp")


def _answered(fields: dict[str, str]) -> bool:
    """`answer_stamp` is empty (and `answer_epoch` 0) on a leg that was never answered."""
    if "answer_epoch" in fields:
        return number_value(fields["answer_epoch"], "answer_epoch", 0.0) > 0
    if "answer_stamp" in fields:
        return bool(fields["answer_stamp"])
    return number_value(fields.get("billsec"), "billsec", 0.0) > 0
