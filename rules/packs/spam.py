"""Spam-label risk: a heuristic from public vendor guidance (docs/spam-risk.md, `rules/risk.py`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rules.context import Call
from rules.pack import Rule, Threshold
from rules.registry import NO_SCOPE, Finding, rule
from rules.risk import RiskConfig, RiskState


def _config(params: Mapping[str, Any]) -> RiskConfig:
    return RiskConfig.from_dict(params)


@rule("spam.label_risk", "threshold", ("utc_day",), params=_config)
def label_risk(call: Call, rule: Rule) -> Finding:
    """Adds the call to the CLI's rolling 24 h and scores it at the call's own time (event time).

    The score is computed only when it could reach a threshold not yet passed in this call's window;
    otherwise the value is the risk state's upper bound of it, below that threshold: the same decisions.
    """
    state = call.state
    risk = state.risk
    if risk is None:
        risk = state.risk = RiskState(rule.config, call.hash_key)
    cdr = call.cdr
    risk.add_at(call.at, cdr.answered, cdr.duration_s, cdr.sip_code, cdr.attestation, cdr.destination)
    value = risk.bound_below(rule.thresholds[0].at)  # below every threshold: no need to look further
    if value is None:
        ahead = call.threshold_ahead(rule)
        value = risk.bound_below(math.inf if ahead is None else ahead)
        if value is None:
            value = risk.latest_value()
    calls = risk.calls_24h()
    number = call.subject

    def message(_threshold: Threshold | None) -> str:
        score = risk.score_latest()
        breakdown = ", ".join(f"{name} {points:g}" for name, points in score.factors.items() if points)
        return (f"Spam-label risk of caller ID {number} is {score.score:g}/100 over the last 24 h ({breakdown}); "
                "analytics engines are likely to label its calls.")

    return Finding(message, NO_SCOPE, value, calls, None, (calls, rule.config.daily_calls_guidance))
