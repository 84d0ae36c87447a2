"""What a check sees of one call: the record, its classified numbers, the inventory, its subject's state.

The destination is classified lazily: most rules never look at it, destinations are mostly unique,
and parsing each one would dominate the cost of a record. A check that needs it asks, and only then
is it parsed (`destination_is` first tests the calling code on the string, which is exact for
numbers written in E.164 since calling codes are prefix-free, and then asks phonenumbers only whether
the number is valid, which is half the work of classifying it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rules.cdr import Cdr
from rules.inventory import Inventory
from rules.numbers import NumberInfo, classify_with_region, strip_separators, valid_calling_code
from rules.state import fired_key
from rules.window import Window, windows_for

if TYPE_CHECKING:
    from rules.pack import Rule
    from rules.state import SubjectState


class Call:
    """One record being judged. Built once per record and shared by every check."""

    __slots__ = ("_destination", "at", "cdr", "cli", "default_region", "hash_key", "inventory", "state", "subject")

    def __init__(self, cdr: Cdr, subject: str, cli: NumberInfo, inventory: Inventory | None,
                 state: SubjectState, default_region: str | None, hash_key: bytes = b"",
                 destination: NumberInfo | None = None, at: float | None = None) -> None:
        self.cdr = cdr
        self.subject = subject
        self.cli = cli
        self.inventory = inventory
        self.state = state
        self.default_region = default_region
        self.hash_key = hash_key  # keys the hashes of destinations kept in state
        self._destination = destination
        self.at = cdr.started_at.timestamp() if at is None else at  # `started_at` in epoch seconds

    @property
    def purpose(self) -> str | None:
        """The call's purpose: the record's, else its campaign's in the inventory's `campaigns:` map."""
        purpose = self.cdr.purpose
        if purpose is None and self.cdr.campaign is not None and self.inventory is not None:
            return self.inventory.campaigns.get(self.cdr.campaign)
        return purpose

    @property
    def destination(self) -> NumberInfo:
        """The called number, classified (nationally written numbers read in the default region)."""
        if self._destination is None:
            self._destination = classify_with_region(self.cdr.destination, self.default_region)
        return self._destination

    @property
    def destination_classified(self) -> NumberInfo | None:
        """The destination if some check already classified it, else None (never parses)."""
        return self._destination

    def destination_is(self, calling_code: int) -> bool:
        """Whether the destination is a valid number of `calling_code`, parsing it only when it can be."""
        if self._destination is None:
            raw, prefix = self.cdr.destination, f"+{calling_code}"
            if not raw.startswith(prefix):
                if raw.startswith("+") and raw[1:].isdigit():
                    return False  # E.164 of another calling code: no parse needed
                stripped = strip_separators(raw)
                if stripped.startswith("+"):
                    if not stripped.startswith(prefix):
                        return False
                elif self.default_region is None:
                    return False  # written nationally, and no region to read it in
            if raw.startswith("+"):  # read as written (no default region applies): validity is enough
                return valid_calling_code(raw) == calling_code
        dest = self.destination
        return dest.valid and dest.calling_code == calling_code

    def window(self, rule: Rule) -> Window:
        """The rule's calendar day (in its zone) that this call falls in."""
        return windows_for(rule.window, rule.timezone).at(self.at, self.cdr.started_at)

    def threshold_ahead(self, rule: Rule) -> float | None:
        """The lowest threshold of a threshold rule that an unscoped finding of this subject has not yet
        passed in this call's window, or None when it passed them all.

        A check whose value is costly may report instead any upper bound of it below this threshold:
        the engine only compares values to thresholds, and a threshold passed again in the same window
        makes no new decision.
        """
        key = self.window(rule).key
        fired = self.state.fired
        for threshold in rule.thresholds:
            if fired_key(rule.id, threshold.severity, "{}", key, threshold.kind == "block") not in fired:
                return threshold.at
        return None

    def count(self, rule_id: str, window: Window) -> int:
        """Add this call to the rule's count in `window` and return the new count."""
        key = f"{rule_id}|{window.key}"
        entry = self.state.counts.get(key)
        if entry is None:
            entry = self.state.counts[key] = [0, window.end_ts]
        entry[0] += 1
        return int(entry[0])
