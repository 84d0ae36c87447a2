"""The cli.* rules (rules/packs/cli.py), on hand-built records."""

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
    # (each later day's call presents the blocked CLI: cli.used_while_blocked alerts once a day)
    later = [("cli.used_while_blocked", "alert")] * 4
    assert rules_of(run(records, OWNED)) == [("cli.not_authorized", "block"), *later]


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


# --- cli.used_while_blocked ---------------------------------------------------------------------------


def test_cli_used_while_blocked_counts_calls_after_the_block_not_the_one_that_made_it():
    start = datetime(2026, 5, 4, 10, tzinfo=UTC)
    records = [cdr("+448701234567", "+442071838750", at=start + timedelta(minutes=i)) for i in range(4)]
    result = run(records)
    assert rules_of(result) == [("uk.cli_not_permitted", "block"), ("cli.used_while_blocked", "alert")]
    block, alert = decisions(result)
    assert alert["call_id"] == records[1]["call_id"] and alert["severity"] == "critical"
    assert alert["until"] == "2026-05-05T00:00:00Z" and alert["count"] == 1
    assert alert["message"] == (
        f"Caller ID +448701234567 was presented on 1 call(s) on 2026-05-04 while blocked by uk.cli_not_permitted "
        f"since 2026-05-04T10:00:00Z (block {block['id']}); the dialer is not honouring the block.")


def test_cli_used_while_blocked_honours_the_blocks_scope():
    """A toll-free CLI blocked on calls to Australia may still call France; a second call to Australia is
    counted; the call that made the block is not."""
    start = datetime(2026, 5, 4, 10, tzinfo=UTC)
    records = [cdr("+18445550111", "+61291234567", at=start),
               cdr("+18445550111", "+33140000001", at=start + timedelta(minutes=1)),
               cdr("+18445550111", "+61291234567", at=start + timedelta(minutes=2))]
    result = run(records)
    found = [(d["rule"], d["kind"], d["call_id"]) for d in decisions(result)
             if d["rule"] in ("au.cli_not_permitted", "cli.used_while_blocked")]
    assert found == [("au.cli_not_permitted", "block", records[0]["call_id"]),
                     ("cli.used_while_blocked", "alert", records[2]["call_id"])]


def test_cli_used_while_blocked_reads_a_purpose_scope():
    """A French non-NPV CLI blocked for automated calls may still place personal calls; its next automated
    call is counted; a call of no known purpose is counted too (a block is never read narrower)."""
    start = datetime(2026, 5, 4, 10, tzinfo=UTC)
    cli, dest = "+33412345678", "+33140000001"
    records = [cdr(cli, dest, at=start, purpose="automated"),
               cdr(cli, dest, at=start + timedelta(minutes=1), purpose="personal"),
               cdr(cli, dest, at=start + timedelta(minutes=2), purpose="automated")]
    found = [(d["rule"], d["kind"], d["call_id"]) for d in decisions(run(records))]
    assert found == [("fr.automated_not_npv", "block", records[0]["call_id"]),
                     ("cli.used_while_blocked", "alert", records[2]["call_id"])]
    unknown = [records[0], cdr(cli, dest, at=start + timedelta(minutes=1))]
    assert ("cli.used_while_blocked", "alert") in rules_of(run(unknown))


def test_cli_used_while_blocked_ignores_calls_before_the_block_and_after_its_end():
    """Records judged out of order (as a stream may see them): a call that started before the block was
    decided is not counted; a call after a time-boxed block's `until` (the next Paris day) is not either."""
    from rules.cdr import parse_cdr
    from rules.engine import Engine
    from rules.pack import load_packs
    from rules.state import DictState

    cli = "+33184884000"  # French, not NPV: blocked at its 250th call of the Paris day
    start = datetime(2026, 5, 4, 6, tzinfo=UTC)
    day = [cdr(cli, "+33612345678", at=start + timedelta(seconds=30 * i)) for i in range(250)]
    late = cdr(cli, "+33612345678", at=start - timedelta(minutes=5))  # judged after the block, started before
    next_day = cdr(cli, "+33612345678", at="2026-05-05T06:00:00Z")
    engine, store = Engine(load_packs()), DictState()
    made = [(d.rule, d.kind) for record in [*day, late, next_day]
            for d in engine.judge(parse_cdr(record), store).decisions]
    assert ("fr.daily_limit", "block") in made and ("fr.daily_limit", "unblock") in made
    assert ("cli.used_while_blocked", "alert") not in made
    # the control: the same day's call after the block, judged in order, is counted
    control = Engine(load_packs()), DictState()
    made = [(d.rule, d.kind) for record in [*day, cdr(cli, "+33612345678", at=start + timedelta(hours=3))]
            for d in control[0].judge(parse_cdr(record), control[1]).decisions]
    assert ("cli.used_while_blocked", "alert") in made


def test_cli_used_while_blocked_is_counted_per_cli_in_its_window():
    """Once per window, and the count goes on: the next window's alert is a new one."""
    start = datetime(2026, 5, 4, 10, tzinfo=UTC)
    records = [cdr("+448701234567", "+442071838750", at=start + timedelta(hours=6 * i)) for i in range(6)]
    alerts = decisions(run(records), "cli.used_while_blocked")
    assert [(a["at"], a["count"]) for a in alerts] == [("2026-05-04T16:00:00Z", 1), ("2026-05-05T04:00:00Z", 1)]
