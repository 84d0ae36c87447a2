"""The threshold rule kind declared in a pack row (rules/threshold.py, rules/tally.py): each measure, key,
window, hysteresis, `active` and `forecast` on plain lists of records, no broker (the engine is a pure
function of records and state); the row's validation; state that stays bounded."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from rules.cdr import parse_cdr
from rules.engine import Engine
from rules.pack import PackError, RulePack, load_pack_file
from rules.state import DictState, SubjectState
from rules.tally import Tally
from rules.threshold import count_call, explain

ROOT = Path(__file__).resolve().parents[1]
CLI = "+33184884000"
OTHER = "+33184884001"
T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)  # a Monday
_ids = count(1)


def rule_pack(tmp_path: Path, body: str) -> RulePack:
    """A pack of one declared rule `t.rule` (its fields after `kind: threshold`)."""
    text = ("rules:\n  - id: t.rule\n    description: a test rule\n    kind: threshold\n    source: tests\n"
            + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n")
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    rules = load_pack_file(path)
    return RulePack({rule.id: rule for rule in rules})


def call(at: datetime, caller: str = CLI, destination: str = "+33612345678", **fields: Any) -> dict[str, Any]:
    return {"call_id": f"t{next(_ids)}", "started_at": at.isoformat(), "caller_id": caller,
            "destination": destination, **fields}


def run(pack: RulePack, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The decisions of `t.rule` on `records` (in order), as dicts."""
    engine, store = Engine(pack, hash_key=b"k"), DictState()
    out = []
    for record in records:
        out += [d.to_dict() for d in engine.judge(parse_cdr(record), store).decisions if d.rule == "t.rule"]
    return out


def kinds(decisions: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["kind"], d["severity"]) for d in decisions]


def every(n: int, step: timedelta, start: datetime = T0, **fields: Any) -> list[dict[str, Any]]:
    return [call(start + i * step, **fields) for i in range(n)]


# -- measures --------------------------------------------------------------------------------------------


def test_calls_in_a_sliding_minute(tmp_path: Path) -> None:
    pack = rule_pack(tmp_path, """
        measure: calls
        window: {sliding: 60s}
        thresholds: [{at: 5, kind: alert, severity: warning}]
    """)
    assert kinds(run(pack, every(4, timedelta(seconds=10)))) == []
    fired = run(pack, every(5, timedelta(seconds=10)))
    assert kinds(fired) == [("alert", "warning")]
    assert fired[0]["count"] == 5 and fired[0]["threshold"] == 5 and fired[0]["until"] is None
    # Five calls 20 s apart span 80 s: never five in any minute.
    assert run(pack, every(5, timedelta(seconds=20))) == []


@pytest.mark.parametrize(("measure", "extra", "records", "expected"), [
    ("answered", "", [{"answered": True}] * 3 + [{}], 3),
    ("short_calls", "short_under: 10s", [{"answered": True, "duration_s": 4}] * 2
     + [{"answered": True, "duration_s": 40}, {"answered": False, "duration_s": 0}], 2),
    ("rejections", "", [{"sip_code": 603}, {"sip_code": 607}, {"sip_code": 486}, {"sip_code": 608}], 3),
    ("rejections", "codes: [486]", [{"sip_code": 603}, {"sip_code": 486}], 1),
])
def test_count_measures(tmp_path: Path, measure: str, extra: str, records: list[dict[str, Any]],
                        expected: int) -> None:
    pack = rule_pack(tmp_path, f"""
        measure: {measure}
        {extra}
        window: {{sliding: 1h}}
        thresholds: [{{at: {expected}, kind: alert, severity: warning}}]
    """)
    calls = [call(T0 + timedelta(seconds=i), **fields) for i, fields in enumerate(records)]
    assert [d["count"] for d in run(pack, calls)] == [expected]
    over = rule_pack(tmp_path, f"""
        measure: {measure}
        {extra}
        window: {{sliding: 1h}}
        thresholds: [{{at: {expected + 1}, kind: alert, severity: warning}}]
    """)
    assert run(over, calls) == []


def test_distinct_destinations_count_each_number_once_and_hold_only_hashes(tmp_path: Path) -> None:
    pack = rule_pack(tmp_path, """
        measure: distinct_destinations
        window: {sliding: 10m}
        thresholds: [{at: 3, kind: alert, severity: warning}]
    """)
    same = [call(T0 + timedelta(seconds=i), destination="+33612345678") for i in range(10)]
    assert run(pack, same) == []
    spread = [call(T0 + timedelta(seconds=i), destination=f"+3361234567{i}") for i in range(3)]
    assert [d["count"] for d in run(pack, spread)] == [3]
    engine, store = Engine(pack, hash_key=b"k"), DictState()
    for record in spread:
        engine.judge(parse_cdr(record), store)
    assert "+3361234567" not in repr(store.subjects[CLI].to_dict())


def test_answer_rate_below_needs_min_calls(tmp_path: Path) -> None:
    pack = rule_pack(tmp_path, """
        measure: answer_rate
        direction: below
        min_calls: 20
        window: {sliding: 1h}
        thresholds: [{at: 15, kind: alert, severity: warning}]
    """)
    unanswered = every(19, timedelta(seconds=30))
    assert run(pack, unanswered) == []  # 0 % but only 19 calls
    fired = run(pack, every(20, timedelta(seconds=30)))
    assert kinds(fired) == [("alert", "warning")] and fired[0]["count"] == 20
    assert "answer rate of 0.0 % over 20 calls" in fired[0]["message"]
    # 4 answered in 20 (20 %) is not below 15 %.
    mixed = [call(T0 + timedelta(seconds=30 * i), answered=i % 5 == 0) for i in range(20)]
    assert run(pack, mixed) == []


def test_average_talk_time_over_answered_calls(tmp_path: Path) -> None:
    pack = rule_pack(tmp_path, """
        measure: avg_talk_s
        direction: below
        min_calls: 3
        window: {sliding: 1h}
        thresholds: [{at: 10, kind: alert, severity: warning}]
    """)
    calls = [call(T0 + timedelta(seconds=i), answered=True, duration_s=d) for i, d in enumerate((5, 8, 12))]
    assert kinds(run(pack, calls)) == [("alert", "warning")]  # (5 + 8 + 12) / 3 = 8.3 s
    unanswered_between = [calls[0], call(T0, answered=False), calls[1], call(T0, answered=False)]
    assert run(pack, unanswered_between) == []  # two answered calls only: below min_calls


def test_short_call_share_of_answered_calls(tmp_path: Path) -> None:
    pack = rule_pack(tmp_path, """
        measure: short_calls
        share: true
        short_under: 6s
        min_calls: 10
        window: {sliding: 1h}
        thresholds: [{at: 40, kind: alert, severity: warning}]
    """)
    calls = [call(T0 + timedelta(seconds=i), answered=True, duration_s=3 if i < 4 else 60) for i in range(10)]
    assert [d["count"] for d in run(pack, calls)] == [10]  # 4 of 10 answered calls: 40 %
    calls[0]["duration_s"] = 60
    assert run(pack, calls) == []


def test_sequential_calls_to_one_destination_reset_on_another(tmp_path: Path) -> None:
    pack = rule_pack(tmp_path, """
        measure: sequential_same_destination
        window: {sliding: 10m}
        thresholds: [{at: 5, kind: alert, severity: warning}]
    """)
    broken = [*every(4, timedelta(seconds=5)), call(T0 + timedelta(seconds=21), destination="+33699999999"),
              *every(4, timedelta(seconds=5), start=T0 + timedelta(seconds=30))]
    assert run(pack, broken) == []
    assert [d["count"] for d in run(pack, every(5, timedelta(seconds=5)))] == [5]
    # Five in a row, but over more than 10 minutes: the window holds four of them.
    assert run(pack, every(5, timedelta(minutes=3))) == []


# -- keys ------------------------------------------------------------------------------------------------


def test_key_cli_counts_each_caller_id_apart(tmp_path: Path) -> None:
    pack = rule_pack(tmp_path, """
        measure: calls
        window: {sliding: 60s}
        thresholds: [{at: 4, kind: alert, severity: warning}]
    """)
    interleaved = [call(T0 + timedelta(seconds=i), caller=CLI if i % 2 else OTHER) for i in range(6)]
    assert run(pack, interleaved) == []


def test_key_cli_and_destination_country_scopes_the_decision(tmp_path: Path) -> None:
    pack = rule_pack(tmp_path, """
        measure: calls
        key: cli+destination_country
        window: {sliding: 60s}
        thresholds: [{at: 3, kind: block, severity: critical}]
        hysteresis: {for: 10m}
    """)
    records = [call(T0 + timedelta(seconds=i), destination=number)
               for i, number in enumerate(["+33612345678", "+12125550143", "+33612345679", "+33612345670"])]
    blocks = run(pack, records)
    assert kinds(blocks) == [("block", "critical")]
    assert blocks[0]["scope"] == {"destination_country": "FR"} and blocks[0]["count"] == 3
    assert blocks[0]["until"] == "2026-05-04T08:10:03Z"


@pytest.mark.parametrize("key", ["tenant", "campaign"])
def test_keys_tenant_and_campaign_count_across_caller_ids(tmp_path: Path, key: str) -> None:
    pack = rule_pack(tmp_path, f"""
        measure: calls
        key: {key}
        window: {{sliding: 60s}}
        thresholds: [{{at: 4, kind: alert, severity: warning}}]
    """)
    records = [call(T0 + timedelta(seconds=i), caller=CLI if i % 2 else OTHER, **{key: "acme"}) for i in range(4)]
    records.append(call(T0, caller=CLI))  # without the field: not counted
    fired = run(pack, records)
    assert kinds(fired) == [("alert", "warning")]
    assert fired[0]["scope"] == {key: "acme"} and fired[0]["caller_id"] == CLI
    assert run(pack, [dict(r, **{key: "other"}) if i % 2 else r for i, r in enumerate(records)]) == []
    engine, store = Engine(pack), DictState()
    for record in records:
        engine.judge(parse_cdr(record), store)
    assert f"t.rule|{key}|acme" in store.subjects  # the keyed state, routed as the stream routes it


# -- windows ---------------------------------------------------------------------------------------------


def test_local_day_resets_at_the_zones_midnight(tmp_path: Path) -> None:
    pack = rule_pack(tmp_path, """
        measure: calls
        window: local_day
        timezone: America/New_York
        thresholds: [{at: 3, kind: alert, severity: warning}, {at: 4, kind: block, severity: critical}]
    """)
    # 03:00-04:30 UTC on 5 May is still 4 May in New York, whose day ends at 04:00 UTC.
    records = every(4, timedelta(minutes=30), start=datetime(2026, 5, 5, 2, 59, tzinfo=UTC))
    assert kinds(run(pack, records)) == [("alert", "warning")]
    same_day = every(4, timedelta(minutes=10), start=datetime(2026, 5, 5, 2, 0, tzinfo=UTC))
    decided = run(pack, same_day)
    assert kinds(decided) == [("alert", "warning"), ("block", "critical")]
    assert decided[1]["until"] == "2026-05-05T04:00:00Z"


def test_days_window_sums_calendar_days(tmp_path: Path) -> None:
    pack = rule_pack(tmp_path, """
        measure: calls
        window: {days: 3}
        timezone: Europe/Paris
        thresholds: [{at: 3, kind: alert, severity: info}]
    """)
    spaced = every(3, timedelta(days=1), start=datetime(2026, 5, 4, 12, 0, tzinfo=UTC))
    assert kinds(run(pack, spaced)) == [("alert", "info")]  # 4, 5 and 6 May: three days
    wider = every(3, timedelta(days=1, hours=12), start=datetime(2026, 5, 4, 12, 0, tzinfo=UTC))
    assert run(pack, wider) == []  # 4, 5 (24:00) and 7 May: not within three days


# -- hysteresis ------------------------------------------------------------------------------------------


CLEARING = """
    measure: calls
    window: {sliding: 60s}
    thresholds: [{at: 5, kind: alert, severity: warning}]
    hysteresis: {clear_at: 3, clear_after: 2m}
"""


def test_an_alert_resolves_once_back_under_clear_at_for_clear_after(tmp_path: Path) -> None:
    pack = rule_pack(tmp_path, CLEARING)
    burst = every(6, timedelta(seconds=5))  # six calls in 25 s: five in a minute, the alert
    slow = every(10, timedelta(seconds=40), start=T0 + timedelta(minutes=2))  # one or two in any minute
    decided = run(pack, burst + slow)
    assert kinds(decided) == [("alert", "warning"), ("resolve", "warning")]
    alert, resolve = decided
    assert resolve["caller_id"] == alert["caller_id"] and resolve["scope"] == alert["scope"]
    # Under 3 in the minute from 08:01:15 (the call of 08:00:15 leaves it), cleared two minutes later: between
    # two calls, by event time, at the same instant whichever record comes next.
    assert resolve["at"] == "2026-05-04T08:03:15Z" and resolve["call_id"] is None
    assert resolve["message"] == (f"Caller ID {CLI} made 1 calls in the last 60 s: back below 3 for 2 min, "
                                  "the warning alert is cleared (t.rule).")
    # A call back at 3 in the minute (08:02:50) restarts the wait; the call of 08:03:20 is a third in the minute
    # again; under 3 for good from 08:03:40, cleared at 08:05:40.
    three = [*slow[:2], call(T0 + timedelta(minutes=2, seconds=50)), *slow[2:]]
    assert [d["at"] for d in run(pack, burst + three)][1] == "2026-05-04T08:05:40Z"
    # Without clear_after, the first call back under clear_at clears it; a new burst fires again.
    quick = rule_pack(tmp_path, """
        measure: calls
        window: {sliding: 60s}
        thresholds: [{at: 5, kind: alert, severity: warning}]
    """)
    again = every(5, timedelta(seconds=5), start=T0 + timedelta(minutes=10))
    assert kinds(run(quick, burst + slow + again)) == [("alert", "warning"), ("resolve", "warning"),
                                                     ("alert", "warning")]


def test_a_block_lasts_for_then_lifts_and_min_sleep_spaces_firings(tmp_path: Path) -> None:
    pack = rule_pack(tmp_path, """
        measure: calls
        window: {sliding: 60s}
        thresholds: [{at: 5, kind: block, severity: critical}]
        hysteresis: {clear_at: 0, for: 5m, min_sleep: 20m}
    """)
    hot = every(120, timedelta(seconds=5))  # ten minutes at twelve calls a minute
    decided = run(pack, hot)
    assert kinds(decided) == [("block", "critical"), ("unblock", "critical")]
    assert decided[0]["until"] == "2026-05-04T08:05:20Z" and decided[1]["at"] == "2026-05-04T08:05:20Z"
    later = every(5, timedelta(seconds=5), start=T0 + timedelta(minutes=21))
    assert kinds(run(pack, hot + later))[-1] == ("block", "critical")  # min_sleep over: fires again


def test_a_block_without_for_lasts_until_cleared(tmp_path: Path) -> None:
    pack = rule_pack(tmp_path, """
        measure: calls
        window: {sliding: 60s}
        thresholds: [{at: 5, kind: alert, severity: warning}, {at: 8, kind: block, severity: critical}]
        hysteresis: {clear_at: 3}
    """)
    decided = run(pack, [*every(10, timedelta(seconds=2)), call(T0 + timedelta(minutes=5))])
    assert kinds(decided) == [("alert", "warning"), ("block", "critical"), ("resolve", "warning"),
                              ("unblock", "critical")]
    # Under 3 in the minute from 08:01:14 (clear_after 0): both levels clear then, before the call of 08:05.
    assert decided[2]["at"] == decided[3]["at"] == "2026-05-04T08:01:14Z" and decided[3]["until"] is None


def test_a_caller_id_that_stops_calling_is_cleared_at_the_same_instant_however_time_moves(tmp_path: Path) -> None:
    """The clear of a CLI that makes no further call: made by the next record of any caller ID (event time),
    by its own next call, or by the clock at the end of the input: one decision, at one instant."""
    pack = rule_pack(tmp_path, CLEARING)
    burst = every(6, timedelta(seconds=5))  # six calls in 25 s: five in a minute, the alert
    engine, store = Engine(pack, hash_key=b"k"), DictState()
    for record in burst:
        engine.judge(parse_cdr(record), store)
    assert store.subjects[CLI].clears == {"t.rule|0": T0.timestamp() + 75 + 120}  # back at 08:01:15, +2 min
    assert engine.expire(store, T0 + timedelta(minutes=3, seconds=14)) == []  # not yet
    by_clock = [d.to_dict() for d in engine.expire(store, T0 + timedelta(hours=1))]
    assert kinds(by_clock) == [("resolve", "warning")] and by_clock[0]["at"] == "2026-05-04T08:03:15Z"
    assert store.subjects[CLI].clears == {} and store.subjects[CLI].tallies["t.rule"].active == {}
    other = run(pack, [*burst, call(T0 + timedelta(minutes=10), caller=OTHER)])
    own = run(pack, [*burst, call(T0 + timedelta(minutes=10))])
    assert other[1] == own[1] == by_clock[0]
    # A ratio whose calls fall under min_calls is no longer defined: back, and cleared then.
    ratio = rule_pack(tmp_path, """
        measure: answer_rate
        direction: below
        min_calls: 4
        window: {sliding: 60s}
        thresholds: [{at: 50, kind: alert, severity: warning}]
    """)
    unanswered = every(5, timedelta(seconds=10), answered=False)  # 08:00:00 .. 08:00:40
    decided = run(ratio, [*unanswered, call(T0 + timedelta(minutes=5), caller=OTHER)])
    assert kinds(decided) == [("alert", "warning"), ("resolve", "warning")]
    assert decided[1]["at"] == "2026-05-04T08:01:10Z"  # the call of 08:00:10 left the minute: 3 calls


def test_a_level_that_cannot_clear_without_calls_plans_no_clear(tmp_path: Path) -> None:
    """Too few answered calls stays true while the CLI is silent: nothing to clear on, so nothing planned."""
    pack = rule_pack(tmp_path, """
        measure: answered
        direction: below
        window: {sliding: 60s}
        thresholds: [{at: 2, kind: alert, severity: warning}]
    """)
    engine, store = Engine(pack, hash_key=b"k"), DictState()
    decided = [d for r in every(3, timedelta(seconds=5), answered=False)
               for d in engine.judge(parse_cdr(r), store).decisions]
    assert kinds([d.to_dict() for d in decided]) == [("alert", "warning")]
    assert store.subjects[CLI].clears == {} and engine.expire(store, T0 + timedelta(days=1)) == []


# -- active and filter -----------------------------------------------------------------------------------


def test_active_period_counts_only_inside_it(tmp_path: Path) -> None:
    pack = rule_pack(tmp_path, """
        measure: calls
        window: {sliding: 1h}
        thresholds: [{at: 3, kind: alert, severity: warning}]
        active: Mon-Fri 08:00-20:00 Europe/Paris
    """)
    # 05:50-06:10 UTC is 07:50-08:10 in Paris (summer time): the first two calls are before 08:00.
    records = every(5, timedelta(minutes=5), start=datetime(2026, 5, 4, 5, 50, tzinfo=UTC))
    assert [d["count"] for d in run(pack, records)] == [3]
    saturday = every(5, timedelta(minutes=5), start=datetime(2026, 5, 9, 9, 0, tzinfo=UTC))
    assert run(pack, saturday) == []
    assert explain(pack.rules["t.rule"]) == ("alert (warning) when a caller ID makes 3 or more calls in any 1 h, "
                                            "Mon-Fri 08:00-20:00 Europe/Paris; it clears once back below 3.")


def test_filter_conditions_on_the_record(tmp_path: Path) -> None:
    pack = rule_pack(tmp_path, """
        measure: calls
        window: {sliding: 1h}
        thresholds: [{at: 2, kind: alert, severity: warning}]
        filter: {destination_country: [GB, US], tenant: acme, purpose: telemarketing}
    """)
    good = {"tenant": "acme", "purpose": "telemarketing", "destination": "+12125550143"}
    assert len(run(pack, [call(T0, **good), call(T0 + timedelta(seconds=1), **good)])) == 1
    for change in ({"tenant": "other"}, {"purpose": "service"}, {"destination": "+33612345678"}):
        assert run(pack, [call(T0, **good), call(T0 + timedelta(seconds=1), **{**good, **change})]) == []


# -- forecast --------------------------------------------------------------------------------------------


def test_forecast_warns_once_per_window_with_the_projected_time(tmp_path: Path) -> None:
    pack = rule_pack(tmp_path, """
        measure: calls
        window: local_day
        timezone: Europe/Paris
        thresholds: [{at: 250, kind: block, severity: critical}]
        forecast: true
    """)
    # One call a minute from 08:00 Paris (06:00 UTC). The pace is the calls of the last hour over an hour: at
    # 06:14 UTC, 15 calls, 235 to go at 15 an hour, reach 250 at 21:54 UTC (23:54 Paris), before the day
    # ends at 22:00 UTC; a minute earlier, 14 calls would reach it after midnight.
    records = every(130, timedelta(minutes=1), start=datetime(2026, 5, 4, 6, 0, tzinfo=UTC))
    decided = run(pack, records)
    assert kinds(decided) == [("alert", "warning")]
    forecast = decided[0]
    assert forecast["at"] == "2026-05-04T06:14:00Z" and forecast["count"] == 15
    assert forecast["forecast_at"] == "2026-05-04T21:54:00Z" and forecast["until"] == "2026-05-04T22:00:00Z"
    assert f"{CLI} will reach 250 calls at about 23:54 Europe/Paris" in forecast["message"]
    # A slow pace forecasts nothing: ten calls an hour cannot reach 250 by midnight.
    slow = every(100, timedelta(minutes=6), start=datetime(2026, 5, 4, 6, 0, tzinfo=UTC))
    assert run(pack, slow) == []


# -- replay equals a second run, and state round-trips ----------------------------------------------------


def test_state_round_trips_through_its_changelog_form(tmp_path: Path) -> None:
    pack = rule_pack(tmp_path, """
        measure: distinct_destinations
        window: {sliding: 10m}
        thresholds: [{at: 3, kind: alert, severity: warning}]
        hysteresis: {clear_after: 1m}
    """)
    records = [call(T0 + timedelta(seconds=i), destination=f"+3361234567{i % 4}") for i in range(8)]
    engine, store = Engine(pack, hash_key=b"k"), DictState()
    for record in records[:4]:
        engine.judge(parse_cdr(record), store)
    planned = store.subjects[CLI].clears
    assert planned  # the alert in force, and when it clears if no call comes
    store.subjects[CLI] = SubjectState.from_dict(store.subjects[CLI].to_dict())
    assert store.subjects[CLI].clears == planned
    rest = [d.to_dict() for r in records[4:] for d in engine.judge(parse_cdr(r), store).decisions]
    whole = run(pack, records)
    assert [d["id"] for d in whole if d["at"] >= records[4]["started_at"][:19]] == [d["id"] for d in rest]


# -- bounded state ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("measure_name", "calls"), [("calls", 10_000_000), ("distinct_destinations", 1_000_000),
                                                     ("sequential_same_destination", 1_000_000)])
def test_millions_of_calls_on_one_key_keep_the_state_bounded(tmp_path: Path, measure_name: str, calls: int) -> None:
    """The per-call state update (`count_call`, what `measure` runs for every call) driven directly: ten
    million calls on one caller ID, 100 a second (28 hours, through a 24 h window), and a million calls each
    to a new number for the measures that hash destinations. The tally never holds more than its buckets
    and, for distinct destinations, one more hash than its highest level."""
    pack = rule_pack(tmp_path, f"""
        measure: {measure_name}
        window: {{sliding: 24h}}
        thresholds: [{{at: 500, kind: alert, severity: warning}}]
    """)
    spec = pack.rules["t.rule"].config
    tally = Tally()
    first = T0.timestamp()
    sizes = []
    hashed = measure_name != "calls"
    for i in range(calls):
        count_call(spec, tally, first + i / 100, None, False, 0.0, None, f"{i:016x}" if hashed else "")
        if i % 100_000 == 0:
            sizes.append(tally.size())
    assert max(sizes) <= 60 + (501 if measure_name == "distinct_destinations" else 0)
    assert len(tally.buckets) <= 60 and len(tally.to_dict()["b"]) <= 60
    if measure_name == "calls":
        # The last 59 whole buckets of 24 min (144,000 calls each) and the current one: the count is exact.
        assert 59 * 144_000 < tally.calls <= 60 * 144_000


# -- the row's validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "field"), [
    ("measure: calls\nwindow: {sliding: 60s}\nthresholds: [{at: 5, kind: alert, severity: warning}]\nkey: ip",
     "field key: expected one of"),
    ("measure: asr\nwindow: {sliding: 60s}\nthresholds: [{at: 5, kind: alert, severity: warning}]",
     "field measure: expected one of"),
    ("measure: calls\nwindow: {sliding: 3601s}\nthresholds: [{at: 5, kind: alert, severity: warning}]",
     "field window.sliding:"),
    ("measure: calls\nwindow: weekly\nthresholds: [{at: 5, kind: alert, severity: warning}]", "field window:"),
    ("measure: calls\nwindow: {sliding: 60s}\nthresholds: [{at: 5, kind: alert, severity: warning}]\n"
     "active: Mon-Fri 8-20 Europe/Paris", "field active:"),
    ("measure: calls\nwindow: {sliding: 60s}\nthresholds: [{at: 5, kind: alert, severity: warning}]\n"
     "active: Mon-Fri 08:00-20:00 Mars/Olympus", "field active:"),
    ("measure: calls\nwindow: {sliding: 60s}\nthresholds: [{at: 5, kind: alert, severity: warning}]\n"
     "hysteresis: {clear_at: 9}", "field hysteresis.clear_at: must be at or below"),
    ("measure: calls\nwindow: {sliding: 60s}\nthresholds: [{at: 5, kind: alert, severity: warning}]\n"
     "hysteresis: {for: 1h}", "field hysteresis.for:"),
    ("measure: calls\nwindow: local_day\nthresholds: [{at: 5, kind: alert, severity: warning}]\n"
     "hysteresis: {clear_after: 1h}", "field hysteresis: only a sliding window clears"),
    ("measure: calls\nwindow: {sliding: 60s}\nthresholds: [{at: 5, kind: block, severity: critical}]\n"
     "forecast: true", "field forecast:"),
    ("measure: answer_rate\ndirection: below\nwindow: {sliding: 1h}\n"
     "thresholds: [{at: 10, kind: alert, severity: warning}, {at: 15, kind: alert, severity: critical}]",
     "strictly descending"),
    ("measure: calls\nkey: tenant\nwindow: {sliding: 60s}\nthresholds: [{at: 5, kind: block, severity: critical}]",
     "key tenant names none"),
    ("measure: calls\nwindow: {sliding: 60s}\nthresholds: [{at: 5, kind: alert, severity: warning}]\n"
     "filter: {destination_country: France}", "field filter.destination_country:"),
    ("measure: calls\nwindow: {sliding: 60s}\nthresholds: [{at: 5, kind: alert, severity: warning}]\n"
     "codes: [603]", "field codes: only the measure rejections"),
])
def test_every_field_is_checked_and_named(tmp_path: Path, body: str, field: str) -> None:
    with pytest.raises(PackError) as error:
        rule_pack(tmp_path, body)
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 't.yaml'}: rules[0] (t.rule): ") and field in message, message


# -- the command line ------------------------------------------------------------------------------------


def cli(*args: Any) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cidwatch", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT)


def test_rules_check_prints_one_line_naming_file_rule_and_field(tmp_path: Path) -> None:
    pack = tmp_path / "runaway.yaml"
    text = (ROOT / "rules" / "packs" / "runaway.yaml").read_text(encoding="utf-8")
    pack.write_text(text.replace("clear_at: 10", "clear_at: 40"), encoding="utf-8")
    proc = cli("rules", "check", pack)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"cidwatch: error: {pack}: rules[0] (runaway.calls_per_minute): field hysteresis.clear_at: must be at or "
        "below the first level 30, got 40"]
    good = cli("rules", "check", ROOT / "rules" / "packs" / "runaway.yaml", ROOT / "rules" / "packs" / "fr.yaml")
    assert good.returncode == 0 and good.stdout.count("OK") == 2


def test_rules_explain_says_a_rule_in_one_sentence() -> None:
    out = cli("rules", "explain", "runaway.calls_per_minute")
    assert out.returncode == 0
    assert out.stdout == ("runaway.calls_per_minute: alert (warning) when a caller ID makes 30 or more calls in any "
                          "60 s, block (critical) at 60; it clears once back below 10 for 5 min; a block lasts 1 h at "
                          "most; at most one firing per 10 min.\n")
    daily = cli("rules", "explain", "fr.daily_limit").stdout
    assert daily.startswith("fr.daily_limit: alert (warning) when a caller ID makes 200 or more calls in one local "
                            "day (Europe/Paris), block (critical) at 250, counting only calls of a French caller ID")
    missing = cli("rules", "explain", "xx.none")
    assert missing.returncode == 2 and "no rule 'xx.none'" in missing.stderr and "Traceback" not in missing.stderr


# -- replay in several processes -------------------------------------------------------------------------


def test_partitions_judged_apart_give_the_single_pass_result(tmp_path: Path) -> None:
    """Every example pack and a tenant-keyed rule (its calls come from three caller IDs, so from several
    partitions): replay in two and three processes makes the single pass's decisions, in its order,
    including a block lifted early by its hysteresis (not at its `until`)."""
    from threshold_fixtures import TENANT_PACK, all_records, examples_folder, tenant_records

    from cidwatch.inputs import RawRecord
    from cidwatch.replay import replay
    from rules.pack import load_packs

    folder = examples_folder(tmp_path / "rules")
    (folder / "tenantload.yaml").write_text(TENANT_PACK, encoding="utf-8")
    records = sorted(all_records() + tenant_records(), key=lambda r: r["started_at"])
    path = tmp_path / "cdrs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    now = datetime(2026, 7, 1, tzinfo=UTC)

    def decided(workers: int) -> list[dict[str, Any]]:
        engine = Engine(load_packs(folder), hash_key=b"k")
        raw = [RawRecord(str(path), f"line {i + 1}", r) for i, r in enumerate(records)]
        return [d.to_dict() for d in replay(raw, engine, now=now, workers=workers).decisions]

    single = decided(1)
    tenant = [(d["kind"], d["count"], d["scope"]) for d in single if d["rule"] == "tenantload.calls_per_minute"]
    assert tenant == [("alert", 40, {"tenant": "acme"}), ("resolve", 40, {"tenant": "acme"})]
    assert ("unblock", "runaway.calls_per_minute") in {(d["kind"], d["rule"]) for d in single}
    for workers in (2, 3):
        assert decided(workers) == single
