"""France."""

from __future__ import annotations

from rules.context import Call
from rules.numbers import NumberInfo
from rules.pack import Rule, Threshold
from rules.registry import Finding, rule


def is_npv(cli: NumberInfo, call: Call) -> bool:
    """NPV by the ARCEP ranges, unless the inventory says otherwise for this number."""
    entry = call.inventory.get(cli.e164) if call.inventory is not None else None
    if entry is not None and entry.npv is not None:
        return entry.npv
    return cli.fr_npv


@rule("fr.daily_limit", "threshold", ("local_day", "utc_day"), inventory="optional",
      lifted_by=frozenset({"time", "operator"}))
def daily_limit(call: Call, rule: Rule) -> Finding | None:
    """A French non-NPV caller ID's distinct calls in one Paris day, against the operators' cap."""
    cli = call.cli
    if cli.calling_code != 33 or is_npv(cli, call):
        return None
    window = call.window(rule)
    count = call.count(rule.id, window)
    number = call.subject

    def message(threshold: Threshold | None) -> str:
        text = f"French caller ID {number} (not NPV) has made {count} calls on {window.key} ({rule.timezone}); "
        if threshold is not None and threshold.kind == "block":
            return text + f"blocked until {window.key} ends to stay within the operators' daily cap."
        return text + "the operators' daily cap is near."

    return Finding(message, value=count, count=count, usage=(count, rule.thresholds[-1].at))


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
