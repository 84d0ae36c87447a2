"""Caller-ID rules of every jurisdiction: the CLI must be valid E.164, the sender's own, and not the called number."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rules.context import Call
from rules.decision import scope_applies
from rules.inventory import Inventory
from rules.numbers import strip_separators
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


@rule("cli.same_as_destination", "alert", ("utc_day", "local_day"))
def same_as_destination(call: Call, _rule: Rule) -> Finding | None:
    """A valid caller ID presented on a call to that very number: what spoofed calls look like.

    The destination is parsed only when its written form can be the caller ID: a raw destination
    ending in another digit, or whose digits do not end with the caller ID's national number, cannot be.
    """
    number = call.subject  # the caller ID in E.164 (this rule sees valid caller IDs only)
    dest = call.destination_classified
    if dest is None:
        raw = call.cdr.destination
        last = raw[-1:]
        if last != number[-1:] and last.isdigit():
            return None
        if not strip_separators(raw).endswith(call.cli.national_number):
            return None
        dest = call.destination
    if dest.e164 != number:
        return None
    return Finding(lambda _t: f"Caller ID {number} was presented on a call to {number} itself; analytics "
                              "engines and carriers treat a call from the called number as spoofed.")


@rule("cli.used_while_blocked", "alert", ("utc_day", "local_day"))
def used_while_blocked(call: Call, rule: Rule) -> Finding | None:
    """A call presenting a caller ID that had a block in force for this call's scope at its `started_at`:
    the dialer did not honour the block. Only a block decided by an earlier call counts (made before
    this call started, by another call): the call that triggers a block is not counted. Blocks lifted
    (their unblock judged, an operator's clear, a time-boxed block's `until` passed) are no longer in the
    subject's state. Counted per caller ID and window; the engine alerts once per window.
    """
    blocks = call.state.blocks
    if not blocks:
        return None
    started, call_id = call.cdr.started_at, call.cdr.call_id
    ignored = None
    for block in blocks.values():
        if block.get("call_id") == call_id:
            continue
        since = datetime.fromisoformat(block["at"])
        if since >= started:
            continue
        until = block.get("until")
        if until is not None and datetime.fromisoformat(until) <= started:
            continue
        scope = block.get("scope") or {}
        if scope and not scope_applies(scope, call.destination, call.purpose):
            continue
        if ignored is None or (since, block["rule"]) < (datetime.fromisoformat(ignored["at"]), ignored["rule"]):
            ignored = block
    if ignored is None:
        return None
    window = call.window(rule)
    count = call.count(rule.id, window)
    number, blocked_by, since_text, block_id = call.subject, ignored["rule"], ignored["at"], ignored["id"]
    return Finding(lambda _t: f"Caller ID {number} was presented on {count} call(s) on {window.key} while blocked "
                              f"by {blocked_by} since {since_text} (block {block_id}); the dialer is not honouring "
                              "the block.", count=count)
