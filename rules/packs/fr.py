"""France."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from dateutil.easter import easter

from rules.cdr import zone
from rules.context import Call
from rules.hours import Hours, hours_params
from rules.inventory import Inventory
from rules.numbers import NumberInfo, classify, time_zones
from rules.pack import Rule, Threshold
from rules.registry import Finding, rule
from rules.threshold import measure


def is_npv(cli: NumberInfo, call: Call) -> bool:
    """NPV by the ARCEP ranges, unless the inventory says otherwise for this number."""
    entry = call.inventory.get(cli.e164) if call.inventory is not None else None
    if entry is not None and entry.npv is not None:
        return entry.npv
    return cli.fr_npv


@rule("fr.daily_limit", "threshold", ("local_day", "utc_day"), inventory="optional",
      lifted_by=frozenset({"time", "operator"}), measure="calls")
def daily_limit(call: Call, rule: Rule) -> Finding | None:
    """Calls of a French caller ID that is not an NPV number, against the operators' daily cap.

    A threshold rule of the measure `calls` (rules/threshold.py counts them in the row's window); this check
    says which calls count and words the decisions."""
    cli = call.cli
    if cli.calling_code != 33 or is_npv(cli, call):
        return None
    day, number = call.window(rule).key, call.subject

    def words(_value: float, count: int, threshold: Threshold | None) -> str:
        text = f"French caller ID {number} (not NPV) has made {count} calls on {day} ({rule.timezone}); "
        if threshold is not None and threshold.kind == "block":
            return text + f"blocked until {day} ends to stay within the operators' daily cap."
        return text + "the operators' daily cap is near."

    return measure(call, rule, words, usage=True)


@rule("fr.callback_unanswered", "alert", ("local_day", "utc_day"), direction="inbound", inventory="required")
def callback_unanswered(call: Call, _rule: Rule) -> Finding | None:
    """An unanswered inbound call to one of the sender's French numbers (the subject is our number)."""
    dest = call.destination
    if call.cdr.answered or dest.calling_code != 33 or dest.e164 is None:
        return None
    assert call.inventory is not None
    if call.inventory.get(dest.e164) is None:
        return None
    number = dest.e164
    return Finding(lambda _t: f"A callback to French caller ID {number} went unanswered; a presented number "
                              "must let the called person reach the caller.")


# -- telemarketing (Code de la consommation art. D.223-9, décret 2022-1313) ---------------------------

# Metropolitan France and the five overseas departments (their own calling codes): a consumer there is
# protected by the Code de la consommation, in the zone of their own number (D.223-9: "fuseau horaire du
# consommateur").
FR_CONSUMER_REGIONS = frozenset({"FR", "GP", "MQ", "GF", "RE", "YT"})
AUTOMATED_SCOPE = {"purpose": "automated"}


@lru_cache(maxsize=64)
def fr_public_holidays(year: int) -> frozenset[date]:
    """The eleven public holidays of Code du travail art. L.3133-1 (those D.223-9 names), computed:
    fixed dates, and Easter Monday, Ascension (Easter + 39 days) and Whit Monday (Easter + 50)."""
    sunday = easter(year)
    fixed = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)]
    movable = [sunday + timedelta(days=n) for n in (1, 39, 50)]
    return frozenset([date(year, month, day) for month, day in fixed] + movable)


def consumer_local_times(call: Call) -> list[tuple[str, datetime]] | None:
    """(zone, local time) of a call to a French consumer, in every zone their number may be in; None
    when the destination is not a French consumer's number."""
    dest = call.destination
    if not dest.valid or dest.region not in FR_CONSUMER_REGIONS or dest.e164 is None:
        return None
    names = time_zones(dest.e164) or ("Europe/Paris",)
    return [(name, call.cdr.started_at.astimezone(zone(name))) for name in names]


@rule("fr.telemarketing_hours", "alert", ("local_day", "utc_day"), inventory="optional", needs=("purpose",),
      params=hours_params([["10:00", "13:00"], ["14:00", "20:00"]], [0, 1, 2, 3, 4],
                         holidays=fr_public_holidays))
def telemarketing_hours(call: Call, rule: Rule) -> Finding | None:
    """A telemarketing call to a French consumer outside the permitted days and hours of their zone."""
    if call.purpose != "telemarketing":
        return None
    local_times = consumer_local_times(call)
    if local_times is None:
        return None
    hours: Hours = rule.config
    outside = [(name, local) for name, local in local_times if not hours.permits(local)]
    if not outside:
        return None
    name, local = outside[0]
    region, number = call.destination.region, call.subject
    holiday = " (a public holiday)" if local.date() in fr_public_holidays(local.year) else ""
    return Finding(lambda _t: f"Caller ID {number} made a telemarketing call to a consumer in {region} at "
                              f"{local:%A %Y-%m-%d %H:%M}{holiday} {name}: outside Monday-Friday 10:00-13:00 and "
                              "14:00-20:00 of the consumer's zone, and not on public holidays (art. D.223-9), "
                              "unless the consumer gave prior express consent.")


@dataclass(frozen=True)
class Frequency:
    max_attempts: int = 4
    days: int = 30


def _frequency_params(params: Mapping[str, Any]) -> Frequency:
    unknown = set(params) - {"max_attempts", "days"}
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; known: max_attempts, days")
    config = Frequency(**params)
    for name in ("max_attempts", "days"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return config


def consumer_hash(e164: str, key: bytes) -> str:
    """A keyed 128-bit hash of a consumer's number: all the frequency state ever holds of it."""
    return hashlib.blake2b(e164.encode(), digest_size=16, key=key).hexdigest()


def consumer_key(call: Call, rule: Rule) -> str | None:
    """The state a telemarketing call to a French consumer counts in: one per professional (tenant) and
    consumer (a keyed hash of the number), or None for other calls."""
    if call.purpose != "telemarketing":
        return None
    dest = call.destination
    if not dest.valid or dest.region not in FR_CONSUMER_REGIONS or dest.e164 is None:
        return None
    return f"{rule.id}|{call.cdr.tenant or ''}|{consumer_hash(dest.e164, call.hash_key)}"


@rule("fr.telemarketing_frequency", "alert", ("local_day", "utc_day"), inventory="optional", needs=("purpose",),
      keyed=consumer_key, params=_frequency_params)
def telemarketing_frequency(call: Call, rule: Rule) -> Finding | None:
    """More than `max_attempts` telemarketing attempts to one consumer by one professional within `days`
    days (a sliding window of days x 24 h). `call.state` is that consumer's state (`consumer_key`)."""
    config: Frequency = rule.config
    span = config.days * 86_400.0
    state = call.state
    times = state.attempts.setdefault(rule.id, [])
    bisect.insort(times, call.at)
    newest = times[-1]
    del times[:bisect.bisect_right(times, newest - span)]  # attempts no later call can count
    state.expires = newest + span
    count = bisect.bisect_right(times, call.at) - bisect.bisect_right(times, call.at - span)
    if count <= config.max_attempts:
        return None
    consumer = (consumer_key(call, rule) or "").rsplit("|", 1)[-1]
    number, tenant = call.subject, call.cdr.tenant or "(no tenant)"
    return Finding(lambda _t: f"Telemarketing attempt {count} within {config.days} days by {tenant} to one consumer "
                              f"(number hash {consumer[:12]}), this one from caller ID {number}: at most "
                              f"{config.max_attempts} are allowed (art. D.223-9).",
                   scope={"consumer": consumer}, value=count, count=count)


# -- automated calls (ARCEP decision 2022-1583) --------------------------------------------------------

def _automated_cause(cli: NumberInfo, npv: bool) -> str | None:
    """Why a French CLI may not be presented on an automated call, or None when it may."""
    first = cli.national_number[:1]
    if first in ("6", "7"):
        return "a French mobile number (06/07, reserved for calls between persons)"
    if first in ("1", "2", "3", "4", "5", "9") and not npv:
        return "a French geographic or 09 number outside the NPV ranges"
    return None


def _npv_now(block: Mapping[str, Any], inventory: Inventory | None) -> bool:
    """The block ends when the inventory now marks the number NPV (a mobile number's never does)."""
    if block["scope"] != AUTOMATED_SCOPE:
        return False
    cli = classify(block["caller_id"])
    entry = inventory.get(cli.e164) if inventory is not None else None
    npv = entry.npv if entry is not None and entry.npv is not None else cli.fr_npv
    return _automated_cause(cli, npv) is None


@rule("fr.automated_not_npv", "block", ("standing",), inventory="optional", needs=("purpose",),
      lifted_by=frozenset({"operator", "inventory"}), cause_removed=_npv_now)
def automated_not_npv(call: Call, _rule: Rule) -> Finding | None:
    """An automated call presenting a French geographic or 09 CLI outside the NPV ranges, or a French mobile
    CLI (scoped to automated calls: the number may still carry calls between persons)."""
    cli = call.cli
    if call.purpose != "automated" or cli.calling_code != 33:
        return None
    why = _automated_cause(cli, is_npv(cli, call))
    if why is None:
        return None
    number = call.subject
    return Finding(lambda _t: f"Caller ID {number} is {why}; automated calls must present an NPV number "
                              "(ARCEP decision 2022-1583).", scope=AUTOMATED_SCOPE)
