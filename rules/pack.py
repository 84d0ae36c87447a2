"""Rule packs: the rules as data (one YAML file per jurisdiction), validated with clear errors.

Each rule id has one check in the registry (`rules/registry.py`); a pack row says whether it runs
and with which thresholds, window, time zone and citation, so a user tunes a threshold in a file,
never in code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rules.cdr import CdrError, zone
from rules.errors import CidwatchError, yaml_error
from rules.registry import registry
from rules.threshold import FIELDS as THRESHOLD_FIELDS
from rules.threshold import parse as parse_threshold
from rules.threshold import window_of

PACKS_DIR = Path(__file__).parent / "packs"
SEVERITIES = ("info", "warning", "critical")
RULE_KEYS = {"id", "description", "kind", "severity", "thresholds", "window", "timezone", "source",
             "enabled", "params"} | THRESHOLD_FIELDS
DECLARED_ID = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


class PackError(CidwatchError, ValueError):
    """A rule pack that cannot be used; the message names the file, rule and field."""


@dataclass(frozen=True)
class Threshold:
    at: float
    kind: str  # alert | block
    severity: str


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    kind: str
    severity: str | None
    window: str
    timezone: str
    source: str
    thresholds: tuple[Threshold, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    config: Any = field(default=None, compare=False)  # `params` as the rule's check reads them


@dataclass(frozen=True)
class RulePack:
    """The enabled rules by id. Rules absent from the packs do not run."""

    rules: Mapping[str, Rule]

    def get(self, rule_id: str) -> Rule | None:
        return self.rules.get(rule_id)

    def __contains__(self, rule_id: str) -> bool:
        return rule_id in self.rules


def load_packs(directory: str | Path | None = None, examples: bool = False) -> RulePack:
    """Load every `*.yaml` pack of a directory (default: the shipped packs); `examples`: with the rows of
    the example packs (`example: true`) enabled, as the engine benchmark and the examples' tests run them."""
    directory = Path(directory) if directory else PACKS_DIR
    if not directory.is_dir():
        raise PackError(f"{directory}: not a directory of rule packs")
    files = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
    if not files:
        raise PackError(f"{directory}: no *.yaml rule packs found")
    rules: dict[str, Rule] = {}
    origin: dict[str, Path] = {}
    for path in files:
        for rule in load_pack_file(path, examples):
            if rule.id in rules:
                raise PackError(f"{path}: rule {rule.id} is also defined in {origin[rule.id]}")
            origin[rule.id] = path
            rules[rule.id] = rule
    return RulePack({rule_id: rule for rule_id, rule in rules.items()})


@dataclass(frozen=True)
class PackFile:
    """One pack file: its name (the rules' id prefix), the jurisdiction it declares, its enabled rules."""

    name: str
    jurisdiction: str
    rules: tuple[Rule, ...]


def pack_files(directory: str | Path | None = None) -> list[PackFile]:
    """The packs of a directory (default: the shipped packs), each with its `jurisdiction:` (a country
    code, or `global`), for what reports per jurisdiction."""
    directory = Path(directory) if directory else PACKS_DIR
    files = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
    packs = []
    for path in files:
        rules = tuple(load_pack_file(path))
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        packs.append(PackFile(path.stem, str(document.get("jurisdiction") or "global"), rules))
    return packs


def load_pack_file(path: str | Path, examples: bool = False) -> list[Rule]:
    """Parse and validate one pack file; disabled rules are validated and then left out (`examples`: but
    not those of an example pack)."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PackError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise PackError(yaml_error(path, exc)) from exc
    if not isinstance(document, Mapping) or not isinstance(document.get("rules"), list):
        raise PackError(f"{path}: expected a mapping with a 'rules:' list")
    rules = []
    for index, entry in enumerate(document["rules"]):
        where = f"{path}: rules[{index}]"
        if isinstance(entry, Mapping) and entry.get("id"):
            where += f" ({entry['id']})"
        rule = _rule(entry, where)
        if entry.get("enabled", True) or (examples and document.get("example") is True):
            rules.append(rule)
    return rules


def _rule(entry: Any, where: str) -> Rule:
    if not isinstance(entry, Mapping):
        raise PackError(f"{where}: expected a mapping")
    unknown = set(entry) - RULE_KEYS
    if unknown:
        raise PackError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    rule_id = _text(entry, "id", where)
    kind = _text(entry, "kind", where)
    specs = registry()
    spec = specs.get(rule_id)
    # A threshold rule declared in its row (rules/threshold.py), or a registered one counted there.
    measured = kind == "threshold" and ("measure" in entry or (spec is not None and spec.measure is not None))
    if spec is not None and spec.measure is not None:
        if entry.get("measure", spec.measure) != spec.measure:
            raise PackError(f"{where}: field measure: {rule_id} counts {spec.measure}, got {entry['measure']!r}")
        entry = {**entry, "measure": spec.measure}
    if spec is None and not measured:
        raise PackError(f"{where}: field id: unknown rule {rule_id!r}; known: {', '.join(specs)} "
                        "(or declare a threshold rule: kind threshold with a measure)")
    if spec is None and rule_id.split(".", 1)[0] in {known.split(".", 1)[0] for known in specs}:
        # A typo of a registered id (fr.daily_limits) must not quietly become a rule of its own.
        raise PackError(f"{where}: field id: unknown rule {rule_id!r}; known: {', '.join(specs)} (a rule declared "
                        f"in YAML alone takes a prefix of its own, not {rule_id.split('.', 1)[0]!r})")
    if spec is None and not DECLARED_ID.match(rule_id):
        raise PackError(f"{where}: field id: a declared rule's id is PREFIX.NAME in lower case, got {rule_id!r}")
    if spec is not None and kind != spec.kind:
        raise PackError(f"{where}: field kind: {rule_id} is a {spec.kind} rule, got {kind!r}")
    extra = sorted(set(entry) & THRESHOLD_FIELDS - {"measure"})
    if extra and not measured:
        raise PackError(f"{where}: field {extra[0]}: only a threshold rule with a measure takes it")
    if measured:
        try:
            window = window_of(entry.get("window"))[0]
        except ValueError as exc:
            raise PackError(f"{where}: {exc}") from exc
    else:
        window = _text(entry, "window", where)
    windows = spec.windows if spec is not None else (window,)
    if window not in windows:
        raise PackError(f"{where}: field window: {rule_id} takes {' or '.join(windows)}, got {window!r}")
    timezone = str(entry.get("timezone") or "UTC")
    try:
        zone(timezone)
    except CdrError as exc:
        raise PackError(f"{where}: field timezone: {exc.reason}") from exc
    if "enabled" in entry and not isinstance(entry["enabled"], bool):
        raise PackError(f"{where}: field enabled: expected true or false")
    params = entry.get("params") or {}
    if not isinstance(params, Mapping):
        raise PackError(f"{where}: field params: expected a mapping")
    thresholds = _thresholds(entry, where, ordered=not measured) if kind == "threshold" else ()
    severity = None if kind == "threshold" else _severity(entry.get("severity"), where, "severity")
    config = None
    if measured:
        if params:
            raise PackError(f"{where}: field params: a threshold rule with a measure declares its options as fields")
        try:
            config = parse_threshold(entry, thresholds, timezone)
        except ValueError as exc:
            raise PackError(f"{where}: {exc}") from exc
        if spec is not None and config.key != "cli":
            raise PackError(f"{where}: field key: {rule_id} counts per caller ID (key cli), got {config.key!r}")
        if spec is not None and config.call_direction != spec.direction:
            raise PackError(f"{where}: field filter.direction: {rule_id} judges {spec.direction} calls")
    elif spec is not None and spec.params is not None:
        try:
            config = spec.params(params)
        except (TypeError, ValueError) as exc:
            raise PackError(f"{where}: field params: {exc}") from exc
    return Rule(
        id=rule_id,
        description=_text(entry, "description", where),
        kind=kind,
        severity=severity,
        window=window,
        timezone=timezone,
        source=_text(entry, "source", where),
        thresholds=thresholds,
        params=dict(params),
        config=config,
    )


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PackError(f"{where}: field {key}: required, a non-empty string")
    return " ".join(value.split())


def _severity(value: Any, where: str, key: str) -> str:
    if value not in SEVERITIES:
        raise PackError(f"{where}: field {key}: must be one of {', '.join(SEVERITIES)}, got {value!r}")
    return str(value)


def _thresholds(entry: Mapping[str, Any], where: str, ordered: bool = True) -> tuple[Threshold, ...]:
    """The levels (`ordered`: ascending; a measured rule's order depends on its direction, checked there)."""
    raw = entry.get("thresholds")
    if not isinstance(raw, list) or not raw:
        raise PackError(f"{where}: field thresholds: required, a non-empty list of {{at, kind, severity}}")
    thresholds = []
    for index, item in enumerate(raw):
        here = f"{where}: thresholds[{index}]"
        if not isinstance(item, Mapping) or set(item) != {"at", "kind", "severity"}:
            raise PackError(f"{here}: expected exactly the fields at, kind, severity")
        at = item["at"]
        if isinstance(at, bool) or not isinstance(at, int | float) or at <= 0:
            raise PackError(f"{here}: field at: expected a positive number, got {at!r}")
        if item["kind"] not in ("alert", "block"):
            raise PackError(f"{here}: field kind: must be alert or block, got {item['kind']!r}")
        thresholds.append(Threshold(at, item["kind"], _severity(item["severity"], here, "severity")))
    levels = [threshold.at for threshold in thresholds]
    if ordered and levels != sorted(set(levels)):
        raise PackError(f"{where}: field thresholds: 'at' values must be strictly ascending, got {levels}")
    return tuple(thresholds)
