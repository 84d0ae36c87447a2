"""SubjectState: one value per subject, bounded however long a caller ID calls, and read back as written."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from rules.cdr import Cdr
from rules.engine import Engine
from rules.pack import load_packs
from rules.state import StateError, SubjectState

START = datetime(2026, 3, 1, tzinfo=UTC)


def calls(caller: str, n: int, days: float):
    step = timedelta(days=days) / n
    for i in range(n):
        yield Cdr(call_id=f"c{i}", started_at=START + i * step, caller_id=caller, destination=f"+3361{i % 90_000:07d}",
                  answered=i % 3 == 0, duration_s=40.0 if i % 3 == 0 else 0.0, sip_code=200 if i % 3 == 0 else 486)


def size(state: SubjectState) -> int:
    return len(json.dumps(state.to_dict()))


def test_a_cli_that_calls_forever_keeps_a_bounded_state():
    """A French non-NPV CLI calling 3,000 times a day for 60 days (every rule that counts, spam risk,
    daily blocks and their unblocks): what it remembers after 60 days is what it remembers after 6,
    because call ids, counts and fired windows leave with event time."""
    engine = Engine(load_packs())
    state = SubjectState()
    sizes = {}
    for i, cdr in enumerate(calls("+33184884000", 180_000, 60), start=1):
        engine.process(cdr, state)
        if i in (18_000, 180_000):
            sizes[i] = size(state)
    per_day = 3_000
    horizon_calls = per_day * (engine.dedup_seconds / 86_400 + 1 / 24 + 1 / 24)  # 48 h, plus the prune period
    assert len(state.seen) <= horizon_calls
    # the windows of the last ~3 days only, of the two rules that count (fr.daily_limit, and
    # cli.used_while_blocked: the CLI keeps calling while its daily block is in force)
    assert len(state.counts) <= 6 and len(state.fired) <= 12
    assert state.risk is not None and len(state.risk.buckets) <= 288
    assert sizes[180_000] <= sizes[18_000] * 1.1, sizes  # 60 days take no more room than 6
    assert sizes[180_000] < 2_500_000


def test_state_round_trips_and_refuses_another_version():
    engine = Engine(load_packs())
    state = SubjectState()
    for cdr in calls("+33184884000", 600, 2):
        engine.process(cdr, state)
    again = SubjectState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again.to_dict() == state.to_dict()
    with pytest.raises(StateError):
        SubjectState.from_dict({**state.to_dict(), "v": 99})


def test_a_keyed_states_attempts_and_expiry_round_trip_and_are_forgotten():
    from rules.state import SubjectState

    state = SubjectState()
    assert state.is_empty() and state.to_dict().get("attempts") is None  # the old shape when unused
    state.attempts["fr.telemarketing_frequency"] = [100.0, 200.0]
    state.expires = 200.0 + 30 * 86400
    state.seen[1] = 200.0
    again = SubjectState.from_dict(state.to_dict())
    assert again.attempts == state.attempts and again.expires == state.expires and not again.is_empty()
    assert again.due() == state.expires
    again.forget()
    assert again.is_empty() and again.due() is None
