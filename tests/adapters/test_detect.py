"""`--format auto`: each format is recognised from its first records; anything else is an error."""

from __future__ import annotations

from pathlib import Path

import pytest
from adapter_helpers import FIXTURES, load_cases

from streams.adapters import FORMATS, detect_format
from streams.adapters.detect import KNOWN

CASES = [case for case in load_cases() if "malformed" not in case["input"] and case.get("detectable", True)]
RULES = {
    "asterisk": "asterisk/rules.csv",
    "freeswitch-csv": "freeswitch-csv/rules.csv",
    "freeswitch-json": "freeswitch-json/rules.jsonl",
    "connect-ctr": "connect-ctr/rules.jsonl",
    "twilio": "twilio/rules.json",
    "kamailio-acc": "kamailio-acc/rules.txt",
}


def test_detect_knows_every_registered_format() -> None:
    assert KNOWN == FORMATS == ("asterisk", "freeswitch-csv", "freeswitch-json", "connect-ctr", "twilio",
                                "kamailio-acc")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case["expected"])
def test_golden_inputs_are_recognised(case: dict) -> None:
    assert detect_format(FIXTURES / case["input"]) == case["format"]


@pytest.mark.parametrize(("fmt", "name"), RULES.items())
def test_rule_fixtures_are_recognised(fmt: str, name: str) -> None:
    assert detect_format(FIXTURES / name) == fmt


def test_a_huge_json_document_is_recognised_from_its_head(tmp_path: Path) -> None:
    """mod_json_cdr documents can exceed the head that is read; the keys seen so far decide."""
    path = tmp_path / "big.cdr.json"
    path.write_text('{"core-uuid": "x", "channel_data": {"direction": "inbound"}, "variables": {"pad": "'
                    + "x" * 400_000 + '"}}', encoding="utf-8")
    assert detect_format(path) == "freeswitch-json"


@pytest.mark.parametrize("text", [
    '{"call_id": "c1", "started_at": "2024-03-12T10:00:00Z", "caller_id": "+33123456789"}\n',
    "call_id,started_at,caller_id\nc1,2024-03-12T10:00:00Z,+33123456789\n",
])
def test_canonical_input_is_refused_with_a_pointer_to_the_default(tmp_path: Path, text: str) -> None:
    path = tmp_path / "cdrs.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="canonical CDRs"):
        detect_format(path)


@pytest.mark.parametrize("text", ["", "hello world\n", '{"some": "thing"}\n', "a,b,c\n1,2,3\n", "[]"])
def test_unknown_input_is_a_value_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "unknown.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="cannot recognise"):
        detect_format(path)
