"""What `freeswitch-csv` and `freeswitch-json` share: leg choice, direction, caller ID and SIP code.

FreeSWITCH writes one CDR per leg. A bridged call has an A-leg (the channel that entered the switch)
and one or more B-legs (the channels it originated). Counting both would count one attempt twice, so
the profile keeps one leg: `a` by default, because the stock configuration of mod_cdr_csv writes only
A-legs, every call has exactly one A-leg while forking and failover multiply B-legs, and the A-leg carries
`effective_caller_id_number`, which FreeSWITCH presents on the outbound leg.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.adapters.common import Reject, Skip, sip_code_value
from streams.adapters.profile import FreeswitchOptions

CALLER_FIX = ("add ${effective_caller_id_number} to the cdr_csv template, or log B-legs and set "
              "freeswitch.leg: b")

# In the order the issue and FreeSWITCH agree on: the number set for presentation wins over the raw one.
CALLER_FIELDS = ("effective_caller_id_number", "outbound_caller_id_number", "caller_id_number")

# An answered originate leg (`originate ... &app`, click-to-call, dialers) has its caller ID flipped by
# switch_channel_flip_cid(): caller_id_number becomes the callee (switch_ivr_originate set callee_id_number
# to the destination and callee_id_name to "Outbound Call"), the old number is kept in
# pre_transfer_caller_id_number and the channel gets channel_cid_flipped=yes. The presented CLI is then
# in these fields, in this order; caller_id_number is never used.
FLIPPED_CALLER_FIELDS = ("origination_caller_id_number", "effective_caller_id_number",
                         "pre_transfer_caller_id_number", "ani")
FLIPPED_NAME = "Outbound Call"
FLIPPED_FIX = ("add ${origination_caller_id_number} to the cdr_csv template, or log the JSON CDR "
               "(mod_json_cdr writes it)")

# mod_sofia's hangup_cause_to_sip(): the SIP status FreeSWITCH itself sends for a hangup cause. Used only
# when no SIP status was recorded; causes it maps to its catch-all 480 are left out (unknown stays None).
HANGUP_CAUSE_SIP = {
    "UNALLOCATED_NUMBER": 404,
    "NO_ROUTE_TRANSIT_NET": 404,
    "NO_ROUTE_DESTINATION": 404,
    "USER_BUSY": 486,
    "NO_USER_RESPONSE": 408,
    "NO_ANSWER": 480,
    "SUBSCRIBER_ABSENT": 480,
    "CALL_REJECTED": 603,
    "NUMBER_CHANGED": 410,
    "REDIRECTION_TO_NEW_DESTINATION": 410,
    "DESTINATION_OUT_OF_ORDER": 502,
    "INVALID_NUMBER_FORMAT": 484,
    "FACILITY_REJECTED": 501,
    "NORMAL_UNSPECIFIED": 480,
    "REQUESTED_CHAN_UNAVAIL": 503,
    "NORMAL_CIRCUIT_CONGESTION": 503,
    "NETWORK_OUT_OF_ORDER": 503,
    "NORMAL_TEMPORARY_FAILURE": 503,
    "SWITCH_CONGESTION": 503,
    "GATEWAY_DOWN": 503,
    "OUTGOING_CALL_BARRED": 403,
    "INCOMING_CALL_BARRED": 403,
    "RECOVERY_ON_TIMER_EXPIRE": 504,
    "ORIGINATOR_CANCEL": 487,
    "EXCHANGE_ROUTING_ERROR": 483,
    "BUSY_EVERYWHERE": 600,
    "DECLINE": 603,
    "DOES_NOT_EXIST_ANYWHERE": 604,
    "UNWANTED": 607,
}


def check_leg(is_b_leg: bool, options: FreeswitchOptions) -> None:
    """Skip the leg the profile does not keep (a fixed reason, so replay's skip counts stay few)."""
    if is_b_leg and options.leg == "a":
        raise Skip("B-leg: the profile keeps A-legs (freeswitch.leg: a)")
    if not is_b_leg and options.leg == "b":
        raise Skip("A-leg: the profile keeps B-legs (freeswitch.leg: b)")


def map_direction(fs_direction: str, is_b_leg: bool, options: FreeswitchOptions) -> str:
    """FreeSWITCH's per-leg direction (or the leg's usual one when absent) through the profile's map."""
    view = fs_direction.strip().lower() or ("outbound" if is_b_leg else "inbound")
    try:
        return options.direction_map[view]
    except KeyError:
        raise Reject(
            f"direction: FreeSWITCH direction {view!r} is not in freeswitch.direction_map "
            f"({', '.join(options.direction_map)})"
        ) from None


def first_caller(values: Mapping[str, Any], names: tuple[str, ...] = CALLER_FIELDS) -> str:
    """The first non-empty caller-ID field, in CALLER_FIELDS order (or the order given)."""
    for name in names:
        value = values.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def is_flipped(values: Mapping[str, Any], caller_id_name: str) -> bool:
    """The leg's caller ID was flipped to the callee (switch_channel_flip_cid), by its own marks."""
    flag = values.get("channel_cid_flipped")
    flagged = isinstance(flag, str) and flag.strip().lower() in ("yes", "true", "1", "on")
    return flagged or caller_id_name.strip() == FLIPPED_NAME


def presented_caller(values: Mapping[str, Any], caller_id_name: str, destination: str,
                     fallback: Mapping[str, Any] | None = None) -> str:
    """The CLI the leg presented: CALLER_FIELDS normally, FLIPPED_CALLER_FIELDS on a flipped leg.

    A flipped leg without any of those fields, or any leg whose caller ID equals its destination (what a
    flip leaves behind), is skipped: taking the callee's number as the CLI would judge a customer's line.
    `fallback` holds fields read after `values` (the JSON caller profile's caller_id_number and ani).
    """
    extra = fallback or {}
    if is_flipped(values, caller_id_name):
        caller = first_caller(values, FLIPPED_CALLER_FIELDS) or first_caller(extra, ("ani",))
        if not caller:
            raise Skip(f"originated leg with a flipped caller ID: caller_id_number is the callee and the "
                       f"presented number is not in this record ({FLIPPED_FIX})")
        return caller
    caller = first_caller(values) or first_caller(extra, ("caller_id_number",))
    if caller and destination and _digits(caller) == _digits(destination):
        raise Skip(f"caller ID equals the destination: a flipped originate leg whose presented number "
                   f"is not in this record ({FLIPPED_FIX})")
    return caller


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def sip_code(statuses: list[tuple[str, Any]], hangup_cause: str, answered: bool) -> int | None:
    """The first recorded SIP status (fields like sip_term_status, or 'sip:NNN' causes), else the cause."""
    for field, value in statuses:
        text = str(value or "").strip()
        if text.lower().startswith("sip:"):
            text = text[4:]
        if text:
            return sip_code_value(text, field)
    cause = hangup_cause.strip().upper()
    if cause == "NORMAL_CLEARING":
        return 200 if answered else None
    return HANGUP_CAUSE_SIP.get(cause)
