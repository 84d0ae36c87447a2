"""The engine's policies that no one rule owns: inventory clauses skipped without an inventory,
direction routing, deterministic decision ids, the de-duplication window. Each rule's own tests are
tests/rules/test_PREFIX.py."""

from datetime import UTC, datetime

from engine_helpers import OWNED, cdr, decisions, rules_of, run


def test_without_inventory_the_inventory_clauses_are_skipped():
    records = [cdr("+12125550199", "+61291234567"), cdr("+13125550100", "+14155550100"),
               cdr("+33612345678", "+33184884000", direction="inbound")]
    assert rules_of(run(records)) == []


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


def test_a_call_id_is_remembered_for_the_dedup_window_of_event_time():
    from cidwatch.inputs import RawRecord
    from cidwatch.replay import replay
    from rules.engine import Engine
    from rules.pack import load_packs

    first = cdr("anonymous", at="2026-05-04T10:00:00Z", call_id="same")
    again = dict(first, started_at="2026-05-05T09:00:00Z")  # 23 h later: still a re-delivery
    late = dict(first, started_at="2026-05-06T11:00:00Z")  # 49 h later: forgotten, a call of its own
    raw = [RawRecord("t", f"line {i}", r) for i, r in enumerate([first, again, late])]
    result = replay(raw, Engine(load_packs(), dedup_seconds=48 * 3600), now=datetime(2000, 1, 1, tzinfo=UTC))
    assert result.counts["duplicates"] == 1
    assert [d.at.date().isoformat() for d in result.decisions] == ["2026-05-04", "2026-05-06"]
