"""The simulator without a broker: deterministic traffic that, replayed through the engine, trips every
rule (the French daily limit's unblock by event time included), in call-end order, with a few
malformed records."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest

from cidwatch.dev.simulate import (
    PARIS,
    default_start,
    generate,
    inventory_yaml,
    next_paris_midnight,
    sim_inventory,
    sim_plan,
    us_evening_cutoff,
)
from cidwatch.inputs import RawRecord
from cidwatch.replay import ReplayResult, replay
from rules.cdr import parse_cdr
from rules.engine import Engine
from rules.inventory import load_inventory
from rules.numbers import classify
from rules.pack import load_packs

SIMULATED_RULES = {  # the rules the simulator's traffic is written to trip
    "cli.invalid", "cli.not_authorized", "us.tollfree_to_tollfree", "tollfree.international",
    "au.cli_not_permitted", "uk.cli_not_permitted", "fr.daily_limit", "fr.callback_unanswered",
    "us.cnam_missing", "spam.label_risk", "cli.same_as_destination",
    "fr.telemarketing_hours", "fr.telemarketing_frequency", "fr.automated_not_npv", "es.mobile_cli_commercial",
    "spoof.national_cli_from_abroad",
}  # and us.calling_hours, in a longer run: the default start is a Paris midnight, afternoon in the US
SEED = 42
NOW = datetime(2026, 3, 28, 9, 30, tzinfo=UTC)  # the eve of the spring DST change in Paris
START = default_start(NOW)
RUN = {"rate": 40.0, "duration": 60.0, "speed": 60.0}  # one simulated hour, as `cidwatch demo --duration 60`
EVENING_RUN = {"rate": 2.0, "duration": 270.0, "speed": 60.0}  # four and a half simulated hours


@cache
def emissions(seed: int = SEED) -> tuple[tuple[float, bytes, bytes], ...]:
    return tuple(generate(seed, start=START, **RUN))


def raw_records(items: tuple[tuple[float, bytes, bytes], ...]) -> list[RawRecord]:
    """Each value as replay reads a JSON Lines file: unparsable lines become rejects."""
    out = []
    for line, (_, _, value) in enumerate(items, start=1):
        try:
            out.append(RawRecord("sim", f"line {line}", json.loads(value)))
        except ValueError as exc:
            out.append(RawRecord("sim", f"line {line}", None, f"record: not valid JSON ({exc})"))
    return out


@cache
def replayed() -> ReplayResult:
    """The engine over the run, with the wall clock at the simulated start: only event time lifts blocks."""
    engine = Engine(load_packs(), sim_inventory(SEED))
    return replay(raw_records(emissions()), engine, now=START)


def valid_records() -> list[tuple[float, dict]]:
    out = []
    for emit_at, _, value in emissions():
        try:
            record = json.loads(value)
        except ValueError:
            continue
        if isinstance(record.get("call_id"), str) and isinstance(record.get("answered"), bool) \
                and record["started_at"].endswith("Z"):
            out.append((emit_at, record))
    return out


def test_the_same_seed_and_start_give_the_same_records():
    again = tuple(generate(SEED, start=START, **RUN))
    assert again == emissions()
    other = tuple(generate(SEED + 1, start=START, **RUN))
    assert other != emissions()
    assert sim_inventory(SEED).to_dicts() == sim_inventory(SEED).to_dicts()
    assert sim_inventory(SEED).to_dicts() != sim_inventory(SEED + 1).to_dicts()


def test_replayed_traffic_trips_every_rule():
    kinds = Counter((d.rule, d.kind) for d in replayed().decisions)
    assert {rule for rule, _ in kinds} >= SIMULATED_RULES, kinds
    plan = sim_plan(SEED)
    by_rule = {(d.rule, d.kind): d for d in replayed().decisions}
    assert by_rule[("us.tollfree_to_tollfree", "block")].caller_id == plan.tollfree_domestic.number
    assert by_rule[("tollfree.international", "alert")].caller_id == plan.tollfree_abroad.number
    assert by_rule[("uk.cli_not_permitted", "block")].caller_id == plan.uk_0870.number
    assert by_rule[("cli.not_authorized", "block")].caller_id == plan.unauthorised.number
    assert by_rule[("us.cnam_missing", "alert")].caller_id == plan.no_cnam.number
    assert by_rule[("fr.callback_unanswered", "alert")].caller_id == plan.callback_fr.number
    assert {d.caller_id for d in replayed().decisions if d.rule == "spam.label_risk"} == {plan.robocaller.number}
    assert by_rule[("cli.same_as_destination", "alert")].caller_id == plan.self_caller.number
    au = {d.caller_id for d in replayed().decisions if d.rule == "au.cli_not_permitted"}
    assert au == {plan.au_1300.number, plan.tollfree_abroad.number}
    assert by_rule[("fr.automated_not_npv", "block")].caller_id == plan.robo_fr.number
    assert by_rule[("es.mobile_cli_commercial", "block")].caller_id == plan.es_mobile.number
    assert by_rule[("spoof.national_cli_from_abroad", "alert")].caller_id == plan.spoof_gb.number
    redialers = {line.number for line in plan.redialer}
    assert {d.caller_id for d in replayed().decisions if d.rule == "fr.telemarketing_frequency"} <= redialers
    assert {d.caller_id for d in replayed().decisions if d.rule == "fr.telemarketing_hours"} <= redialers
    invalid = {d.caller_id for d in replayed().decisions if d.rule == "cli.invalid"}
    assert {"anonymous", "0207 183 8750", "+4402071838750"} <= invalid


def test_the_us_dialer_trips_calling_hours_once_21_00_comes_on_the_east_coast():
    plan = sim_plan(SEED)
    items = tuple(generate(SEED, start=START, **EVENING_RUN))
    result = replay(raw_records(items), Engine(load_packs(), sim_inventory(SEED)), now=START)
    cutoff = us_evening_cutoff(START)
    assert START < cutoff < START + timedelta(hours=4)
    hours = [d for d in result.decisions if d.rule == "us.calling_hours"]
    assert hours and {d.caller_id for d in hours} == {plan.us_dialer.number}
    assert min(d.at for d in hours) >= cutoff
    starts = [datetime.fromisoformat(raw.value["started_at"]) for raw in raw_records(items)
              if isinstance(raw.value, dict) and raw.value.get("caller_id") == plan.us_dialer.number]
    assert any(at < cutoff for at in starts) and any(at >= cutoff for at in starts)


def test_the_french_cli_is_warned_blocked_and_unblocked_at_paris_midnight_by_event_time():
    rogue = sim_plan(SEED).rogue_fr.number
    french = [d for d in replayed().decisions if d.rule == "fr.daily_limit"]
    assert [(d.kind, d.caller_id, d.count) for d in french] == [
        ("alert", rogue, 200), ("block", rogue, 250), ("unblock", rogue, 250)]
    midnight = next_paris_midnight(START)
    assert midnight.astimezone(PARIS).hour == 0 and midnight - START < timedelta(hours=1)
    alert, block, unblock = french
    assert START < alert.at < block.at < midnight  # the 250th call comes before Paris midnight...
    # ...and later calls lift it: replay's wall clock is the simulated start, before `until`, so
    # nothing but event time can have ended the block.
    assert block.until == midnight and unblock.at == midnight


def test_only_the_rogue_french_cli_nears_the_daily_cap():
    inventory = sim_inventory(SEED)
    assert 250 <= len(inventory) <= 400
    limited = {d.caller_id for d in replayed().decisions if d.rule == "fr.daily_limit"}
    assert limited == {sim_plan(SEED).rogue_fr.number}
    rates = [line.answer_rate for line in sim_plan(SEED).fleet]
    assert min(rates) >= 0.30 and max(rates) <= 0.60
    us = [entry for entry in inventory.entries.values() if classify(entry.number).region == "US"]
    assert [entry.number for entry in us if entry.cnam is None] == [sim_plan(SEED).no_cnam.number]
    assert inventory.get(sim_plan(SEED).unauthorised.number) is None


def test_records_arrive_in_call_end_order():
    times = [emit_at for emit_at, _, _ in emissions()]
    assert times == sorted(times)
    assert times[-1] <= RUN["duration"] * RUN["speed"]
    started_late = 0
    latest_start = datetime.min.replace(tzinfo=UTC)
    for emit_at, record in valid_records():
        started = datetime.fromisoformat(record["started_at"].replace("Z", "+00:00"))
        assert START + timedelta(seconds=emit_at) >= started + timedelta(seconds=record["duration_s"])
        started_late += started < latest_start
        latest_start = max(latest_start, started)
    assert started_late > 100  # a long call's record comes after shorter calls that started later


def test_keys_are_the_subjects_and_destinations_mostly_unique():
    """Each record is keyed by its subject (the engine's), so it lands on its state's partition."""
    records = [record for _, record in valid_records()]
    keyed = {value: key for _, key, value in emissions()}
    engine = Engine(load_packs())
    for _, record in valid_records()[:500]:
        value = json.dumps(record, separators=(",", ":")).encode()
        assert keyed[value] == engine.subject(parse_cdr(record)).encode()
    destinations = Counter(record["destination"] for record in records if record["direction"] == "outbound")
    assert len(destinations) > 0.95 * sum(destinations.values())
    sample = [record["destination"] for record in records[:300]]
    assert sum(classify(number).valid for number in sample) > 0.95 * len(sample)


def test_a_small_share_of_records_is_malformed_and_rejected():
    result = replayed()
    total = len(emissions())
    rejected = len(result.rejects)
    assert 3 <= rejected <= 0.01 * total
    fields = {reject.field for reject in result.rejects}
    assert {"record", "call_id", "answered"} <= fields
    assert result.counts["duplicates"] >= 1  # switches deliver some records twice


def test_the_inventory_yaml_reads_back(tmp_path):
    path = tmp_path / "inventory.yaml"
    path.write_text(inventory_yaml(sim_inventory(SEED)))
    assert load_inventory(path).to_dicts() == sim_inventory(SEED).to_dicts()


@pytest.mark.parametrize("now", [
    datetime(2026, 3, 28, 22, 50, tzinfo=UTC),  # 23:50 Paris: too close, the next midnight is used
    datetime(2026, 10, 25, 12, 0, tzinfo=UTC),  # the day Paris goes back to winter time
])
def test_the_default_start_is_in_the_future_and_just_before_a_paris_midnight(now):
    start = default_start(now)
    midnight = next_paris_midnight(start)
    assert now <= start < midnight
    assert timedelta(minutes=30) < midnight - start < timedelta(minutes=40)
