"""Amazon Connect contact trace records (format 2017-03-10): JSON lines, an array, or Firehose objects.

A contact is a call attempt we judge only when it is a voice call with a presented caller ID
(`SystemEndpoint.Address`) and a customer at the other end. Everything else (chat, tasks, queue
transfers, monitoring, contacts without a SystemEndpoint) is skipped with a counted reason: turning it
into a record with an empty caller ID would raise a false invalid-CLI alert.

Connect delivers records at least once and re-delivers them when they are updated. Over a file, the copy
with the highest `LastUpdateTimestamp` of each `ContactId` is kept and the others are skipped. In the
stream every copy converts (decisions are never retracted): the caller de-duplicates on `call_id`,
which is the `ContactId` so copies share it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from streams.adapters.common import (
    Number,
    Reject,
    Skip,
    SourceItem,
    build_record,
    call_direction,
    iso_time,
    json_values,
    number,
    outcome,
)
from streams.adapters.profile import Profile

FORMAT = "connect-ctr"

# Initiation methods where Connect dials the customer and presents the SystemEndpoint as caller ID.
OUTBOUND_METHODS = frozenset({"OUTBOUND", "API", "EXTERNAL_OUTBOUND", "CALLBACK", "TRANSFER"})
INBOUND_METHODS = frozenset({"INBOUND"})
EARLIEST = datetime.min.replace(tzinfo=UTC)


def read(text: str, profile: Profile, *, stream: bool = False) -> Iterator[SourceItem]:
    """Whole-file mode keeps the latest copy of each contact; stream mode converts every copy."""
    values = list(json_values(text))
    latest = {} if stream else _latest_copies(values)
    for index, (location, record) in enumerate(values):
        if isinstance(record, Reject):
            yield SourceItem(location, reject=record.reason)
            continue
        superseded = _superseded_by(record, index, latest)
        if superseded is not None:
            yield SourceItem(location, skip=superseded)
        else:
            yield outcome(location, lambda record=record: convert(record, profile))


def _latest_copies(values: list[tuple[str, Any]]) -> dict[str, tuple[datetime, int, str]]:
    """ContactId -> (LastUpdateTimestamp, index, location) of the copy to keep; ties go to the later one."""
    latest: dict[str, tuple[datetime, int, str]] = {}
    for index, (location, record) in enumerate(values):
        contact_id = _contact_id(record)
        if not contact_id:
            continue
        key = (_last_update(record), index, location)
        if contact_id not in latest or key[:2] >= latest[contact_id][:2]:
            latest[contact_id] = key
    return latest


def _superseded_by(record: Any, index: int, latest: dict[str, tuple[datetime, int, str]]) -> str | None:
    """The skip reason for an older copy of a contact, or None for the copy that counts."""
    contact_id = _contact_id(record)
    if not contact_id or contact_id not in latest or latest[contact_id][1] == index:
        return None
    return "older copy of a contact: the copy with the highest LastUpdateTimestamp is kept"


def _contact_id(record: Any) -> str:
    if isinstance(record, Mapping) and isinstance(record.get("ContactId"), str):
        return record["ContactId"].strip()
    return ""


def _last_update(record: Mapping[str, Any]) -> datetime:
    """LastUpdateTimestamp, or the earliest time when it is missing or unreadable (that copy loses)."""
    try:
        return iso_time(record.get("LastUpdateTimestamp"), "LastUpdateTimestamp").astimezone(UTC)
    except Reject:
        return EARLIEST


def convert(record: Any, profile: Profile) -> dict[str, Any]:
    """One contact trace record to one canonical record, or a Skip saying why it is not judged."""
    if not isinstance(record, Mapping):
        raise Reject(f"expected a contact trace record (JSON object), got {type(record).__name__}")
    contact_id = _contact_id(record)
    if not contact_id:
        raise Reject("ContactId: required field is missing")
    direction, caller, destination = _endpoints(record, profile)
    started_at = iso_time(record.get("InitiationTimestamp"), "InitiationTimestamp")
    connected = record.get("ConnectedToSystemTimestamp")
    answered = bool(connected)
    return build_record(
        profile,
        call_id=contact_id,
        started_at=started_at,
        direction=call_direction(direction, caller, destination),
        caller=caller,
        destination=destination,
        answered=answered,
        duration_s=_talk_seconds(record) if answered else 0.0,
        campaign=_campaign(record),
        source=_attributes(record),
    )


def _endpoints(record: Mapping[str, Any], profile: Profile) -> tuple[str, Number, Number]:
    """(direction, caller, destination) for a judged contact; Skip for every other kind."""
    channel = record.get("Channel")
    if channel != "VOICE":
        raise Skip(f"channel {channel!r} is not a voice call")
    method = str(record.get("InitiationMethod") or "")
    system = _address(record, "SystemEndpoint")
    customer = _address(record, "CustomerEndpoint")
    if method in INBOUND_METHODS:
        return "inbound", number(customer, profile), number(system, profile)
    if method not in OUTBOUND_METHODS:
        raise Skip(f"InitiationMethod {method or 'missing'}: not a call attempt with a presented caller ID")
    if not system:
        raise Skip(f"InitiationMethod {method} without a SystemEndpoint: no presented caller ID")
    if not customer or _endpoint_type(record, "CustomerEndpoint") not in ("", "TELEPHONE_NUMBER"):
        what = "an external number" if method == "TRANSFER" else "a customer number"
        raise Skip(f"InitiationMethod {method} without {what} in CustomerEndpoint")
    return "outbound", number(system, profile), number(customer, profile)


def _address(record: Mapping[str, Any], endpoint: str) -> str:
    value = record.get(endpoint)
    address = value.get("Address") if isinstance(value, Mapping) else None
    return address.strip() if isinstance(address, str) else ""


def _endpoint_type(record: Mapping[str, Any], endpoint: str) -> str:
    value = record.get(endpoint)
    kind = value.get("Type") if isinstance(value, Mapping) else None
    return kind if isinstance(kind, str) else ""


def _talk_seconds(record: Mapping[str, Any]) -> float:
    """From the customer's answer (ConnectedToSystemTimestamp) to the disconnect; 0 when either is absent."""
    if not record.get("DisconnectTimestamp"):
        return 0.0
    connected = iso_time(record["ConnectedToSystemTimestamp"], "ConnectedToSystemTimestamp")
    disconnected = iso_time(record["DisconnectTimestamp"], "DisconnectTimestamp")
    return max(0.0, (disconnected - connected).total_seconds())


def _campaign(record: Mapping[str, Any]) -> str | None:
    campaign = record.get("Campaign")
    campaign_id = campaign.get("CampaignId") if isinstance(campaign, Mapping) else None
    return campaign_id if isinstance(campaign_id, str) and campaign_id else None


def _attributes(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """The contact attributes a flow set (`Attributes`, string to string): where a profile's `fields` are."""
    attributes = record.get("Attributes")
    return attributes if isinstance(attributes, Mapping) else {}
