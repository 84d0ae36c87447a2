"""FreeSWITCH `mod_json_cdr`: one JSON document per leg, every value a string.

The numbers live in `variables` and in `callflow[].caller_profile`. Older FreeSWITCH wrote several
`callflow` objects under duplicate keys (a strict reader keeps only the last); newer writes an array.
Both are read as a list, most recent profile first, as FreeSWITCH orders them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from streams.adapters import freeswitch
from streams.adapters.common import (
    Reject,
    SourceItem,
    build_record,
    call_direction,
    epoch_time,
    json_values,
    number,
    number_value,
    outcome,
    require_presented_caller,
)
from streams.adapters.profile import Profile

FORMAT = "freeswitch-json"


def read(text: str, profile: Profile, *, stream: bool = False) -> Iterator[SourceItem]:
    """Each document is one leg and converts on its own; files and messages alike."""
    for location, document in json_values(text, object_pairs_hook=keep_duplicate_callflows):
        if isinstance(document, Reject):
            yield SourceItem(location, reject=document.reason)
        else:
            yield outcome(location, lambda document=document: convert(document, profile))


def keep_duplicate_callflows(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object hook: repeated `callflow` keys become one list, in document order."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key == "callflow" and key in result:
            previous = result[key]
            result[key] = [*previous, value] if isinstance(previous, _Callflows) else _Callflows(
                [previous, value])
        else:
            result[key] = value
    return result


class _Callflows(list):  # type: ignore[type-arg]
    """Marks a list built from duplicate keys, so a real array value is never merged into."""


def convert(document: Any, profile: Profile) -> dict[str, Any]:
    """One mod_json_cdr document to one canonical record, or a Skip for the leg not kept."""
    if not isinstance(document, Mapping) or not isinstance(document.get("variables"), Mapping):
        raise Reject("not a mod_json_cdr document: no 'variables' object")
    variables = decode_variables(document["variables"], profile.freeswitch.encoded_values)
    caller_profile = _caller_profile(document)
    uuid = _text(variables, "uuid") or _text(caller_profile, "uuid")
    if not uuid:
        raise Reject("variables.uuid: required field is missing")
    freeswitch.check_leg(_is_b_leg(document, variables), profile.freeswitch)
    destination_text = _text(caller_profile, "destination_number") or _text(variables, "destination_number")
    caller_name = _text(caller_profile, "caller_id_name") or _text(variables, "caller_id_name")
    caller = number(freeswitch.presented_caller(variables, caller_name, destination_text, caller_profile), profile)
    destination = number(destination_text, profile)
    answered = number_value(variables.get("answer_epoch"), "answer_epoch", 0.0) > 0
    fs_direction = _text(variables, "direction") or _text(document.get("channel_data") or {}, "direction")
    default = freeswitch.map_direction(fs_direction, _is_b_leg(document, variables), profile.freeswitch)
    inbound_context = _text(caller_profile, "context") in profile.freeswitch.inbound_contexts
    direction = call_direction(default, caller, destination, inbound_context=inbound_context)
    require_presented_caller(direction, caller, destination, freeswitch.CALLER_FIX)
    return build_record(
        profile,
        call_id=uuid,
        started_at=_started_at(variables, document),
        direction=direction,
        caller=caller,
        destination=destination,
        answered=answered,
        duration_s=number_value(variables.get("billsec"), "billsec", 0.0),
        sip_code=freeswitch.sip_code(
            [(name, variables.get(name)) for name in (
                "sip_term_status", "proto_specific_hangup_cause", "last_bridge_proto_specific_hangup_cause")],
            _text(variables, "hangup_cause"),
            answered,
        ),
        source=variables,
    )


def decode_variables(variables: Mapping[str, Any], encoded: bool) -> Mapping[str, Any]:
    """`variables` as the channel held them: mod_json_cdr's stock `encode-values=true` URL-encodes each
    value (switch_ivr_set_json_chan_vars -> switch_url_encode, '+' as %2B, spaces as %20) and nothing
    else in the document; switch_url_decode undoes it with plain %XX decoding, as here."""
    if not encoded:
        return variables
    return {name: unquote(value) if isinstance(value, str) else value for name, value in variables.items()}


def _callflows(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    flows = document.get("callflow")
    if isinstance(flows, Mapping):
        flows = [flows]
    return [flow for flow in flows or [] if isinstance(flow, Mapping)]


def _caller_profile(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """The most recent caller profile (the first callflow), or an empty one."""
    for flow in _callflows(document):
        if isinstance(flow.get("caller_profile"), Mapping):
            return flow["caller_profile"]
    return {}


def _is_b_leg(document: Mapping[str, Any], variables: Mapping[str, Any]) -> bool:
    """A B-leg was originated by another channel: FreeSWITCH records an originator for it."""
    if _text(variables, "originating_leg_uuid") or _text(variables, "last_bridge_role") == "originatee":
        return True
    return any(
        isinstance(flow.get("caller_profile"), Mapping) and "originator" in flow["caller_profile"]
        for flow in _callflows(document)
    )


def _started_at(variables: Mapping[str, Any], document: Mapping[str, Any]) -> datetime:
    """`start_epoch`, else the microsecond `start_uepoch`, else the callflow's `created_time`."""
    if _text(variables, "start_epoch"):
        return epoch_time(variables["start_epoch"], "start_epoch")
    if _text(variables, "start_uepoch"):
        return epoch_time(variables["start_uepoch"], "start_uepoch", scale=1e6)
    for flow in _callflows(document):
        times = flow.get("times")
        if isinstance(times, Mapping) and _text(times, "created_time"):
            return epoch_time(times["created_time"], "callflow.times.created_time", scale=1e6)
    raise Reject("start_epoch: required field is missing")


def _text(values: Mapping[str, Any], name: str) -> str:
    value = values.get(name)
    return value.strip() if isinstance(value, str) else ""
