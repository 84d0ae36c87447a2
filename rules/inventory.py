"""The number inventory: which caller IDs a sender may present, and what is known about them."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rules.cdr import PURPOSES
from rules.errors import yaml_error
from rules.numbers import classify

SOURCES = ("claimed", "ported", "byoc_verified", "byoc_pending")
AUTHORISING = frozenset({"claimed", "ported", "byoc_verified"})
OWNED = frozenset({"claimed", "ported"})
FIELDS = ("number", "source", "npv", "cnam", "tenant")


class InventoryError(ValueError):
    """An inventory that cannot be used; the message names the file, entry and field."""


@dataclass(frozen=True, slots=True)
class InventoryEntry:
    number: str  # normalised E.164
    source: str
    npv: bool | None = None
    cnam: str | None = None
    tenant: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "source": self.source, "npv": self.npv, "cnam": self.cnam,
                "tenant": self.tenant}


class Inventory:
    """Numbers keyed by normalised E.164. An empty inventory is a real one: nothing is authorised.

    `campaigns` maps a campaign name to the `purpose` of its calls: a dialer that tags records with a
    campaign but not a purpose still has its telemarketing and automated calls judged as such.
    """

    def __init__(self, entries: Iterable[InventoryEntry], campaigns: Mapping[str, str] | None = None) -> None:
        self.entries: dict[str, InventoryEntry] = {entry.number: entry for entry in entries}
        self.campaigns: Mapping[str, str] = dict(campaigns or {})

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, e164: str | None) -> InventoryEntry | None:
        return None if e164 is None else self.entries.get(e164)

    def authorises(self, e164: str, tenant: str | None) -> bool:
        """Listed as claimed, ported or BYOC-verified, and for the same tenant when both name one."""
        entry = self.entries.get(e164)
        if entry is None or entry.source not in AUTHORISING:
            return False
        return not (entry.tenant and tenant and entry.tenant != tenant)

    def owns(self, e164: str) -> bool:
        """Claimed or ported: the stricter test Australian carriers apply."""
        entry = self.entries.get(e164)
        return entry is not None and entry.source in OWNED

    def to_dicts(self) -> list[dict[str, Any]]:
        return [entry.to_dict() for entry in self.entries.values()]


def load_inventory(path: str | Path) -> Inventory:
    """Read a YAML (`numbers:` list) or CSV inventory; raise InventoryError with file and entry."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read inventory: {exc.strerror or exc}") from exc
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        return inventory_from_rows(rows, str(path), first_line=2)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InventoryError(yaml_error(path, exc)) from exc
    if document is None:
        document = {"numbers": []}
    if not isinstance(document, Mapping) or "numbers" not in document:
        raise InventoryError(f"{path}: expected a mapping with a 'numbers:' list")
    numbers = document["numbers"] or []
    if not isinstance(numbers, list):
        raise InventoryError(f"{path}: 'numbers' must be a list")
    unknown = set(document) - {"numbers", "campaigns"}
    if unknown:
        raise InventoryError(f"{path}: unknown section(s) {', '.join(sorted(map(str, unknown)))}")
    return inventory_from_rows(numbers, str(path), first_line=None, campaigns=document.get("campaigns"))


def inventory_from_rows(rows: list[Any], origin: str, first_line: int | None = None,
                        campaigns: Any = None) -> Inventory:
    """Validate inventory rows (and the optional campaign -> purpose map) from any origin (a file, the
    inventory topic)."""
    entries = []
    seen: dict[str, str] = {}  # number -> where it was first listed
    for index, row in enumerate(rows):
        label = f"line {first_line + index}" if first_line else f"entry {index + 1}"
        entry = _entry(row, f"{origin}: {label}")
        if entry.number in seen:
            # One number, one entry: a second one would silently replace the first (its tenant, source).
            raise InventoryError(f"{origin}: {label}: number {entry.number} is listed twice, at {seen[entry.number]} "
                                 f"and at {label}; keep one entry per number")
        seen[entry.number] = label
        entries.append(entry)
    return Inventory(entries, _campaigns(campaigns, origin))


def _campaigns(value: Any, origin: str) -> dict[str, str]:
    """`campaigns:`, a mapping of campaign name to one of PURPOSES."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InventoryError(f"{origin}: campaigns: expected a mapping of campaign name to purpose")
    campaigns = {}
    for name, purpose in value.items():
        text = str(purpose).strip().lower() if isinstance(purpose, str) else None
        if text not in PURPOSES:
            raise InventoryError(f"{origin}: campaigns: {str(name)!r}: purpose must be one of "
                                 f"{', '.join(PURPOSES)}, got {purpose!r}")
        campaigns[str(name)] = text
    return campaigns


def _entry(row: Any, where: str) -> InventoryEntry:
    if not isinstance(row, Mapping):
        raise InventoryError(f"{where}: expected a mapping with number and source")
    unknown = set(row) - set(FIELDS)
    if unknown:
        raise InventoryError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    raw = row.get("number")
    info = classify(None if raw is None else str(raw))
    if not info.valid or info.e164 is None:
        raise InventoryError(f"{where}: field number: {raw!r} is not a valid E.164 number")
    source = str(row.get("source") or "").strip()
    if source not in SOURCES:
        raise InventoryError(f"{where}: field source: must be one of {', '.join(SOURCES)}, got {source!r}")
    return InventoryEntry(
        number=info.e164,
        source=source,
        npv=_optional_bool(row.get("npv"), where),
        cnam=_optional_text(row.get("cnam")),
        tenant=_optional_text(row.get("tenant")),
    )


def _optional_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _optional_bool(value: Any, where: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InventoryError(f"{where}: field npv: expected true or false, got {value!r}")
