"""Toll-free caller IDs outside their own country."""

from __future__ import annotations

from rules.context import Call
from rules.pack import Rule
from rules.registry import Finding, rule


@rule("tollfree.international", "alert", ("utc_day", "local_day"))
def international(call: Call, _rule: Rule) -> Finding | None:
    """A toll-free caller ID presented on a call to another country calling code."""
    cli = call.cli
    if cli.number_type != "TOLL_FREE":
        return None
    dest = call.destination
    if not dest.valid or dest.calling_code == cli.calling_code:
        return None
    number = call.subject
    return Finding(lambda _t: f"Toll-free caller ID {number} was presented on a call to +{dest.calling_code} "
                              f"({dest.region}); toll-free numbers are national.")
