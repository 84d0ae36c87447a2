"""The worker's metrics as units: bounded labels, and per-caller-ID rows scored when they are read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from rules.pack import load_packs
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
    cli = (("caller_id", "+14155550100"), ("tenant", "acme"))
    assert samples(metrics, "cidwatch_cli_spam_risk_score") == {cli: expected.score}
    factors = {dict(labels)["factor"]: value
               for labels, value in samples(metrics, "cidwatch_cli_spam_risk_factor").items()}
    assert factors == expected.factors
    assert samples(metrics, "cidwatch_cli_answer_ratio") == {cli: expected.inputs["answer_rate"]}
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


def block(rule: str, caller_id: str, tenant: str | None, at: str, until: str | None = None,
          scope: dict | None = None) -> dict:
    """A block as the state keeps it (its decision's dict)."""
    return {"kind": "block", "rule": rule, "caller_id": caller_id, "tenant": tenant, "at": at, "until": until,
            "scope": scope or {}, "severity": "critical"}


def test_blocks_in_force_are_set_from_state_per_rule_and_tenant():
    metrics = Metrics()
    metrics.set_blocks("+33100000001", [block("fr.daily_limit", "+33100000001", "acme", "2026-03-02T09:00:00Z",
                                              "2026-03-02T23:00:00Z")])
    metrics.set_blocks("+61200000001", [block("au.cli_not_permitted", "+61200000001", None, "2026-03-02T08:00:00Z",
                                              scope={"destination_country": "AU"})])
    metrics.set_blocks("+61200000001", [block("au.cli_not_permitted", "+61200000001", None, "2026-03-02T08:00:00Z",
                                              scope={"destination_country": "AU"})])  # set again: not twice
    active = {tuple(sorted(dict(k).items())): v for k, v in samples(metrics, "cidwatch_active_blocks").items()}
    assert active == {(("rule", "au.cli_not_permitted"), ("tenant", "none")): 1,
                      (("rule", "fr.daily_limit"), ("tenant", "acme")): 1}
    since = samples(metrics, "cidwatch_block_since_timestamp_seconds")
    assert since == {
        (("caller_id", "+33100000001"), ("rule", "fr.daily_limit"), ("scope", ""), ("tenant", "acme")):
            datetime(2026, 3, 2, 9, tzinfo=UTC).timestamp(),
        (("caller_id", "+61200000001"), ("rule", "au.cli_not_permitted"), ("scope", "destination_country=AU"),
         ("tenant", "none")): datetime(2026, 3, 2, 8, tzinfo=UTC).timestamp(),
    }
    until = samples(metrics, "cidwatch_block_until_timestamp_seconds")
    assert list(until.values()) == [datetime(2026, 3, 2, 23, tzinfo=UTC).timestamp()]  # the other lasts until cleared
    metrics.set_blocks("+33100000001", [])  # unblocked: the pair stays, at 0, and its row leaves the table
    assert samples(metrics, "cidwatch_active_blocks")[(("rule", "fr.daily_limit"), ("tenant", "acme"))] == 0
    assert len(samples(metrics, "cidwatch_block_since_timestamp_seconds")) == 1
    metrics.clear_blocks()
    assert set(samples(metrics, "cidwatch_active_blocks").values()) == {0}


def test_the_block_table_lists_the_newest_up_to_the_limit_and_counts_the_rest():
    metrics = Metrics(cli_limit=2)
    for day in range(1, 6):
        cli = f"+3310000000{day}"
        metrics.set_blocks(cli, [block("cli.not_authorized", cli, "acme", f"2026-03-0{day}T09:00:00Z")])
    listed = {dict(k)["caller_id"] for k in samples(metrics, "cidwatch_block_since_timestamp_seconds")}
    assert listed == {"+33100000005", "+33100000004"}
    assert samples(metrics, "cidwatch_blocks_unlisted") == {(): 3}
    assert samples(metrics, "cidwatch_active_blocks") == {(("rule", "cli.not_authorized"), ("tenant", "acme")): 5}


def test_a_consumer_scope_never_reaches_a_label():
    metrics = Metrics()
    metrics.set_blocks("+33100000001", [block("x.keyed", "+33100000001", "acme", "2026-03-02T09:00:00Z",
                                              scope={"consumer": "9f86d081884c7d65", "purpose": "telemarketing"})])
    labels = dict(next(iter(samples(metrics, "cidwatch_block_since_timestamp_seconds"))))
    assert labels["scope"] == "consumer=…,purpose=telemarketing"


def test_inventory_tenants_come_first_and_overflow_is_counted():
    metrics = Metrics(tenant_limit=2)
    metrics.set_inventory(["+33100000001"], ["zeta", None, "zeta"])
    rows = [row("+33612345678", tenant, 1) for tenant in ("alpha", "beta", "gamma", "zeta", None)]
    metrics.record_calls(rows, lambda _subject: None)
    by_tenant = {dict(labels)["tenant"]: value for labels, value in samples(metrics, "cidwatch_calls_total").items()}
    assert by_tenant == {"zeta": 1, "alpha": 1, "other": 3}  # beta, gamma and the tenant-less call
    metrics.record_decision({"rule": "cli.invalid", "kind": "alert", "severity": "warning", "tenant": "beta"})
    metrics.record_decision({"rule": "cli.invalid", "kind": "alert", "severity": "warning", "tenant": "zeta"})
    assert samples(metrics, "cidwatch_tenant_overflow_total") == {(): 4}
    decisions = {dict(k)["tenant"] for k in samples(metrics, "cidwatch_decisions_total")}
    assert decisions == {"other", "zeta"}


def test_every_per_cli_series_carries_the_tenant_and_thresholds_are_published():
    metrics = Metrics()
    metrics.set_cli("+33100000001", "acme", 10, 250, 0.5, 0.1, None)
    for name in ("cidwatch_cli_calls_today", "cidwatch_cli_daily_cap", "cidwatch_cli_answer_ratio",
                 "cidwatch_cli_short_call_ratio"):
        assert [dict(k)["tenant"] for k in samples(metrics, name)] == ["acme"], name
    metrics.set_rules(load_packs().rules.values())
    thresholds = {tuple(v for _, v in k): value for k, value in samples(metrics, "cidwatch_rule_threshold").items()}
    daily = load_packs().get("fr.daily_limit")
    for threshold in daily.thresholds:  # read from the pack, as the worker loads it
        assert thresholds[(threshold.kind, "fr.daily_limit", threshold.severity)] == threshold.at
