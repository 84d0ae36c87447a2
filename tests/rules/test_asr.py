"""asr.low_answer_rate (rules/packs/asr.yaml, an example threshold pack declared wholly in YAML): replayed on
a caller ID whose calls go unanswered; the same traffic on a real broker is tests/test_stream_threshold.py."""

from threshold_fixtures import ASR_CLI, asr_records, of_rule, replayed

from rules.pack import load_packs

RULE = "asr.low_answer_rate"


def test_disabled_unless_enabled():
    assert RULE not in load_packs() and RULE in load_packs(examples=True)


def test_a_low_answer_rate_alerts_from_200_calls_and_resolves_in_replay():
    decisions = replayed(asr_records())
    # 5 % answered from the first call, but no decision before the 200th (min_calls); then every call is
    # answered, and the hour's rate passes 20 % and stays above it for 15 minutes.
    assert of_rule(decisions, RULE) == [
        ("alert", "2026-05-04T08:39:48Z", 200, "asr-199"),
        ("resolve", "2026-05-04T09:14:12Z", 200, None),  # no call id: event time clears it
    ]
    alert = next(d for d in decisions if d["rule"] == RULE)
    assert alert["caller_id"] == ASR_CLI and alert["threshold"] == 15
    assert "had an answer rate of 5.0 % over 200 calls in the last 1 h: under the warning alert level 15 %" \
        in alert["message"]
