"""shortcalls.share (rules/packs/shortcalls.yaml, an example threshold pack declared wholly in YAML): replayed
on a caller ID people hang up on; the same traffic on a real broker is tests/test_stream_threshold.py."""

from threshold_fixtures import SHORT_CLI, of_rule, replayed, shortcalls_records

from rules.pack import load_packs

RULE = "shortcalls.share"


def test_disabled_unless_enabled():
    assert RULE not in load_packs() and RULE in load_packs(examples=True)


def test_a_high_short_call_share_alerts_from_50_answered_calls_and_resolves_in_replay():
    decisions = replayed(shortcalls_records())
    assert of_rule(decisions, RULE) == [
        ("alert", "2026-05-04T08:24:30Z", 50, "short-49"),  # 25 of 50 answered calls under 6 s
        ("resolve", "2026-05-04T09:05:00Z", 50, None),  # under 30 % since 08:50, for 15 min
    ]
    alert = next(d for d in decisions if d["rule"] == RULE)
    assert alert["caller_id"] == SHORT_CLI
    assert "had 50.0 % of its 50 answered calls shorter than 6 s in the last 1 h" in alert["message"]
