"""Shared helpers for the adapter tests: fixture paths, the golden-case manifest, record checks.

A plain module (not conftest.py) so tests import it by a name no other test directory uses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from rules.cdr import parse_cdr
from streams.adapters import Profile, SourceItem, load_profile

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "adapters"
REPO = Path(__file__).resolve().parents[2]


def load_cases() -> list[dict[str, Any]]:
    """The golden cases of fixtures/adapters/cases.yaml, with the expected file's default name filled in."""
    cases = yaml.safe_load((FIXTURES / "cases.yaml").read_text(encoding="utf-8"))
    for case in cases:
        case.setdefault("expected", case["input"].rsplit(".", 1)[0] + ".expected.jsonl")
    return cases


def case_profile(case: dict[str, Any]) -> Profile:
    return load_profile(FIXTURES / case["profile"] if case.get("profile") else None)


def read_expected(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def assert_canonical(item: SourceItem) -> None:
    """A converted record is the canonical contract exactly: parse_cdr gives it back unchanged."""
    assert item.record is not None
    assert parse_cdr(item.record).to_dict() == item.record
    assert item.record["started_at"].endswith("Z")
