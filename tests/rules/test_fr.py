"""fr.daily_limit (the Paris calendar day, never a UTC day; DST, NPV, de-duplication) and
fr.callback_unanswered (rules/packs/fr.py), on hand-built records."""

from datetime import UTC, datetime, timedelta

from engine_helpers import OWNED, cdr, decisions, inventory, rules_of, run, series

CLI = "+33123456789"


def kinds(result):
    return [(d["kind"], d["count"]) for d in decisions(result, "fr.daily_limit")]


def test_380_calls_in_one_utc_day_split_by_paris_midnight_do_not_alert():
    # Winter: Paris midnight is 23:00 UTC. 190 calls before it and 190 after, all on 14 January UTC.
    before = series(CLI, datetime(2026, 1, 14, 21, 0, tzinfo=UTC), 190, timedelta(seconds=36))
    after = series(CLI, datetime(2026, 1, 14, 23, 0, tzinfo=UTC), 190, timedelta(seconds=18))
    assert all(r["started_at"].startswith("2026-01-14") for r in before + after)
    assert kinds(run(before + after)) == []


def test_250_calls_in_one_paris_day_spanning_utc_midnight_block():
    late = series(CLI, datetime(2026, 1, 14, 23, 0, tzinfo=UTC), 125, timedelta(seconds=28))
    early = series(CLI, datetime(2026, 1, 15, 0, 0, tzinfo=UTC), 125, timedelta(seconds=28))
    result = run(late + early)
    assert kinds(result) == [("alert", 200), ("block", 250)]
    block = decisions(result, "fr.daily_limit")[1]
    assert block["call_id"] == early[-1]["call_id"]
    assert block["until"] == "2026-01-15T23:00:00Z"  # next Paris midnight
    assert block["at"] == early[-1]["started_at"].replace("+00:00", "Z")
    assert block["severity"] == "critical" and block["threshold"] == 250 and block["scope"] == {}


def test_spring_dst_day_is_23_hours():
    # 29 March 2026: Paris day runs from 28 March 23:00 UTC to 29 March 22:00 UTC.
    day = series(CLI, datetime(2026, 3, 28, 23, 0, tzinfo=UTC), 250, timedelta(seconds=330))
    assert day[-1]["started_at"] < "2026-03-29T22:00"
    result = run(day)
    assert kinds(result) == [("alert", 200), ("block", 250)]
    assert decisions(result, "fr.daily_limit")[1]["until"] == "2026-03-29T22:00:00Z"
    # The same spacing starting one hour later spills past 22:00 UTC into 30 March: no block.
    shifted = series(CLI, datetime(2026, 3, 29, 0, 0, tzinfo=UTC), 250, timedelta(seconds=330))
    assert ("block", 250) not in kinds(run(shifted))


def test_autumn_dst_day_is_25_hours():
    # 25 October 2026: Paris day runs from 24 October 22:00 UTC to 25 October 23:00 UTC.
    day = series(CLI, datetime(2026, 10, 24, 22, 0, tzinfo=UTC), 250, timedelta(seconds=359))
    assert day[-1]["started_at"] > "2026-10-25T22:00"
    result = run(day)
    assert kinds(result) == [("alert", 200), ("block", 250)]
    assert decisions(result, "fr.daily_limit")[1]["until"] == "2026-10-25T23:00:00Z"


def test_unblock_at_until_by_event_time_before_the_next_days_block():
    day1 = series(CLI, datetime(2026, 5, 4, 6, 0, tzinfo=UTC), 250)
    day2 = series(CLI, datetime(2026, 5, 5, 6, 0, tzinfo=UTC), 250)
    result = run(day1 + day2)
    got = [(d["kind"], d["at"]) for d in decisions(result, "fr.daily_limit")]
    assert got[2] == ("unblock", "2026-05-04T22:00:00Z")  # event time of day 2's first call lifts it
    assert [k for k, _ in got] == ["alert", "block", "unblock", "alert", "block"]
    unblock = decisions(result, "fr.daily_limit")[2]
    assert unblock["call_id"] is None and unblock["until"] == "2026-05-04T22:00:00Z"


def test_wall_clock_lifts_a_block_at_the_end_of_replay():
    day = series(CLI, datetime(2026, 5, 4, 6, 0, tzinfo=UTC), 250)
    assert [k for k, _ in kinds(run(day, now=datetime(2026, 5, 4, 21, 0, tzinfo=UTC)))] == ["alert", "block"]
    lifted = run(day, now=datetime(2026, 5, 4, 22, 0, tzinfo=UTC))
    assert decisions(lifted, "fr.daily_limit")[-1]["kind"] == "unblock"
    assert decisions(lifted, "fr.daily_limit")[-1]["at"] == "2026-05-04T22:00:00Z"


def test_npv_ranges_are_not_limited():
    for npv in ("+33162000000", "+33270123456", "+33948123456", "+33947512345", "+33947912345"):
        assert kinds(run(series(npv, datetime(2026, 5, 4, 6, 0, tzinfo=UTC), 260))) == [], npv
    # 0946 is not in the overseas NPV range 09475-09479.
    assert kinds(run(series("+33946123456", datetime(2026, 5, 4, 6, 0, tzinfo=UTC), 250)))[-1] == ("block", 250)


def test_inventory_npv_overrides_the_range_check():
    start = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)
    inv = inventory({"number": CLI, "source": "claimed", "npv": True},
                    {"number": "+33162000000", "source": "claimed", "npv": False})
    assert kinds(run(series(CLI, start, 260), inv)) == []
    assert kinds(run(series("+33162000000", start, 250), inv))[-1] == ("block", 250)


def test_duplicate_call_ids_never_count_twice():
    calls = series(CLI, datetime(2026, 5, 4, 6, 0, tzinfo=UTC), 240)
    redelivered = [dict(r, started_at=r["started_at"]) for r in calls[:20]]
    result = run(calls + redelivered)
    assert kinds(result) == [("alert", 200)]
    assert result.counts["duplicates"] == 20


def test_separators_make_one_caller_id():
    start = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)
    spaced = series("+33 1 23 45 67 89", start, 125)
    dotted = series("+33.1.23.45.67.89", start + timedelta(hours=2), 60)
    plain = series("+33123456789", start + timedelta(hours=3), 65)
    result = run(spaced + dotted + plain)
    assert kinds(result) == [("alert", 200), ("block", 250)]
    assert {d["caller_id"] for d in decisions(result)} == {CLI}


def test_thresholds_come_from_the_pack(tmp_path):
    from cidwatch.inputs import RawRecord
    from cidwatch.replay import replay
    from rules.engine import Engine
    from rules.pack import PACKS_DIR, load_packs

    for source in PACKS_DIR.glob("*.yaml"):
        text = source.read_text()
        if source.name == "fr.yaml":
            text = text.replace("at: 200", "at: 5").replace("at: 250", "at: 8").replace(
                "timezone: Europe/Paris\n    source: >-\n      Callr", "timezone: UTC\n    source: >-\n      Callr")
        (tmp_path / source.name).write_text(text)
    records = series(CLI, datetime(2026, 1, 14, 22, 50, tzinfo=UTC), 12, timedelta(minutes=1))
    raw = [RawRecord("t", f"line {i}", r) for i, r in enumerate(records)]
    result = replay(raw, Engine(load_packs(tmp_path)), now=datetime(2000, 1, 1, tzinfo=UTC))
    assert [(d.rule, d.kind, d.count) for d in result.decisions] == [
        ("fr.daily_limit", "alert", 5), ("fr.daily_limit", "block", 8),
        ("cli.used_while_blocked", "alert", 1)]  # calls 9 to 12 went out while blocked
    assert result.decisions[1].until == datetime(2026, 1, 15, tzinfo=UTC)  # a UTC day, as configured


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
