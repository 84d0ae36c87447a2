"""Golden files: every fixture in cases.yaml converts to exactly its expected outcomes.

The inputs are shaped like the real records in fixtures/adapters/samples/ (and include those samples);
the expected files list one SourceItem per source record: the canonical record, a reject or a skip.
"""

from __future__ import annotations

import json

import pytest
from adapter_helpers import FIXTURES, assert_canonical, case_profile, load_cases, read_expected

from streams.adapters import FORMATS, convert_raw, read_source

CASES = load_cases()


def case_id(case: dict) -> str:
    return case["expected"].removesuffix(".expected.jsonl")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_golden_case(case: dict) -> None:
    path = FIXTURES / case["input"]
    profile = case_profile(case)
    if case.get("stream"):
        items = convert_raw(case["format"], path.read_bytes(), profile)
    else:
        items = list(read_source(path, case["format"], profile))
    assert [item.to_dict() for item in items] == read_expected(FIXTURES / case["expected"])


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_every_converted_record_passes_the_canonical_contract(case: dict) -> None:
    items = list(read_source(FIXTURES / case["input"], case["format"], case_profile(case)))
    for item in items:
        assert sum(value is not None for value in (item.record, item.reject, item.skip)) == 1, item
        if item.record is not None:
            assert_canonical(item)
            json.dumps(item.record)  # JSON-ready


def test_every_format_has_golden_and_malformed_cases() -> None:
    for fmt in FORMATS:
        inputs = [case["input"] for case in CASES if case["format"] == fmt]
        assert any("malformed" in name for name in inputs), fmt
        assert any("malformed" not in name and not name.startswith("samples/") for name in inputs), fmt


def test_every_expected_file_belongs_to_a_case() -> None:
    """A stale expected file (its case removed) would be dead weight that looks like coverage."""
    listed = {case["expected"] for case in CASES}
    on_disk = {str(path.relative_to(FIXTURES)) for path in FIXTURES.rglob("*.expected.jsonl")}
    assert on_disk == listed


def test_malformed_fixtures_reject_with_locations() -> None:
    """Each malformed file has rejects naming the field, and its last (good) record still converts."""
    for case in CASES:
        if "malformed" not in case["input"]:
            continue
        expected = read_expected(FIXTURES / case["expected"])
        assert sum(item["reject"] is not None for item in expected) >= 4, case["input"]
        assert expected[-1]["record"] is not None, case["input"]
        assert all(item["location"].startswith(("line ", "record ")) for item in expected)
