"""United States and Canada (NANP)."""

from __future__ import annotations

from rules.context import Call
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
