"""Spain."""

from __future__ import annotations

from rules.context import Call
from rules.pack import Rule
from rules.registry import Finding, rule

COMMERCIAL = ("telemarketing", "service")
COMMERCIAL_SCOPE = {"purpose": "telemarketing,service"}


@rule("es.mobile_cli_commercial", "block", ("standing",), inventory="optional", needs=("purpose",))
def mobile_cli_commercial(call: Call, _rule: Rule) -> Finding | None:
    """A Spanish mobile caller ID (6xx, 7xx) on an unsolicited commercial or customer-service call
    (scoped to those calls: the number may still carry other calls)."""
    cli = call.cli
    if cli.calling_code != 34 or call.purpose not in COMMERCIAL or cli.national_number[:1] not in ("6", "7"):
        return None
    number = call.subject
    return Finding(lambda _t: f"Caller ID {number} is a Spanish mobile number; since 7 June 2025 commercial and "
                              "customer-service calls must present a geographic or other non-mobile number "
                              "(Orden TDF/149/2025, art. 9).", scope=COMMERCIAL_SCOPE)
