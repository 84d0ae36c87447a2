"""sequential.same_destination (rules/packs/sequential.yaml, an example threshold pack declared wholly in
YAML): replayed on a redial loop; the same traffic on a real broker is tests/test_stream_threshold.py."""

from threshold_fixtures import SEQUENTIAL_CLI, of_rule, replayed, sequential_records

from rules.pack import load_packs

RULE = "sequential.same_destination"


def test_disabled_unless_enabled():
    assert RULE not in load_packs() and RULE in load_packs(examples=True)


def test_thirty_calls_in_a_row_to_one_number_alert_and_resolve_in_replay():
    decisions = replayed(sequential_records())
    assert of_rule(decisions, RULE) == [
        ("alert", "2026-05-04T08:04:50Z", 30, "seq-29"),
        ("resolve", "2026-05-04T08:15:50Z", 30, None),  # the run broken at 08:05:50, ten minutes on
    ]
    alert = next(d for d in decisions if d["rule"] == RULE)
    assert alert["caller_id"] == SEQUENTIAL_CLI
    assert "+12025550123" not in alert["message"]  # the number called is never named
