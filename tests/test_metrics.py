"""The worker's metrics as units: bounded labels, and per-caller-ID rows scored when they are read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from rules.risk import RiskConfig, RiskState
from streams.metrics import Metrics


def samples(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of one metric family in the exposition, by its sorted labels."""
    found = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def row(subject: str, tenant: str, today: int) -> tuple:
    return ("outbound", "FR", "FR", True, tenant, 30.0, 200, subject, today, 250)


def test_tenants_past_the_limit_are_counted_as_other():
    metrics = Metrics(tenant_limit=3)
    rows = [row("+33612345678", f"tenant-{i}", 1) for i in range(10)]
    metrics.record_calls(rows, lambda _subject: None)
    tenants = {dict(labels)["tenant"] for labels in samples(metrics, "cidwatch_calls_total")}
    assert tenants == {"tenant-0", "tenant-1", "tenant-2", "other"}
    by_tenant = {dict(labels)["tenant"]: value for labels, value in samples(metrics, "cidwatch_calls_total").items()}
    assert by_tenant["other"] == 7
    assert {dict(labels)["tenant"] for labels in samples(metrics, "cidwatch_call_sip_final_total")} == tenants


def test_a_cli_row_is_scored_when_read_as_the_state_scores_it():
    config = RiskConfig()
    risk = RiskState(config)
    start = datetime(2026, 6, 1, 9, tzinfo=UTC)
    for i in range(120):
        risk.add(start + timedelta(seconds=20 * i), i % 5 == 0, 3.0, 603 if i % 7 == 0 else None, "C",
                 f"dest-{i % 40}")
    metrics = Metrics()
    metrics.record_calls([row("+14155550100", "acme", 120)], lambda _s: (risk.latest_inputs(), risk.config))
    expected = risk.score_latest()
    assert expected.score > 0
    assert samples(metrics, "cidwatch_cli_spam_risk_score") == {(("caller_id", "+14155550100"),): expected.score}
    factors = {dict(labels)["factor"]: value
               for labels, value in samples(metrics, "cidwatch_cli_spam_risk_factor").items()}
    assert factors == expected.factors
    assert samples(metrics, "cidwatch_cli_answer_ratio") == {
        (("caller_id", "+14155550100"),): expected.inputs["answer_rate"]}
    assert samples(metrics, "cidwatch_cli_calls_today") == {(("caller_id", "+14155550100"), ("tenant", "acme")): 120}


def test_the_busiest_clis_keep_their_series_and_an_evicted_one_leaves_the_scrape():
    metrics = Metrics(cli_limit=2)
    metrics.record_calls([row("+33612345601", "a", 5), row("+33612345602", "a", 9)], lambda _s: None)
    metrics.record_calls([row("+33612345603", "a", 7)], lambda _s: None)  # evicts the quietest (5 calls)
    callers = {dict(labels)["caller_id"] for labels in samples(metrics, "cidwatch_cli_calls_today")}
    assert callers == {"+33612345602", "+33612345603"}
    assert {dict(labels)["caller_id"] for labels in samples(metrics, "cidwatch_cli_daily_cap")} == callers
    metrics.record_calls([row("+33612345604", "a", 1)], lambda _s: None)  # quieter than both: not admitted
    assert {dict(labels)["caller_id"] for labels in samples(metrics, "cidwatch_cli_calls_today")} == callers
