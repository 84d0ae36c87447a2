"""Twilio Call resources as the REST API returns them: one Call, a list page, an array or JSON lines.

Each Call resource is one leg that Twilio itself placed or received, so each converts to one record.
Times are RFC 2822 (`Fri, 18 Oct 2019 17:02:00 +0000`) and `duration` is a string.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from streams.adapters.common import (
    Reject,
    Skip,
    SourceItem,
    build_record,
    call_direction,
    json_values,
    number,
    number_value,
    outcome,
)
from streams.adapters.profile import Profile

FORMAT = "twilio"

# Final statuses, with the SIP status Twilio's documentation gives for each outcome (failed has none).
FINAL_STATUSES: dict[str, int | None] = {
    "completed": 200,
    "busy": 486,
    "no-answer": 480,
    "canceled": 487,
    "failed": None,
}
PENDING_STATUSES = frozenset({"queued", "initiated", "ringing", "in-progress"})


def read(text: str, profile: Profile, *, stream: bool = False) -> Iterator[SourceItem]:
    """List pages are unwrapped: in a single page, `record 2` is its second call."""
    for location, value in json_values(text):
        if isinstance(value, Reject):
            yield SourceItem(location, reject=value.reason)
        elif isinstance(value, Mapping) and "calls" in value:
            yield from _page(location, value["calls"], profile)
        else:
            yield outcome(location, lambda value=value: convert(value, profile))


def _page(location: str, calls: Any, profile: Profile) -> Iterator[SourceItem]:
    if not isinstance(calls, list):
        yield SourceItem(location, reject="calls: expected a list of Call resources")
        return
    for index, call in enumerate(calls, 1):
        where = f"record {index}" if location == "record 1" else f"{location}, call {index}"
        yield outcome(where, lambda call=call: convert(call, profile))


def convert(call: Any, profile: Profile) -> dict[str, Any]:
    """One Call resource to one canonical record; calls not finished yet are skipped until they are."""
    if not isinstance(call, Mapping):
        raise Reject(f"expected a Call resource (JSON object), got {type(call).__name__}")
    sid = call.get("sid")
    if not isinstance(sid, str) or not sid.strip():
        raise Reject("sid: required field is missing")
    status = str(call.get("status") or "").strip().lower()
    if status in PENDING_STATUSES:
        raise Skip(f"call not finished (status {status}): its final state is judged")
    if status not in FINAL_STATUSES:
        raise Reject(f"status: unknown Twilio call status {call.get('status')!r}")
    _require_carrier_leg(call.get("to"))
    caller = number(call.get("from"), profile)
    destination = number(call.get("to"), profile)
    answered = status == "completed"
    return build_record(
        profile,
        call_id=sid.strip(),
        started_at=_started_at(call),
        direction=call_direction(_direction(call, profile), caller, destination),
        caller=caller,
        destination=destination,
        answered=answered,
        duration_s=number_value(call.get("duration"), "duration", 0.0) if answered else 0.0,
        sip_code=FINAL_STATUSES[status],
        source=call,
    )


def _require_carrier_leg(to: Any) -> None:
    """Skip a leg to a Twilio Client or a SIP endpoint: it never reaches a carrier and presents no CLI.

    The child leg of `<Dial><Client>` or `<Dial><Sip>` keeps the parent caller's number in `from` unless
    `callerId` is set (TwiML <Dial> callerId: "defaults to the caller's number"): judged, it would charge a
    customer's number with a call it never placed. A `sip:` URI whose user is an E.164 number (`+…`) goes
    to a trunk and is judged.
    """
    text = str(to or "").strip()
    if text.lower().startswith("client:"):
        raise Skip("leg to a Twilio Client (to is client:…): no carrier, no caller ID presented")
    if text.lower().startswith(("sip:", "sips:")):
        user = text.split(":", 1)[1].split("@", 1)[0].split(";", 1)[0]
        if not (user.startswith("+") and user[1:].isdigit() and 8 <= len(user) <= 16):
            raise Skip("leg to a SIP endpoint (to is a sip: URI without an E.164 user): no carrier, "
                       "no caller ID presented")


def _direction(call: Mapping[str, Any], profile: Profile) -> str:
    """Twilio's direction through twilio.direction_map; any other `outbound-*` value is outbound."""
    value = str(call.get("direction") or "").strip().lower()
    mapped = profile.twilio.direction_map.get(value)
    if mapped:
        return mapped
    if value.startswith("outbound-"):
        return "outbound"
    raise Reject(f"direction: unknown Twilio direction {call.get('direction')!r} (add it to twilio.direction_map)")


def _started_at(call: Mapping[str, Any]) -> datetime:
    """`start_time`, or `date_created` for calls that never started (canceled while queued)."""
    for field in ("start_time", "date_created"):
        value = call.get(field)
        if isinstance(value, str) and value.strip():
            return rfc2822(value, field)
    raise Reject("start_time: required field is missing")


def rfc2822(value: str, field: str) -> datetime:
    """An RFC 2822 date with its offset; one without an offset is rejected, never guessed."""
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError) as exc:
        raise Reject(f"{field}: expected an RFC 2822 time like 'Fri, 18 Oct 2019 17:02:00 +0000', "
                     f"got {value!r}") from exc
    if moment.tzinfo is None:
        raise Reject(f"{field}: time {value!r} has no UTC offset")
    return moment.astimezone(UTC)
