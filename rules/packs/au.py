"""Australia."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.context import Call
from rules.inventory import Inventory
from rules.numbers import classify
from rules.pack import Rule
from rules.registry import Finding, rule

AU_SCOPE = {"destination_country": "AU"}


def _permitted_now(block: Mapping[str, Any], inventory: Inventory | None) -> bool:
    """A block on calls to Australia ends when the CLI is owned again; a receive-only CLI's never does."""
    if block["scope"] != AU_SCOPE:
        return False
    number = block["caller_id"]
    return not classify(number).toll_free and (inventory is None or inventory.owns(number))


@rule("au.cli_not_permitted", "block", ("standing",), inventory="optional",
      lifted_by=frozenset({"operator", "inventory"}), cause_removed=_permitted_now)
def cli_not_permitted(call: Call, _rule: Rule) -> Finding | None:
    """An AU 13/1300/1800/1900 caller ID anywhere; on calls to Australia, a toll-free caller ID or
    (with an inventory) one the sender has not claimed or ported."""
    cli, number = call.cli, call.subject
    if cli.au_receive_only:
        return Finding(lambda _t: f"Caller ID {number} is an Australian 13/1300/1800/1900 number, which is "
                                  "receive-only and cannot be presented.")
    if not call.destination_is(61):
        return None
    if cli.toll_free:
        why = "a toll-free number"
    elif call.inventory is not None and not call.inventory.owns(number):
        why = "not a number the sender has claimed or ported"
    else:
        return None
    return Finding(lambda _t: f"Caller ID {number} is {why}; Australian carriers require a provider-issued "
                              "DID on calls to Australia.", scope=AU_SCOPE)
