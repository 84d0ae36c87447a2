"""runaway.calls_per_minute (rules/packs/runaway.yaml, an example threshold pack declared wholly in YAML):
replayed on a dialer runaway; the same traffic on a real broker is tests/test_stream_threshold.py."""

from threshold_fixtures import RUNAWAY_CLI, of_rule, replayed, runaway_records

from rules.pack import load_packs

RULE = "runaway.calls_per_minute"


def test_disabled_unless_enabled():
    assert RULE not in load_packs() and RULE in load_packs(examples=True)


def test_a_runaway_alerts_blocks_and_clears_in_replay():
    decisions = replayed(runaway_records())
    assert of_rule(decisions, RULE) == [
        ("alert", "2026-05-04T08:00:23Z", 30, "run-29"),  # the 30th call in 60 s
        ("block", "2026-05-04T08:00:47Z", 60, "run-59"),
        # Under 10 in the minute from 08:01:48, when the burst's 61st call leaves it, cleared five minutes
        # later: between two of the calls that now come once a minute, by event time, with no call of its own.
        ("unblock", "2026-05-04T08:06:48Z", 60, None),
        ("resolve", "2026-05-04T08:06:48Z", 30, None),
    ]
    alert, block, unblock, resolve = [d for d in decisions if d["rule"] == RULE]
    assert alert["caller_id"] == block["caller_id"] == RUNAWAY_CLI
    assert block["until"] == "2026-05-04T09:00:47Z"  # `for: 1h` at most
    assert unblock["until"] == "2026-05-04T08:06:48Z"  # cleared before the hour was out
    assert resolve["message"] == (f"Caller ID {RUNAWAY_CLI} made 1 calls in the last 60 s: back below 10 for 5 min, "
                                  f"the warning alert is cleared ({RULE}).")
    assert alert["message"] == (f"Caller ID {RUNAWAY_CLI} made 30 calls in the last 60 s: at or over the warning "
                                f"alert level 30 ({RULE}).")
