"""Caller-ID rules of every jurisdiction: the CLI must be valid E.164 and the sender's own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.context import Call
from rules.inventory import Inventory
from rules.pack import Rule
from rules.registry import Finding, rule


@rule("cli.invalid", "alert", ("utc_day", "local_day"), cli="invalid")
def invalid(call: Call, _rule: Rule) -> Finding:
    """An outbound caller ID that is not valid E.164; no other rule looks at such a call."""
    raw = call.cdr.caller_id
    return Finding(lambda _t: f"Outbound caller ID {raw!r} is not a valid E.164 number; carriers may block "
                              "or relabel these calls.")


def _authorised_now(block: Mapping[str, Any], inventory: Inventory | None) -> bool:
    return inventory is None or inventory.authorises(block["caller_id"], block.get("tenant"))


@rule("cli.not_authorized", "block", ("standing",), inventory="required",
      lifted_by=frozenset({"operator", "inventory"}), cause_removed=_authorised_now)
def not_authorized(call: Call, _rule: Rule) -> Finding | None:
    """A valid caller ID not claimed, ported or verified for the call's tenant."""
    assert call.inventory is not None
    number, tenant = call.subject, call.cdr.tenant
    if call.inventory.authorises(number, tenant):
        return None
    return Finding(lambda _t: f"Caller ID {number} is not claimed, ported or verified for tenant "
                              f"{tenant or '(none)'}; stop presenting it.")
