"""Every rule and clause other than fr.daily_limit, on hand-built records."""

from datetime import UTC, datetime, timedelta

import pytest
from engine_helpers import cdr, decisions, inventory, run

OWNED = inventory(
    {"number": "+33184884000", "source": "claimed", "tenant": "acme"},
    {"number": "+12125550143", "source": "claimed", "tenant": "acme"},
    {"number": "+13125550188", "source": "claimed", "cnam": "ACME"},
    {"number": "+61291234567", "source": "byoc_verified"},
    {"number": "+61291234568", "source": "ported"},
    {"number": "+18005550100", "source": "claimed"},
    {"number": "+442012345678", "source": "byoc_pending"},
)


def rules_of(result):
    return [(d["rule"], d["kind"]) for d in decisions(result)]


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


def test_without_inventory_the_inventory_clauses_are_skipped():
    records = [cdr("+12125550199", "+61291234567"), cdr("+13125550100", "+14155550100"),
               cdr("+33612345678", "+33184884000", direction="inbound")]
    assert rules_of(run(records)) == []


def test_us_tollfree_to_tollfree():
    result = run([cdr("+1 800 555 0100", "+18885550199"), cdr("+18005550100", "+18335550100")])
    assert rules_of(result) == [("us.tollfree_to_tollfree", "block")]
    assert decisions(result)[0]["scope"] == {"destination_type": "toll_free"}
    assert rules_of(run([cdr("+12125550143", "+18885550199"), cdr("+18005550100", "+12125550143")])) == []


def test_tollfree_international():
    result = run([cdr("+18005550100", "+33612345678")])
    assert rules_of(result) == [("tollfree.international", "alert")]
    assert rules_of(run([cdr("+18005550100", "+14165550100")])) == []  # Canada shares +1
    assert rules_of(run([cdr("+33805123456", "+33612345678")])) == []  # French freephone, national call


def test_au_receive_only_cli_any_destination():
    for cli in ("+61131234", "+611300123456", "+611800123456", "+611900123456"):
        result = run([cdr(cli, "+33612345678")], OWNED)
        assert ("au.cli_not_permitted", "block") in rules_of(result), cli
        assert decisions(result, "au.cli_not_permitted")[0]["scope"] == {}


def test_au_destination_clause():
    result = run([cdr("+18005550100", "+61291234567")])  # toll-free CLI to Australia, no inventory needed
    assert decisions(result, "au.cli_not_permitted")[0]["scope"] == {"destination_country": "AU"}
    byoc = run([cdr("+61291234567", "+61412345678")], OWNED)  # verified but not claimed/ported
    assert rules_of(byoc) == [("au.cli_not_permitted", "block")]
    assert rules_of(run([cdr("+61291234568", "+61412345678")], OWNED)) == []  # ported: fine
    assert rules_of(run([cdr("+61291234567", "+61412345678")])) == []  # no inventory: clause skipped


def test_au_national_destination_with_default_region():
    result = run([cdr("+18005550100", "02 9123 4567")], default_region="AU")
    assert ("au.cli_not_permitted", "block") in rules_of(result)
    assert rules_of(run([cdr("+18005550100", "02 9123 4567")])) == []  # unclassified without a region
    assert run([cdr("+18005550100", "02 9123 4567")]).counts["unclassified_destinations"] == 1


@pytest.mark.parametrize(("cli", "fires"), [("+449091234567", True), ("+448701234567", True),
                                            ("+448711234567", True), ("+448731234567", True),
                                            ("+448451234567", False), ("+442071838750", False)])
def test_uk_cli_not_permitted(cli, fires):
    assert (("uk.cli_not_permitted", "block") in rules_of(run([cdr(cli, "+442071838750")]))) is fires


def test_fr_callback_unanswered():
    inbound = dict(direction="inbound", answered=False, tenant="acme")
    result = run([cdr("+33612345678", "+33 1 84 88 40 00", **inbound)], OWNED)
    assert rules_of(result) == [("fr.callback_unanswered", "alert")]
    assert decisions(result)[0]["caller_id"] == "+33184884000"
    assert rules_of(run([cdr("+33612345678", "+33184884000", direction="inbound", answered=True)], OWNED)) == []
    assert rules_of(run([cdr("+33612345678", "+33184884001", **inbound)], OWNED)) == []  # not ours


def test_fr_callback_window_is_the_paris_day():
    inbound = dict(direction="inbound")
    records = [cdr("+33612345678", "+33184884000", at="2026-01-14T22:30:00Z", **inbound),
               cdr("+33612345679", "+33184884000", at="2026-01-14T23:30:00Z", **inbound)]  # next Paris day
    assert len(decisions(run(records, OWNED))) == 2


def test_us_cnam_missing():
    assert rules_of(run([cdr("+12125550143", "+13125550100", tenant="acme")], OWNED)) == [
        ("us.cnam_missing", "alert")]
    assert decisions(run([cdr("+12125550143", "+13125550100", tenant="acme")], OWNED))[0]["severity"] == "info"
    assert rules_of(run([cdr("+13125550188", "+13125550100")], OWNED)) == []  # has a CNAM
    assert rules_of(run([cdr("+18005550100", "+13125550100")], OWNED)) == []  # toll-free


def test_inbound_and_internal_never_trigger_outbound_rules():
    records = [cdr("anonymous", "+18885550199", direction="inbound"),
               cdr("+18005550100", "+18885550199", direction="inbound"),
               cdr("+448701234567", "+33612345678", direction="internal"),
               cdr("1001", "1002", direction="internal")]
    result = run(records, OWNED)
    assert rules_of(result) == []
    assert result.counts["inbound"] == 2 and result.counts["internal"] == 2


def test_decision_ids_are_deterministic_and_distinct():
    records = [cdr("anonymous", at="2026-05-04T01:00:00Z"), cdr("+448701234567", at="2026-05-04T02:00:00Z"),
               cdr("anonymous", at="2026-05-05T01:00:00Z")]
    first = [d["id"] for d in decisions(run(records))]
    again = [d["id"] for d in decisions(run([dict(r, call_id=r["call_id"] + "x") for r in records]))]
    assert first == again  # ids depend on what is decided, not on record bookkeeping
    assert len(set(first)) == 3


def robocalls(cli: str, start: datetime, n: int, step_s: int = 20) -> list[dict]:
    out = []
    for i in range(n):
        answered = i % 10 == 0
        out.append(cdr(cli, f"+1312555{i:04d}", at=start + timedelta(seconds=step_s * i), answered=answered,
                       duration_s=3 if answered else 0, sip_code=200 if answered else (608 if i % 4 else 480),
                       attestation="C"))
    return out


def test_spam_label_risk_warns_then_pages_once_per_utc_day():
    start = datetime(2026, 6, 1, 20, 0, tzinfo=UTC)
    result = run(robocalls("+13125550177", start, 300))
    alerts = decisions(result, "spam.label_risk")
    assert [(d["kind"], d["severity"], d["threshold"]) for d in alerts] == [
        ("alert", "warning", 70), ("alert", "critical", 85)]
    assert all(d["scope"] == {} and d["until"] == "2026-06-02T00:00:00Z" for d in alerts)
    assert "volume" in alerts[1]["message"] and "/100" in alerts[1]["message"]
    assert alerts[0]["at"] < alerts[1]["at"] and 0 < alerts[0]["count"] < alerts[1]["count"]  # calls in 24 h
    # Still robocalling after UTC midnight: a new day, new alerts (once per day per severity).
    next_day = run(robocalls("+13125550177", start, 300) + robocalls("+13125550177", start + timedelta(hours=5), 50))
    assert [d["severity"] for d in decisions(next_day, "spam.label_risk")] == ["warning", "critical", "warning",
                                                                              "critical"]


def test_spam_label_risk_leaves_a_normal_agent_alone():
    start = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    agent = [cdr("+13125550188", f"+1415555{i:04d}", at=start + timedelta(minutes=8 * i), answered=i % 2 == 0,
                 duration_s=180 if i % 2 == 0 else 0, sip_code=200 if i % 2 == 0 else 486, attestation="A")
             for i in range(70)]
    assert decisions(run(agent), "spam.label_risk") == []
