"""A rule lives in one place: every registered rule leads, by its id alone, to its pack row, its check,
its runbook and its tests, all named for the id's prefix; and the pack loader refuses an id it does not know.

Adding a rule is four files: its row in rules/packs/PREFIX.yaml, its `@rule` check in rules/packs/PREFIX.py,
docs/runbooks/ID.md, and its tests in tests/rules/test_PREFIX.py. This test fails when one is missing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rules.pack import PACKS_DIR, PackError, load_pack_file, load_packs
from rules.registry import registry

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "docs" / "runbooks"
TESTS = Path(__file__).resolve().parent
RULE_IDS = sorted(registry())


def prefix(rule_id: str) -> str:
    return rule_id.split(".", 1)[0]


def pack_rows() -> dict[str, Path]:
    """Every row of the shipped packs, enabled or not, by id: the file it is in."""
    rows: dict[str, Path] = {}
    for path in sorted(PACKS_DIR.glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8"))["rules"]:
            rows[entry["id"]] = path
    return rows


def test_there_are_rules_and_the_shipped_packs_load() -> None:
    assert len(RULE_IDS) >= 10
    assert set(load_packs().rules) <= set(RULE_IDS)


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_pack_row_in_the_pack_of_its_prefix(rule_id: str) -> None:
    rows = pack_rows()
    assert rule_id in rows, f"{rule_id}: no row in rules/packs/*.yaml"
    assert rows[rule_id].name == f"{prefix(rule_id)}.yaml", f"{rule_id}: its row is in {rows[rule_id].name}"


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_check_in_the_module_of_its_prefix(rule_id: str) -> None:
    check = registry()[rule_id].check
    assert check.__module__ == f"rules.packs.{prefix(rule_id)}", f"{rule_id}: its check is in {check.__module__}"
    assert (PACKS_DIR / f"{prefix(rule_id)}.py").is_file()
    assert check.__doc__, f"{rule_id}: its check {check.__name__} says what it checks in a docstring"


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_runbook(rule_id: str) -> None:
    path = RUNBOOKS / f"{rule_id}.md"
    assert path.is_file(), f"{rule_id}: no runbook {path.relative_to(ROOT)}"
    text = path.read_text(encoding="utf-8")
    assert text.startswith(f"# {rule_id}:")
    for section in ("## What it means", "## Why", "## What to do"):
        assert section in text, f"{rule_id}: missing {section}"


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_tests_in_the_file_of_its_prefix(rule_id: str) -> None:
    path = TESTS / f"test_{prefix(rule_id)}.py"
    assert path.is_file(), f"{rule_id}: no tests/rules/{path.name}"
    assert rule_id in path.read_text(encoding="utf-8"), f"{rule_id}: tests/rules/{path.name} never names it"


DECLARED_IDS = sorted(set(pack_rows()) - set(RULE_IDS))  # threshold rules declared wholly in a shipped pack


def test_declared_rules_are_threshold_rows_of_the_pack_of_their_prefix() -> None:
    assert DECLARED_IDS, "the example threshold packs declare rules with no check"
    examples = load_packs(examples=True).rules
    for rule_id in DECLARED_IDS:
        assert pack_rows()[rule_id].name == f"{prefix(rule_id)}.yaml"
        assert examples[rule_id].kind == "threshold" and examples[rule_id].config is not None


@pytest.mark.parametrize("rule_id", DECLARED_IDS)
def test_declared_rules_have_a_runbook_and_tests(rule_id: str) -> None:
    test_runbook(rule_id)
    test_tests_in_the_file_of_its_prefix(rule_id)


def test_the_pack_loader_refuses_an_unknown_rule(tmp_path: Path) -> None:
    pack = tmp_path / "xx.yaml"
    pack.write_text("rules:\n  - id: xx.no_such_rule\n    description: d\n    kind: alert\n    severity: info\n"
                    "    window: utc_day\n    source: s\n", encoding="utf-8")
    with pytest.raises(PackError, match=r"rules\[0\] \(xx\.no_such_rule\): field id: unknown rule 'xx\.no_such_rule'"):
        load_pack_file(pack)


def test_importing_one_check_module_first_hides_and_reorders_nothing() -> None:
    """A fresh interpreter that imports rules/packs/us.py before asking sees the same registry."""
    code = "import rules.packs.us; from rules.registry import registry; print(' '.join(registry()))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == list(registry())
