"""Spam-label risk on hand-built fixtures: every expected number is worked out in the comments.

Default model (rules/risk.py, docs/spam-risk.md), points = 100 x weight x factor:
  volume        w 0.20  ramp(calls_24h, 50, 150)
  burst         w 0.15  ramp(peak calls in a sliding hour, 50, 100)
  answer_rate   w 0.20  (0.35 - answer rate) / 0.25, clamped
  short_calls   w 0.15  ramp(share of answered calls under 6 s, 0.10, 0.50)
  rejections    w 0.15  ramp((0.5 x 603 + 607 + 608) / calls, 0.0, 0.10)
  attestation   w 0.10  mean of A 0, B 0.5, C 1 over attested calls
  distinct      w 0.05  ramp(distinct destinations / calls, 0.8, 1.0)
Ratio factors are scaled by min(1, calls / 20) (short calls: answered / 10); every fixture here has
enough calls for a scale of 1 except where a test says otherwise.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from rules.risk import FACTORS, RiskConfig, RiskScore, RiskState

DAY = datetime(2025, 3, 10, tzinfo=UTC)
NOW = DAY + timedelta(hours=20)


def traffic(
    *, calls: int, peak: int, answered: int, short: int, rejected: int, attestation: str | None,
    distinct: int, rejection_code: int = 608,
) -> RiskState:
    """One CLI's day: `peak` calls evenly inside 09:00-10:00, the rest evenly over 12:00-20:00.

    Calls are numbered in time order; the first `answered` are answered (the first `short` of them
    last 3 s, the others 90 s); the next `rejected` fail with `rejection_code`, the rest with 486.
    Destination keys cycle over `distinct` values. The 12:00-20:00 calls never come within an hour
    of the 09:00 ones, so the busiest sliding hour holds exactly `peak` calls.
    """
    times = [DAY + timedelta(hours=9, seconds=i * 3600 / peak) for i in range(peak)]
    rest = calls - peak
    times += [DAY + timedelta(hours=12, seconds=i * 8 * 3600 / rest) for i in range(rest)]
    state = RiskState()
    for i, started in enumerate(times):
        is_answered = i < answered
        duration = 3.0 if i < short else (90.0 if is_answered else 0.0)
        sip = 200 if is_answered else (rejection_code if i - answered < rejected else 486)
        assert state.add(started, is_answered, duration, sip, attestation, f"h:{i % distinct}")
    return state


def test_robocall_like_cli_scores_high() -> None:
    # 400 calls, 150 in one hour, 40 answered (10 %), 30 of them under 6 s, 20 x 608, attestation C,
    # every destination different.
    state = traffic(calls=400, peak=150, answered=40, short=30, rejected=20, attestation="C", distinct=400)
    risk = state.score(NOW)
    assert risk.factors == {
        "volume": 20.0,  # 400 >= 150 -> 1 x 20
        "burst": 15.0,  # 150 >= 100 -> 1 x 15
        "answer_rate": 20.0,  # 0.10 <= 0.10 -> 1 x 20
        "short_calls": 15.0,  # 30/40 = 0.75 >= 0.50 -> 1 x 15
        "rejections": 7.5,  # 20/400 = 0.05 -> 0.05/0.10 = 0.5 x 15
        "attestation": 10.0,  # all C -> 1 x 10
        "distinct_destinations": 5.0,  # 400/400 = 1.0 -> 1 x 5
    }
    assert risk.score == 92.5  # 20 + 15 + 20 + 15 + 7.5 + 10 + 5
    assert risk.score >= 85 and risk.severity() == "critical"
    assert risk.inputs["calls_24h"] == 400 and risk.inputs["peak_hour_calls"] == 150
    assert risk.inputs["answer_rate"] == 0.1 and risk.inputs["short_share"] == 0.75


def test_normal_agent_cli_scores_low() -> None:
    # 60 calls, at most 10 in an hour, 27 answered (45 %) with 90 s calls, attestation A, 54 distinct.
    state = traffic(calls=60, peak=10, answered=27, short=0, rejected=0, attestation="A", distinct=54)
    risk = state.score(NOW)
    assert risk.factors == {
        "volume": 2.0,  # (60 - 50) / 100 = 0.1 x 20
        "burst": 0.0,  # 10 < 50
        "answer_rate": 0.0,  # 0.45 >= 0.35
        "short_calls": 0.0,  # 0/27
        "rejections": 0.0,
        "attestation": 0.0,  # A
        "distinct_destinations": 2.5,  # 54/60 = 0.9 -> (0.9 - 0.8) / 0.2 = 0.5 x 5
    }
    assert risk.score == 4.5
    assert risk.score < 30 and risk.severity() is None


@pytest.mark.parametrize(
    ("rejected", "score", "rejection_points", "severity"),
    [
        # 1 x 608 of 150 calls: 0.00667 / 0.10 = 0.0667 x 15 = 1.0 point -> exactly the warning line
        (1, 70.0, 1.0, "warning"),
        # the same CLI without that rejection stays just under it
        (0, 69.0, 0.0, None),
    ],
)
def test_borderline_warning(rejected: int, score: float, rejection_points: float, severity: str | None) -> None:
    # 150 calls, 90 in one hour, 30 answered (20 %), 15 of them short, attestation B, all distinct.
    state = traffic(calls=150, peak=90, answered=30, short=15, rejected=rejected, attestation="B", distinct=150)
    risk = state.score(NOW)
    assert risk.factors == {
        "volume": 20.0,  # 150 -> 1 x 20
        "burst": 12.0,  # (90 - 50) / 50 = 0.8 x 15
        "answer_rate": 12.0,  # (0.35 - 0.20) / 0.25 = 0.6 x 20
        "short_calls": 15.0,  # 15/30 = 0.5 -> 1 x 15
        "rejections": rejection_points,
        "attestation": 5.0,  # B = 0.5 x 10
        "distinct_destinations": 5.0,
    }
    assert risk.score == score  # 20 + 12 + 12 + 15 + 5 + 5 = 69, plus the rejection points
    assert risk.severity() == severity


@pytest.mark.parametrize(
    ("rejected", "score", "severity"),
    [
        (8, 85.0, "critical"),  # 8/150 = 0.0533 / 0.10 = 0.533 x 15 = 8.0 points
        (7, 84.0, "warning"),  # 7/150 = 0.0467 / 0.10 = 0.467 x 15 = 7.0 points
    ],
)
def test_borderline_critical(rejected: int, score: float, severity: str) -> None:
    # 150 calls, 100 in one hour, 30 answered (20 %), 15 short, attestation C, all distinct.
    state = traffic(calls=150, peak=100, answered=30, short=15, rejected=rejected, attestation="C", distinct=150)
    risk = state.score(NOW)
    # 20 (volume) + 15 (burst) + 12 (answer) + 15 (short) + 10 (C) + 5 (distinct) = 77, plus rejections
    assert risk.factors["burst"] == 15.0 and risk.factors["attestation"] == 10.0
    assert risk.factors["rejections"] == float(rejected)
    assert risk.score == score and risk.severity() == severity


def test_factors_add_up_and_are_all_named() -> None:
    state = traffic(calls=150, peak=90, answered=30, short=15, rejected=1, attestation="B", distinct=150)
    risk = state.score(NOW)
    assert tuple(risk.factors) == FACTORS
    assert round(sum(risk.factors.values()), 1) == risk.score


def test_603_counts_half_and_607_fully() -> None:
    # 150 calls, 10 x 603: weighted 5/150 = 0.0333 -> 0.333 x 15 = 5.0 points; 10 x 607: 10.0 points.
    half = traffic(calls=150, peak=90, answered=30, short=15, rejected=10, attestation="B", distinct=150,
                   rejection_code=603)
    full = traffic(calls=150, peak=90, answered=30, short=15, rejected=10, attestation="B", distinct=150,
                   rejection_code=607)
    assert half.score(NOW).factors["rejections"] == 5.0
    assert full.score(NOW).factors["rejections"] == 10.0


def test_few_calls_scale_ratio_factors_down() -> None:
    # 5 unanswered calls, attestation C: answer-rate risk 1 x 5/20 = 0.25 -> 5.0 points; attestation
    # 1 x 5/20 -> 2.5; distinct 5/5 -> 1 x 5/20 -> 1.25 (shown 1.25); volume and burst 0 -> 8.75 -> 8.8.
    state = RiskState()
    for i in range(5):
        state.add(DAY + timedelta(minutes=i), False, 0.0, 486, "C", f"h:{i}")
    risk = state.score(DAY + timedelta(hours=1))
    assert risk.factors["answer_rate"] == 5.0
    assert risk.factors["attestation"] == 2.5
    assert risk.factors["distinct_destinations"] == 1.25
    assert risk.score == 8.8


def test_unknown_attestation_is_no_evidence() -> None:
    state = traffic(calls=60, peak=10, answered=27, short=0, rejected=0, attestation=None, distinct=54)
    assert state.score(NOW).factors["attestation"] == 0.0


def test_window_rolls_and_score_decays() -> None:
    state = traffic(calls=400, peak=150, answered=40, short=30, rejected=20, attestation="C", distinct=400)
    # 24 h after 09:30 the burst hour has left the window, the 12:00-20:00 calls have not.
    later = state.score(DAY + timedelta(days=1, hours=10, minutes=5))
    assert later.inputs["calls_24h"] == 250 and later.inputs["peak_hour_calls"] < 50
    assert state.score(DAY + timedelta(days=2)).score == 0.0


def test_late_records_are_dropped_not_merged() -> None:
    state = RiskState()
    assert state.add(NOW, True, 60.0, 200, "A", "h:1")
    before = state.to_dict()
    assert not state.add(NOW - timedelta(hours=24, minutes=5), False, 0.0, 608, "C", "h:2")
    assert state.late == 1
    after = state.to_dict()
    assert after.pop("late") == 1 and before.pop("late") == 0
    assert after == before
    # inside the window, out of order, is fine
    assert state.add(NOW - timedelta(hours=23), False, 0.0, 486, "A", "h:3")
    assert state.score(NOW).inputs["calls_24h"] == 2


def test_memory_is_bounded() -> None:
    config = RiskConfig(distinct_cap=50)
    state = RiskState(config)
    start = DAY
    for i in range(5 * 24 * 30):  # five days, one call every two minutes, every destination new
        state.add(start + timedelta(minutes=2 * i), False, 0.0, 486, "A", f"h:{i}")
    assert len(state.buckets) <= 288
    assert len(state.seen) <= 50
    assert len(state.overflow) <= 24
    # past the cap new destinations still count as distinct (an upper bound)
    risk = state.score(start + timedelta(minutes=2 * (5 * 24 * 30 - 1)))
    assert risk.inputs["distinct_ratio"] == 1.0
    assert len(json.dumps(state.to_dict())) < 20_000


def test_state_round_trips_through_json() -> None:
    state = traffic(calls=150, peak=90, answered=30, short=15, rejected=1, attestation="B", distinct=120)
    data = json.loads(json.dumps(state.to_dict()))
    restored = RiskState.from_dict(data)
    assert restored.score(NOW) == state.score(NOW)
    assert restored.to_dict() == state.to_dict()
    with pytest.raises(ValueError, match="version"):
        RiskState.from_dict({**data, "v": 99})


def test_state_never_holds_a_destination() -> None:
    state = RiskState()
    state.add(NOW, True, 30.0, 200, "A", "sha256:+33612345678")
    assert "+336" not in json.dumps(state.to_dict())


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        RiskState().add(datetime(2025, 3, 10, 9), True, 30.0, 200, "A", "h")
    with pytest.raises(ValueError, match="aware"):
        RiskState().score(datetime(2025, 3, 10, 9))


def test_config_from_dict() -> None:
    config = RiskConfig.from_dict({
        "daily_calls_guidance": 200, "volume_ramp": [1, 2], "weights": {"volume": 0.4},
        "rejection_weights": {"603": 1}, "attestation_weights": {"b": 0.25},
    })
    assert config.volume_ramp == (1.0, 2.0)
    assert config.weights["volume"] == 0.4 and config.weights["burst"] == 0.15
    assert config.rejection_weights == {603: 1.0}
    assert config.attestation_weights == {"B": 0.25}
    with pytest.raises(ValueError, match="unknown key"):
        RiskConfig.from_dict({"dailly_calls": 1})
    with pytest.raises(ValueError, match="lo < hi"):
        RiskConfig.from_dict({"burst_ramp": [2, 1]})
    with pytest.raises(ValueError, match="unknown factor"):
        RiskConfig.from_dict({"weights": {"loudness": 1}})


def test_weights_are_normalised() -> None:
    # Doubling every weight changes nothing: points are shares of the weight total.
    doubled = RiskConfig(weights={name: 2 * w for name, w in RiskConfig().weights.items()})
    base = traffic(calls=400, peak=150, answered=40, short=30, rejected=20, attestation="C", distinct=400)
    again = RiskState.from_dict(base.to_dict(), doubled)
    assert again.score(NOW) == base.score(NOW)


def test_score_type() -> None:
    assert RiskScore(score=1.0, factors={}).inputs == {}


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_running_score_equals_the_full_computation(seed: int) -> None:
    """score_latest and latest_value (running sums, O(1) per call: what the engine asks on every call)
    equal the full computation at the newest bucket, with late calls, bursts, gaps and the cap."""
    import random
    from datetime import UTC, datetime, timedelta

    from rules.risk import RiskConfig, RiskState

    rng = random.Random(seed)
    config = RiskConfig(distinct_cap=40)
    for _trial in range(30):
        state = RiskState(config)
        t = datetime(2026, 6, 1, tzinfo=UTC)
        for _ in range(rng.randint(50, 400)):
            t += timedelta(seconds=rng.choice((1, 5, 30, 300, 1800, 7200)))
            when = t - timedelta(seconds=rng.choice((0, 0, 0, 600, 40_000, 100_000)))  # some late calls
            state.add(when, rng.random() < 0.4, rng.uniform(0, 20), rng.choice((None, 200, 603, 608)),
                      rng.choice("ABC"), f"d{rng.randint(0, 80)}")
            latest = state.latest_time()
            assert latest is not None
            full = state.score(latest)
            assert state.score_latest() == full
            assert state.latest_value() == full.score
        restored = RiskState.from_dict(state.to_dict(), config)
        assert restored.score_latest() == state.score_latest()
        assert restored.latest_value() == state.latest_value()


@pytest.mark.parametrize("seed", [21, 22, 23, 24])
def test_ceiling_bounds_the_score_until_it_is_computed_again(seed: int) -> None:
    """`ceiling` and `bound_below` (what the engine compares to thresholds instead of scoring every call)
    are never below the score, over many calls after the last score computed: bursts, gaps past the
    window, late calls, the destination cap, few calls, and weights other than the defaults."""
    import random

    rng = random.Random(seed)
    configs = [RiskConfig(), RiskConfig(distinct_cap=40, min_calls=3, min_answered=2),
               RiskConfig(attestation_weights={"A": 0.5, "B": 0.5, "C": 0.5}, rejection_weights={603: 1, 608: 1}),
               RiskConfig(attestation_weights={"A": 2.0, "B": 0.0, "C": 0.0}, volume_ramp=(0.01, 0.02))]
    bounded = 0
    for trial in range(24):
        state = RiskState(configs[trial % len(configs)])
        t = datetime(2026, 6, 1, tzinfo=UTC)
        spacing = rng.choice((1, 10, 60, 600))
        answer_rate, short_rate = rng.random(), rng.random()
        for _ in range(rng.randint(100, 1500)):
            t += timedelta(seconds=rng.expovariate(1 / spacing) if rng.random() > 0.01 else rng.choice((7200, 90_000)))
            when = t - timedelta(seconds=rng.choice((0,) * 20 + (600, 40_000, 100_000)))
            answered = rng.random() < answer_rate
            state.add(when, answered, rng.uniform(0, 6) if rng.random() < short_rate else 90.0,
                      rng.choice((None, 200, 486, 603, 607, 608)), rng.choice(("A", "B", "C", None)),
                      f"d{rng.randint(0, rng.choice((10, 100, 10_000)))}")
            ceiling = state.ceiling()
            score = state.score_latest().score
            if ceiling is not None:
                bounded += 1
                assert score <= ceiling
            for limit in (20.0, 70.0, 85.0):
                below = state.bound_below(limit)
                assert below is None or score <= below < limit
            if ceiling is None or rng.random() < 0.03:
                state.latest_value()  # starts a new bound
    assert bounded > 1000


def test_few_calls_cannot_reach_the_warning() -> None:
    # The worst 59 calls there can be (one burst, unanswered, 608, attestation C, all distinct) score
    # 20 x 0.09 + 15 x 0.18 + 20 + 15 x 0 + 15 + 10 + 5 = 54.5; the bound from the count alone is below 70.
    state = RiskState()
    for i in range(59):
        state.add(NOW + timedelta(seconds=i), False, 0.0, 608, "C", f"h:{i}")
    assert state.latest_value() == 54.5
    bound = state.bound_below(70.0)
    assert bound is not None and 54.5 <= bound < 70.0
