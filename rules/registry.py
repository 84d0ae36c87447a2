"""The rule registry: every rule the engine knows, declared once beside its check.

A rule is its pack row (YAML: thresholds, window, zone, citation) plus one small check function in
the module of its id's prefix, next to the pack file: rule `PREFIX.NAME` is the check `NAME` in
`rules/packs/PREFIX.py`, its row in `rules/packs/PREFIX.yaml`, its runbook `docs/runbooks/PREFIX.NAME.md`,
its tests `tests/rules/test_PREFIX.py` (tests/rules/test_registry.py holds every rule to this).
The check says *whether* a call breaks the rule; the engine applies the emission policy the rule's
kind declares (alert once per window, standing block, thresholds with time-boxed blocks), so no
check ever touches state or builds a decision.

Everything else that used to list rule ids (which rules need the destination or the inventory, which
blocks an inventory change lifts, the summary's "inventory clauses skipped") is derived from here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from rules.context import Call
    from rules.inventory import Inventory
    from rules.pack import Rule, Threshold

KINDS = ("alert", "block", "threshold")
WINDOWS = ("utc_day", "local_day", "standing", "days", "sliding")  # the last two: declared threshold rules
DIRECTIONS = ("outbound", "inbound")
CLI_STATES = ("valid", "invalid")
INVENTORY_USES = ("none", "optional", "required")
NO_SCOPE: Mapping[str, str] = MappingProxyType({})


class Finding(NamedTuple):
    """What a check found on one call; the engine decides whether it becomes a decision.

    `message` is text, or a function of the threshold crossed (threshold rules), called only when a
    decision is actually made. `value` is what thresholds compare (a count, a score), `count` what the
    decision reports; `usage` is (count, cap) for the NOC's "calls against the daily cap" gauge.
    (A named tuple: one is made per rule per call, and it is the cheapest record Python builds.)
    """

    message: str | Callable[[Threshold | None], str]
    scope: Mapping[str, str] = NO_SCOPE
    value: float = 1.0
    count: int = 1
    subject: str | None = None  # the caller ID the decision is about; default: the call's subject
    usage: tuple[int, float] | None = None
    measure: Any = None  # a threshold rule's `rules.threshold.Reading`: its tally, hysteresis and forecast

    def text(self, threshold: Threshold | None = None) -> str:
        return self.message if isinstance(self.message, str) else self.message(threshold)


Check = Callable[["Call", "Rule"], "Finding | None"]
KeyOf = Callable[["Call", "Rule"], "str | None"]
CauseRemoved = Callable[[Mapping[str, Any], "Inventory | None"], bool]


@dataclass(frozen=True)
class RuleSpec:
    """What the engine must know about a rule besides its check.

    - `kind`: the emission policy (alert once per window; standing block until lifted; thresholds).
    - `windows`: the pack windows it accepts (the first is what a new pack row should use).
    - `direction`/`cli`: which calls it looks at (outbound calls with a valid or an invalid CLI, or
      inbound calls to our numbers).
    - `inventory`: whether it needs the number inventory ("required": skipped without one) or uses it
      when present ("optional").
    - `lifted_by`: how its blocks end: "time" (time-boxed), "operator" (always), "inventory" (a push
      that removes the cause, judged by `cause_removed`).
    - `params`: validates the pack row's `params` once, at load time (a bad one is a PackError).
    - `needs`: optional record fields the rule reads (`purpose`, `ingress_country`); a call without
      them is not judged by it, and the run counts such records (`Engine.lacking`).
    - `keyed`: for a rule whose state is not the caller ID's (a count per tenant and consumer), the key
      of the state a call counts in, or None when the rule does not apply to the call. The engine judges
      such a rule in a second step on that state (`Engine.process_keyed`), which the stream runs on
      the partition that owns the key.
    - `measure`: a threshold rule whose check only selects and words what `rules.threshold.measure` counts;
      its pack row is read as a declared threshold row of this measure (window, key, levels, forecast).
    """

    id: str
    kind: str
    check: Check
    windows: tuple[str, ...]
    direction: str = "outbound"
    cli: str = "valid"
    inventory: str = "none"
    lifted_by: frozenset[str] = frozenset({"operator"})
    cause_removed: CauseRemoved | None = None
    params: Callable[[Mapping[str, Any]], Any] | None = None  # parses the pack row's params (as `Rule.config`)
    needs: tuple[str, ...] = ()
    keyed: KeyOf | None = None
    measure: str | None = None  # a threshold rule counted by rules/threshold.py: its measure (fr.daily_limit)

    def __post_init__(self) -> None:
        for name, value, allowed in (("kind", self.kind, KINDS), ("direction", self.direction, DIRECTIONS),
                                     ("cli", self.cli, CLI_STATES), ("inventory", self.inventory, INVENTORY_USES)):
            if value not in allowed:
                raise ValueError(f"rule {self.id}: {name} must be one of {', '.join(allowed)}, got {value!r}")
        if not set(self.windows) <= set(WINDOWS) or not self.windows:
            raise ValueError(f"rule {self.id}: windows must be among {', '.join(WINDOWS)}")
        if ("inventory" in self.lifted_by) != (self.cause_removed is not None):
            raise ValueError(f"rule {self.id}: lifted by inventory iff it has a cause_removed check")


_REGISTRY: dict[str, RuleSpec] = {}
_ordered: Mapping[str, RuleSpec] | None = None  # `registry()`'s answer, until a new registration


def rule(rule_id: str, kind: str, windows: tuple[str, ...], **options: Any) -> Callable[[Check], Check]:
    """Register the decorated function as the check of `rule_id` (one registration per id)."""

    def register(check: Check) -> Check:
        global _ordered
        if rule_id in _REGISTRY:
            raise ValueError(f"rule {rule_id} is registered twice")
        _REGISTRY[rule_id] = RuleSpec(rule_id, kind, check, windows, **options)
        _ordered = None
        return check

    return register


def registry() -> Mapping[str, RuleSpec]:
    """Every known rule by id, in a stable order (check modules by name, rules in file order).

    Complete and in that order whatever was imported first: code that imports one check module (to
    name a rule by its check) does not hide the others or reorder them.
    """
    global _ordered
    if _ordered is None:
        _load_checks()
        # A module registers its rules together, on import: a stable sort by module keeps file order.
        by_module = sorted(_REGISTRY.values(), key=lambda spec: spec.check.__module__)
        _ordered = MappingProxyType({spec.id: spec for spec in by_module})
    return _ordered


def _load_checks() -> None:
    """Import every module of rules/packs: each registers its rules on import."""
    from rules import packs

    for module in sorted(pkgutil.iter_modules(packs.__path__), key=lambda m: m.name):
        importlib.import_module(f"{packs.__name__}.{module.name}")


def needed_fields() -> dict[str, list[str]]:
    """Optional record fields some rule needs, with the rules that need each."""
    needs: dict[str, list[str]] = {}
    for spec in registry().values():
        for name in spec.needs:
            needs.setdefault(name, []).append(spec.id)
    return needs


def inventory_clauses() -> list[str]:
    """Rules that use the inventory: what a run without one skips (in whole or in part)."""
    return [spec.id for spec in registry().values() if spec.inventory != "none"]
