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


# -- fr.telemarketing_hours ---------------------------------------------------------------------------

TM = {"purpose": "telemarketing", "tenant": "acme"}
CONSUMER = "+33612345678"


def hours_alerts(records, inv=None):
    return decisions(run(records, inv), "fr.telemarketing_hours")


def paris_call(local: str, destination: str = CONSUMER, caller: str = CLI, **fields):
    """A call at a Europe/Paris wall-clock time, e.g. '2026-03-30T09:59:59+02:00'."""
    return cdr(caller, destination, at=local, **{**TM, **fields})


def test_hours_edges_on_the_first_weekday_after_the_spring_dst_change():
    # Monday 30 March 2026, the day after Paris moved to UTC+2: each call is alone (its own CLI).
    times = {"09:59:59": True, "10:00:00": False, "13:00:00": False, "13:00:01": True, "13:59:59": True,
             "14:00:00": False, "20:00:00": False, "20:00:01": True}
    for clock, fires in times.items():
        got = hours_alerts([paris_call(f"2026-03-30T{clock}+02:00")])
        assert bool(got) is fires, clock
    # The same wall-clock minutes on the DST day itself (a Sunday) are all outside.
    assert hours_alerts([paris_call("2026-03-29T10:30:00+02:00")])


def test_hours_follow_paris_time_not_utc_across_the_autumn_change():
    # Monday 26 October 2026, Paris is UTC+1 again: 09:30 UTC is 10:30 Paris (inside), 08:30 UTC is 09:30.
    assert not hours_alerts([paris_call("2026-10-26T09:30:00Z")])
    assert hours_alerts([paris_call("2026-10-26T08:30:00Z")])


def test_public_holidays_computed_including_easter_monday_ascension_and_whit_monday():
    for day in ("2026-04-06", "2026-05-14", "2026-05-25", "2026-07-14", "2026-11-11", "2027-03-29"):
        assert hours_alerts([paris_call(f"{day}T11:00:00+02:00")]), day
    assert not hours_alerts([paris_call("2026-05-13T11:00:00+02:00")])  # the Wednesday before Ascension
    alert = hours_alerts([paris_call("2026-05-14T11:00:00+02:00")])[0]
    assert "public holiday" in alert["message"] and CONSUMER not in alert["message"]


def test_overseas_departments_use_their_own_zone():
    reunion = "+262262123456"  # Indian/Reunion, UTC+4: 07:00 UTC is 11:00 there (09:00 in Paris)
    assert not hours_alerts([paris_call("2026-05-12T07:00:00Z", destination=reunion)])
    assert hours_alerts([paris_call("2026-05-12T07:00:00Z", destination=CONSUMER)])
    guadeloupe = "+590590123456"  # UTC-4: 13:30 UTC is 09:30 there (15:30 in Paris)
    assert hours_alerts([paris_call("2026-05-12T13:30:00Z", destination=guadeloupe)])


def test_hours_only_for_telemarketing_to_french_consumers_and_once_per_paris_day():
    assert not hours_alerts([paris_call("2026-05-12T22:00:00+02:00", purpose="service")])
    assert not hours_alerts([paris_call("2026-05-12T22:00:00+02:00", destination="+34912345678")])
    assert not hours_alerts([cdr(CLI, CONSUMER, at="2026-05-12T22:00:00+02:00")])  # no purpose
    two = [paris_call("2026-05-12T21:00:00+02:00"), paris_call("2026-05-12T22:00:00+02:00")]
    assert len(hours_alerts(two)) == 1


def test_purpose_from_the_inventorys_campaigns_when_the_record_has_none():
    inv = inventory_with_campaigns({"spring-promo": "telemarketing", "billing": "service"})
    late = "2026-05-12T22:00:00+02:00"
    assert hours_alerts([cdr(CLI, CONSUMER, at=late, campaign="spring-promo")], inv)
    assert not hours_alerts([cdr(CLI, CONSUMER, at=late, campaign="billing")], inv)
    # The record's own purpose wins over its campaign's.
    assert not hours_alerts([cdr(CLI, CONSUMER, at=late, campaign="spring-promo", purpose="personal")], inv)


def inventory_with_campaigns(campaigns):
    from rules.inventory import inventory_from_rows

    return inventory_from_rows([{"number": CLI, "source": "claimed"}], "test", campaigns=campaigns)


# -- fr.telemarketing_frequency ---------------------------------------------------------------------------

def attempts(days, destination=CONSUMER, tenant="acme", callers=None):
    """One telemarketing attempt at 11:00 Paris on each day offset from Monday 4 May 2026."""
    start = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    return [cdr((callers or [CLI])[i % len(callers or [CLI])], destination, at=start + timedelta(days=d),
                purpose="telemarketing", tenant=tenant) for i, d in enumerate(days)]


def frequency_alerts(records):
    return decisions(run(records), "fr.telemarketing_frequency")


def test_fourth_attempt_in_30_days_is_allowed_the_fifth_alerts():
    assert frequency_alerts(attempts([0, 1, 2, 3])) == []
    got = frequency_alerts(attempts([0, 1, 2, 3, 4]))
    assert [(d["count"], d["call_id"]) for d in got] == [(5, got[0]["call_id"])]
    assert got[0]["tenant"] == "acme" and set(got[0]["scope"]) == {"consumer"}


def test_attempts_counted_per_professional_across_caller_ids():
    other_clis = ["+33184884000", "+33184884001", "+33184884002", "+33184884003", "+33184884004"]
    got = frequency_alerts(attempts([0, 1, 2, 3, 4], callers=other_clis))
    assert len(got) == 1 and got[0]["caller_id"] == "+33184884004"
    # Two professionals calling the same consumer are counted apart.
    mixed = attempts([0, 1, 2], tenant="acme") + attempts([5, 6, 7], tenant="globex")
    assert frequency_alerts(mixed) == []


def test_the_31st_day_the_first_attempt_no_longer_counts():
    # Day 0 then days 27-29: the 5th attempt 30 days after the first is the 4th within 30 days.
    assert frequency_alerts(attempts([0, 27, 28, 29, 30])) == []
    assert len(frequency_alerts(attempts([0, 27, 28, 29, 29.99]))) == 1


def test_the_destination_is_never_in_clear_in_decisions_or_state():
    from rules.cdr import parse_cdr
    from rules.engine import Engine
    from rules.pack import load_packs
    from rules.state import DictState

    engine, store = Engine(load_packs(), hash_key=b"secret"), DictState()
    outcomes = [engine.judge(parse_cdr(r), store) for r in attempts([0, 1, 2, 3, 4])]
    keyed = [key for key in store.subjects if key.startswith("fr.telemarketing_frequency|")]
    assert len(keyed) == 1 and "612345678" not in keyed[0]
    assert "612345678" not in str(store.subjects[keyed[0]].to_dict())
    assert all("612345678" not in d.to_json().decode() for o in outcomes for d in o.decisions)
    # A different key gives a different hash: the hash is keyed.
    other = Engine(load_packs(), hash_key=b"other")
    other_store = DictState()
    for r in attempts([0]):
        other.judge(parse_cdr(r), other_store)
    assert set(other_store.subjects) - {CLI} != set(keyed)


def test_a_consumers_state_expires_30_days_after_the_last_attempt():
    from rules.cdr import parse_cdr
    from rules.engine import Engine
    from rules.pack import load_packs
    from rules.state import DictState

    engine, store = Engine(load_packs()), DictState()
    for r in attempts([0, 1]):
        engine.judge(parse_cdr(r), store)
    key = next(k for k in store.subjects if k.startswith("fr.telemarketing_frequency|"))
    expires = store.subjects[key].expires
    assert expires == datetime(2026, 5, 5, 9, 0, tzinfo=UTC).timestamp() + 30 * 86400
    engine.expire(store, datetime.fromtimestamp(expires - 1, UTC))
    assert key in store.subjects
    engine.expire(store, datetime.fromtimestamp(expires, UTC))
    assert key not in store.subjects


def test_a_duplicate_delivery_is_one_attempt():
    records = attempts([0, 1, 2, 3])
    assert frequency_alerts([*records, dict(records[-1])]) == []


# -- fr.automated_not_npv ---------------------------------------------------------------------------

def automated(caller, **fields):
    return cdr(caller, "+33612345678", at="2026-05-12T09:00:00Z", purpose="automated", **fields)


def test_automated_calls_need_an_npv_number():
    blocked = decisions(run([automated("+33412345678"), automated("+33912345678")]), "fr.automated_not_npv")
    assert [(d["caller_id"], d["scope"]) for d in blocked] == [
        ("+33412345678", {"purpose": "automated"}), ("+33912345678", {"purpose": "automated"})]
    for npv in ("+33162000000", "+33424000000", "+33947512345"):
        assert decisions(run([automated(npv)]), "fr.automated_not_npv") == [], npv
    # Not automated: no block.
    assert decisions(run([cdr("+33412345678", purpose="telemarketing")]), "fr.automated_not_npv") == []


def test_a_french_mobile_on_an_automated_call_is_blocked_even_marked_npv():
    inv = inventory({"number": "+33612000000", "source": "claimed", "npv": True},
                    {"number": "+33412345678", "source": "claimed", "npv": True})
    got = decisions(run([automated("+33612000000"), automated("+33756123456"), automated("+33412345678")], inv),
                    "fr.automated_not_npv")
    assert [d["caller_id"] for d in got] == ["+33612000000", "+33756123456"]
    assert "mobile" in got[0]["message"]


def test_inventory_marking_the_number_npv_lifts_the_block():
    from rules.cdr import parse_cdr
    from rules.engine import Engine
    from rules.pack import load_packs
    from rules.state import DictState

    engine, store = Engine(load_packs()), DictState()
    engine.judge(parse_cdr(automated("+33412345678")), store)
    state = store.get("+33412345678")
    assert engine.stale_blocks(state) == []
    engine.inventory = inventory({"number": "+33412345678", "source": "claimed", "npv": True})
    assert len(engine.stale_blocks(state)) == 1


def test_daily_limit_with_forecast_warns_when_the_pace_reaches_250_before_paris_midnight(tmp_path):
    """fr.daily_limit is a threshold row: `forecast: true` in the user's copy adds the once-a-day warning."""
    import shutil

    from cidwatch.inputs import RawRecord
    from cidwatch.replay import replay
    from rules.engine import Engine
    from rules.pack import PACKS_DIR, load_packs

    folder = tmp_path / "rules"
    shutil.copytree(PACKS_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    text = (folder / "fr.yaml").read_text()
    (folder / "fr.yaml").write_text(text.replace("    measure: calls", "    measure: calls\n    forecast: true", 1))
    # One call a minute from 08:00 Paris: at 08:14, 15 calls in the last hour reach 250 at 23:54 Paris.
    day = series(CLI, datetime(2026, 5, 4, 6, 0, tzinfo=UTC), 300, timedelta(minutes=1))
    engine = Engine(load_packs(folder))
    result = replay([RawRecord("t.jsonl", f"line {i}", r) for i, r in enumerate(day)], engine)
    got = [(d["kind"], d["severity"], d["count"]) for d in decisions(result, "fr.daily_limit")]
    assert got == [("alert", "warning", 15), ("alert", "warning", 200), ("block", "critical", 250),
                   ("unblock", "critical", 250)]
    forecast = decisions(result, "fr.daily_limit")[0]
    assert forecast["forecast_at"] == "2026-05-04T21:54:00Z"
    assert forecast["message"].startswith(f"Caller ID {CLI} will reach 250 calls at about 23:54 Europe/Paris")
    assert "forecast_at" not in decisions(result, "fr.daily_limit")[1]  # the other decisions read as before


def test_an_upgrade_mid_day_keeps_the_days_count():
    """State written before fr.daily_limit became a threshold rule kept the day's calls in `counts`: the
    first call after the upgrade continues that count (the 250th blocks), it does not start again at 1."""
    from rules.cdr import parse_cdr
    from rules.engine import Engine
    from rules.pack import load_packs
    from rules.state import SubjectState

    engine = Engine(load_packs(), None)
    calls = series(CLI, datetime(2026, 1, 14, 9, 0, tzinfo=UTC), 2, timedelta(seconds=30))
    state = SubjectState()
    state.counts["fr.daily_limit|2026-01-14"] = [248.0, datetime(2026, 1, 14, 23, 0, tzinfo=UTC).timestamp()]
    state.counts["cli.used_while_blocked|2026-01-14"] = [1.0, datetime(2026, 1, 15, tzinfo=UTC).timestamp()]
    outcomes = [engine.process(parse_cdr(record), state) for record in calls]
    assert [(d.rule, d.kind, d.count) for d in outcomes[1].decisions] == [("fr.daily_limit", "block", 250)]
    assert "fr.daily_limit|2026-01-14" not in state.counts  # carried over once
    assert "cli.used_while_blocked|2026-01-14" in state.counts  # other rules' counts are theirs
