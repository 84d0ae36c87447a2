"""United Kingdom."""

from __future__ import annotations

from rules.context import Call
from rules.pack import Rule
from rules.registry import Finding, rule


@rule("uk.cli_not_permitted", "block", ("standing",))
def cli_not_permitted(call: Call, _rule: Rule) -> Finding | None:
    """A UK 09 premium-rate or +44 870-873 caller ID (`NumberInfo.uk_prohibited`)."""
    if not call.cli.uk_prohibited:
        return None
    number = call.subject
    return Finding(lambda _t: f"Caller ID {number} is a UK premium-rate or 087x number, which Ofcom does not "
                              "allow as a caller ID.")
