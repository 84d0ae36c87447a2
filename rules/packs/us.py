"""United States and Canada (NANP)."""

from __future__ import annotations

from rules.cdr import zone
from rules.context import Call
from rules.hours import Hours, hours_params
from rules.numbers import time_zones
from rules.pack import Rule
from rules.registry import Finding, rule

NANP_CNAM_REGIONS = frozenset({"US", "CA"})
TOLL_FREE_SCOPE = {"destination_type": "toll_free"}


@rule("us.tollfree_to_tollfree", "block", ("standing",))
def tollfree_to_tollfree(call: Call, _rule: Rule) -> Finding | None:
    """A NANP toll-free caller ID calling a NANP toll-free number (scoped to such destinations)."""
    if not call.cli.nanp_toll_free:
        return None
    dest = call.destination
    if not (dest.valid and dest.nanp_toll_free):
        return None
    number = call.subject
    return Finding(lambda _t: f"Toll-free caller ID {number} called a toll-free number; use a geographic DID "
                              "for calls to toll-free numbers.", scope=TOLL_FREE_SCOPE)


@rule("us.cnam_missing", "alert", ("utc_day", "local_day"), inventory="required")
def cnam_missing(call: Call, _rule: Rule) -> Finding | None:
    """A US/CA geographic caller ID of the inventory with no CNAM registered."""
    cli = call.cli
    if cli.region not in NANP_CNAM_REGIONS or cli.toll_free:
        return None
    assert call.inventory is not None
    entry = call.inventory.get(cli.e164)
    if entry is None or entry.cnam:
        return None
    return Finding(lambda _t: f"Caller ID {cli.e164} has no CNAM registered; calls without a caller name are "
                              "more likely to be labelled spam.")


@rule("us.calling_hours", "alert", ("utc_day", "local_day"), inventory="optional", needs=("purpose",),
      params=hours_params([["08:00", "21:00"]], [0, 1, 2, 3, 4, 5, 6]))
def calling_hours(call: Call, rule: Rule) -> Finding | None:
    """A telemarketing call to a US or Canadian number before 08:00 or after 21:00 where the called party
    may be: in every zone phonenumbers gives the number (an area code spanning two zones must be inside
    hours in both)."""
    if call.purpose != "telemarketing" or not call.destination_is(1):
        return None
    dest = call.destination
    if dest.region not in NANP_CNAM_REGIONS or dest.e164 is None:
        return None
    hours: Hours = rule.config
    local_times = [(name, call.cdr.started_at.astimezone(zone(name))) for name in time_zones(dest.e164)]
    outside = [(name, local) for name, local in local_times if not hours.permits(local)]
    if not outside:
        return None
    (name, local), number, region = outside[0], call.subject, dest.region
    return Finding(lambda _t: f"Caller ID {number} made a telemarketing call to a {region} number at "
                              f"{local:%H:%M} {name} (the called party's possible local time): "
                              "outside 08:00-21:00 (47 CFR 64.1200(c)(1)).")
