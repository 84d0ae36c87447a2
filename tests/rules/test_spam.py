"""spam.label_risk (rules/packs/spam.py) through the engine; the score itself is tests/test_risk.py's."""

from datetime import UTC, datetime, timedelta

from engine_helpers import cdr, decisions, run


def robocalls(cli: str, start: datetime, n: int, step_s: int = 20) -> list[dict]:
    out = []
    for i in range(n):
        answered = i % 10 == 0
        out.append(cdr(cli, f"+1312555{i:04d}", at=start + timedelta(seconds=step_s * i), answered=answered,
                       duration_s=3 if answered else 0, sip_code=200 if answered else (608 if i % 4 else 480),
                       attestation="C"))
    return out


def test_spam_label_risk_warns_then_pages_once_per_utc_day():
    start = datetime(2026, 6, 1, 20, 0, tzinfo=UTC)
    result = run(robocalls("+13125550177", start, 300))
    alerts = decisions(result, "spam.label_risk")
    assert [(d["kind"], d["severity"], d["threshold"]) for d in alerts] == [
        ("alert", "warning", 70), ("alert", "critical", 85)]
    assert all(d["scope"] == {} and d["until"] == "2026-06-02T00:00:00Z" for d in alerts)
    assert "volume" in alerts[1]["message"] and "/100" in alerts[1]["message"]
    assert alerts[0]["at"] < alerts[1]["at"] and 0 < alerts[0]["count"] < alerts[1]["count"]  # calls in 24 h
    # Still robocalling after UTC midnight: a new day, new alerts (once per day per severity).
    next_day = run(robocalls("+13125550177", start, 300) + robocalls("+13125550177", start + timedelta(hours=5), 50))
    assert [d["severity"] for d in decisions(next_day, "spam.label_risk")] == ["warning", "critical", "warning",
                                                                              "critical"]


def test_spam_label_risk_leaves_a_normal_agent_alone():
    start = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    agent = [cdr("+13125550188", f"+1415555{i:04d}", at=start + timedelta(minutes=8 * i), answered=i % 2 == 0,
                 duration_s=180 if i % 2 == 0 else 0, sip_code=200 if i % 2 == 0 else 486, attestation="A")
             for i in range(70)]
    assert decisions(run(agent), "spam.label_risk") == []
