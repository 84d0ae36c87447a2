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
