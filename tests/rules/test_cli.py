"""cli.invalid and cli.not_authorized (rules/packs/cli.py), on hand-built records."""

from datetime import UTC, datetime, timedelta

import pytest
from engine_helpers import OWNED, cdr, decisions, rules_of, run


@pytest.mark.parametrize("cli", ["0207 183 8750", "anonymous", "+447700900123", "", "+4402071838750",
                                 "+1-800-FLOWERS", "33123456789"])
def test_cli_invalid(cli):
    result = run([cdr(cli, "+18885550199")])
    assert rules_of(result) == [("cli.invalid", "alert")]
    decision = decisions(result)[0]
    assert decision["caller_id"] == cli and decision["severity"] == "warning" and decision["scope"] == {}


def test_cli_invalid_fires_once_per_utc_day_and_no_other_rule_looks():
    records = [cdr("+4402071838750", "+18885550199", at="2026-05-04T01:00:00Z"),
               cdr("+4402071838750", "+18885550199", at="2026-05-04T23:00:00Z"),
               cdr("+4402071838750", "+18885550199", at="2026-05-05T00:10:00Z")]
    result = run(records, OWNED)
    assert rules_of(result) == [("cli.invalid", "alert"), ("cli.invalid", "alert")]
    assert [d["until"] for d in decisions(result)] == ["2026-05-05T00:00:00Z", "2026-05-06T00:00:00Z"]


def test_separators_in_an_otherwise_valid_cli_are_fine():
    assert rules_of(run([cdr("+1 (312) 555-0188", "+13125550100")], OWNED)) == []


def test_cli_not_authorized_unlisted_pending_and_other_tenant():
    records = [cdr("+12125550199", "+13125550100", tenant="acme"),     # unlisted
               cdr("+442012345678", "+442071838750"),                   # byoc_pending
               cdr("+33184884000", "+33612345678", tenant="globex"),   # another tenant's number
               cdr("+33184884000", "+33612345678", tenant="acme"),     # fine
               cdr("+33184884000", "+33612345678")]                    # CDR names no tenant: fine
    result = run(records, OWNED)
    blocks = decisions(result, "cli.not_authorized")
    assert [(d["caller_id"], d["tenant"]) for d in blocks] == [
        ("+12125550199", "acme"), ("+442012345678", None), ("+33184884000", "globex")]
    assert all(d["kind"] == "block" and d["until"] is None and d["severity"] == "critical" for d in blocks)


def test_standing_blocks_are_emitted_once():
    records = [cdr("+12125550199", "+13125550100", at=datetime(2026, 5, 4, tzinfo=UTC) + timedelta(days=i))
               for i in range(5)]
    assert rules_of(run(records, OWNED)) == [("cli.not_authorized", "block")]


def test_cli_same_as_destination_fires_once_per_utc_day():
    records = [cdr("+33184884000", "+33184884000", at="2026-05-04T01:00:00Z"),
               cdr("+33184884000", "+33184884000", at="2026-05-04T23:00:00Z"),
               cdr("+33184884000", "+33184884000", at="2026-05-05T00:10:00Z")]
    result = run(records, OWNED)
    assert rules_of(result) == [("cli.same_as_destination", "alert"), ("cli.same_as_destination", "alert")]
    decision = decisions(result)[0]
    assert decision["caller_id"] == "+33184884000" and decision["severity"] == "warning" and decision["scope"] == {}
    assert [d["until"] for d in decisions(result)] == ["2026-05-05T00:00:00Z", "2026-05-06T00:00:00Z"]


def test_cli_same_as_destination_not_for_different_numbers():
    # Numbers that share their last digits, or all but one digit, with the caller ID are other numbers.
    for destination in ("+33284884000", "+33184884001", "+12125550143", "+4418488400", "84884000", ""):
        assert rules_of(run([cdr("+33184884000", destination)], OWNED)) == [], destination


def test_cli_same_as_destination_compares_normalised_numbers():
    for cli, destination in (("+33 1 84 88 40 00", "+33184884000"), ("+33184884000", "+33 (1) 84-88-40.00"),
                             ("+1 312 555 0188", "+1 (312) 555-0188")):
        result = run([cdr(cli, destination)])
        assert rules_of(result) == [("cli.same_as_destination", "alert")], (cli, destination)
        assert decisions(result)[0]["caller_id"] == cli.replace(" ", "")
    national = [cdr("+61291234568", "02 9123 4568")]  # written nationally: read in the default region
    assert rules_of(run(national, OWNED, default_region="AU")) == [("cli.same_as_destination", "alert")]
    assert rules_of(run(national, OWNED)) == []  # no region to read it in: not a number, not compared


def test_cli_same_as_destination_not_for_invalid_clis():
    for cli in ("+4402071838750", "0207 183 8750", "anonymous"):
        assert rules_of(run([cdr(cli, cli)])) == [("cli.invalid", "alert")], cli


def test_cli_same_as_destination_parses_only_a_destination_that_can_be_the_cli():
    from rules.cdr import parse_cdr
    from rules.engine import Engine
    from rules.pack import load_packs
    from rules.state import SubjectState

    engine = Engine(load_packs())
    for destination in ("+33612345678", "+33 6 12 34 56 78", "+33284884000"):
        outcome = engine.process(parse_cdr(cdr("+33184884000", destination)), SubjectState())
        assert outcome.decisions == [] and outcome.destination is None, destination  # never parsed
    outcome = engine.process(parse_cdr(cdr("+33184884000", "+33 1 84 88 40 00")), SubjectState())
    assert outcome.destination is not None and outcome.destination.e164 == "+33184884000"
