"""The worker's metrics as real Prometheus scrapes them, and real Alertmanager routing and delivery.

Also the exposition itself (names, bounds, no destination label): what every scrape will see.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from obs_harness import (
    DEPLOY,
    alertmanager_config_to_webhooks,
    fill,
    get_json,
    label_values,
    promql_regex,
    query,
    start_alertmanager,
    start_prometheus,
)

from dashboards.build import annotation_queries, panel_queries, variable_queries
from rules.pack import load_packs
from rules.risk import RiskScore
from streams.metrics import CONTENT_TYPE, Metrics

CONTRACT_NAMES = (
    "cidwatch_calls_total", "cidwatch_call_talk_time_seconds_bucket", "cidwatch_call_sip_final_total",
    "cidwatch_call_analytics_rejections_total", "cidwatch_decisions_total", "cidwatch_active_blocks",
    "cidwatch_cli_calls_today", "cidwatch_cli_daily_cap", "cidwatch_cli_answer_ratio",
    "cidwatch_cli_short_call_ratio", "cidwatch_cli_spam_risk_score", "cidwatch_cli_spam_risk_factor",
    "cidwatch_records_processed_total", "cidwatch_dlq_records_total", "cidwatch_decision_latency_seconds_bucket",
    "cidwatch_consumer_lag", "cidwatch_rebalances_total", "cidwatch_worker_info", "cidwatch_tenant_overflow_total",
    "cidwatch_block_since_timestamp_seconds", "cidwatch_block_until_timestamp_seconds", "cidwatch_blocks_unlisted",
    "cidwatch_rule_threshold",
)
TENANT_DASHBOARDS = ("cidwatch-delivery", "cidwatch-spam-risk", "cidwatch-compliance")
RISK = RiskScore(92.5, {"volume": 20.0, "burst": 15.0, "answer_rate": 20.0, "short_calls": 15.0,
                        "rejections": 7.5, "attestation": 10.0, "distinct_destinations": 5.0})


ACME_CLIS = ("+33123456789", "+33123456780")
GLOBEX_CLIS = ("+33412345678", "+14155550177")


def synthetic_metrics() -> Metrics:
    """A worker's view after a little traffic: 3 answered and 2 unanswered FR->FR calls for acme, one
    rejected US call without a tenant, and for globex the same kinds of traffic in other amounts, so
    that every family a tenant dashboard reads has series of two tenants."""
    metrics = Metrics(version="0.1.0-test")
    metrics.set_rules(load_packs().rules.values())
    for duration in (12.0, 45.0, 300.0):
        metrics.record_call("outbound", "FR", "FR", True, "acme", duration, 200)
    metrics.record_call("outbound", "FR", "FR", False, "acme", 0.0, 486)
    metrics.record_call("outbound", "US", "US", False, "", 0.0, 608)
    metrics.record_decision({"rule": "fr.daily_limit", "kind": "block", "severity": "critical", "tenant": "acme"})
    metrics.record_decision({"rule": "spam.label_risk", "kind": "alert", "severity": "critical", "tenant": "acme"})
    metrics.set_cli("+33123456789", "acme", 251, 250, 0.6, 0.1, RISK)
    metrics.set_cli("+33123456780", "acme", 12, 250, 0.9, 0.0, RISK)
    metrics.set_cli("+14155550100", "", 400, 100, 0.1, 0.75, RISK)
    metrics.set_blocks("+33123456789", [{"rule": "fr.daily_limit", "caller_id": "+33123456789", "tenant": "acme",
                                         "at": "2026-03-02T15:00:00Z", "until": "2026-03-02T23:00:00Z",
                                         "scope": {}}])
    for duration in (5.0, 8.0):
        metrics.record_call("outbound", "FR", "DE", True, "globex", duration, 200)
    for code in (603, 607, 480):
        metrics.record_call("outbound", "FR", "DE", False, "globex", 0.0, code)
    metrics.record_decision({"rule": "fr.daily_limit", "kind": "block", "severity": "critical", "tenant": "globex"})
    metrics.record_decision({"rule": "cli.not_authorized", "kind": "block", "severity": "critical",
                             "tenant": "globex"})
    metrics.set_cli("+33412345678", "globex", 260, 250, 0.2, 0.5, RISK)
    metrics.set_cli("+14155550177", "globex", 90, None, 0.3, 0.4, RISK)
    metrics.set_blocks("+33412345678", [{"rule": "fr.daily_limit", "caller_id": "+33412345678", "tenant": "globex",
                                         "at": "2026-03-02T14:00:00Z", "until": None, "scope": {}},
                                        {"rule": "cli.not_authorized", "caller_id": "+33412345678",
                                         "tenant": "globex", "at": "2026-03-02T14:30:00Z", "until": None,
                                         "scope": {}}])
    metrics.record_processed("cdr")
    metrics.record_dlq("not_json")
    metrics.observe_latency(0.2)
    metrics.set_lag("cidwatch.cdr", 0, 50_000)
    metrics.record_rebalance()
    return metrics


# --- small HTTP servers the tests run -------------------------------------------------------------


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, int(server.server_address[1])


@pytest.fixture
def worker_endpoint() -> Iterator[tuple[Metrics, str]]:
    """The worker's /metrics: `Metrics.exposition()` behind a loopback HTTP server."""
    metrics = synthetic_metrics()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = metrics.exposition()
            self.send_response(200 if self.path.startswith("/metrics") else 404)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server, port = serve(Handler)
    yield metrics, f"127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


def post_json(url: str, payload: Any) -> int:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return int(response.status)


def eventually(probe: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll until `probe` returns something truthy: scrapes and notifications are asynchronous."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


# --- real Prometheus --------------------------------------------------------------------------------


def test_prometheus_scrapes_recorded_counters(tmp_path: Path, worker_endpoint: tuple[Metrics, str]) -> None:
    metrics, target = worker_endpoint
    url, stop = start_prometheus(tmp_path, [target], [DEPLOY / "prometheus-rules.yml"])
    try:
        answered = eventually(
            lambda: query(url, 'sum(cidwatch_calls_total{tenant="acme", outcome="answered"})'),
            what="the answered-call counter in Prometheus",
        )
        assert float(answered[0]["value"][1]) == 3.0
        assert query(url, 'up{job="cidwatch"}')[0]["value"][1] == "1"
        # a call recorded after the first scrape shows up on a later one
        metrics.record_call("outbound", "FR", "FR", True, "acme", 30.0, 200)
        eventually(lambda: query(url, 'sum(cidwatch_calls_total{tenant="acme", outcome="answered"}) == 4'),
                   what="the fourth answered call")
        rejections = query(url, 'cidwatch_call_analytics_rejections_total{sip_code="608"}')
        assert {r["metric"]["tenant"]: r["value"][1] for r in rejections} == {"none": "1", "acme": "0", "globex": "0"}
        names = set(get_json(f"{url}/api/v1/label/__name__/values")["data"])
        assert set(CONTRACT_NAMES) <= names
        risk = query(url, 'cidwatch_cli_spam_risk_factor{caller_id="+14155550100", factor="rejections"}')
        assert risk[0]["value"][1] == "7.5"
    finally:
        stop()


def test_prometheus_evaluates_the_pipeline_rules(tmp_path: Path, worker_endpoint: tuple[Metrics, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/prometheus-rules.yml loads in the real server, and lag above 10000 starts the alert, whose
    runbook link is under the deployment's runbook base (the check API serves the runbooks)."""
    _, target = worker_endpoint
    monkeypatch.setenv("CIDWATCH_RUNBOOK_BASE_URL", "http://noc.example:8066")
    url, stop = start_prometheus(tmp_path, [target], [DEPLOY / "prometheus-rules.yml"])
    try:
        def lag_alert() -> list[dict[str, Any]]:
            alerts = get_json(f"{url}/api/v1/alerts")["data"]["alerts"]
            return [a for a in alerts if a["labels"]["alertname"] == "CidwatchConsumerLagHigh"]

        alert = eventually(lag_alert, what="CidwatchConsumerLagHigh pending")[0]
        assert alert["state"] == "pending"  # `for: 10m` has not elapsed
        assert alert["labels"]["topic"] == "cidwatch.cdr" and alert["labels"]["severity"] == "warning"
        assert alert["annotations"]["runbook_url"] == "http://noc.example:8066/docs/runbooks/CidwatchConsumerLagHigh.md"
        groups = get_json(f"{url}/api/v1/rules")["data"]["groups"]
        rules = {r["name"]: r for g in groups for r in g["rules"]}
        assert set(rules) == {"CidwatchWorkerDown", "CidwatchDLQGrowing", "CidwatchConsumerLagHigh",
                              "CidwatchWorkerStalled", "CidwatchInternalErrors", "CidwatchNoWorkerUp",
                              "CidwatchAlertmanagerPostsFailing"}
        eventually(lambda: all(r.get("health") == "ok" for r in _rules(url)), what="rules evaluated healthy")
    finally:
        stop()


def more_decisions(metrics: Metrics) -> None:
    """Blocks and unblocks decided while Prometheus scrapes: what the annotations and the decision
    panels count (an `increase` needs two samples of a counter)."""
    for tenant in ("acme", "globex"):
        for kind in ("block", "unblock"):
            metrics.record_decision({"rule": "fr.daily_limit", "kind": kind, "severity": "critical", "tenant": tenant})


def test_every_dashboard_query_returns_data(tmp_path: Path, worker_endpoint: tuple[Metrics, str]) -> None:
    """Every panel's and annotation's PromQL, variables filled from real label values (never a bare
    .*), returns series from a real Prometheus scraping the worker's exposition."""
    metrics, target = worker_endpoint
    url, stop = start_prometheus(tmp_path, [target])
    try:
        eventually(lambda: query(url, "count_over_time(up[1m]) >= 3"), what="three scrapes")
        more_decisions(metrics)
        eventually(lambda: query(url, "increase(cidwatch_decisions_total[15s]) > 0"), what="decisions scraped")
        variables: dict[str, dict[str, str]] = {}
        for uid, name, text in variable_queries():
            values = label_values(url, text, variables.setdefault(uid, {}))
            assert values, f"{uid}: variable {name} has no values ({text})"
            variables[uid][name] = promql_regex(values)
        for uid in variables:
            variables[uid]["runbook_base"] = "https://git.example.com/cidwatch"
        empty = [(uid, title, fill(expr, variables[uid])) for uid, title, expr in [*panel_queries(),
                                                                                   *annotation_queries()]
                 if not query(url, fill(expr, variables[uid]))]
        assert empty == []
    finally:
        stop()


def test_each_panel_with_a_tenant_selected_shows_only_that_tenant(
        tmp_path: Path, worker_endpoint: tuple[Metrics, str]) -> None:
    """Issue 11: every panel (and annotation) of the tenant dashboards, run on a real Prometheus with one
    tenant selected in the Tenant variable the way Grafana fills it, returns data, and every series it
    returns is that tenant's (its tenant label, or its caller ID); with a tenant that has no traffic
    selected, it returns nothing, so no panel reads a series of another tenant."""
    metrics, target = worker_endpoint
    url, stop = start_prometheus(tmp_path, [target])
    own = {"acme": set(ACME_CLIS), "globex": set(GLOBEX_CLIS)}
    try:
        eventually(lambda: query(url, "count_over_time(up[1m]) >= 3"), what="three scrapes")
        more_decisions(metrics)
        eventually(lambda: query(url, "increase(cidwatch_decisions_total[15s]) > 0"), what="decisions scraped")
        panels: dict[tuple[str, str], list[str]] = {}
        for uid, title, expr in [*panel_queries(), *annotation_queries()]:
            if uid in TENANT_DASHBOARDS:
                panels.setdefault((uid, title), []).append(expr)
        assert len(panels) == 15 + 6  # every panel, and two annotations a dashboard
        for tenant in ("acme", "globex"):
            chosen = {"tenant": promql_regex([tenant]), "runbook_base": ""}
            chosen["caller_id"] = promql_regex(label_values(
                url, 'label_values(cidwatch_cli_calls_today{tenant=~"$tenant"}, caller_id)', chosen))
            chosen["rule"] = promql_regex(label_values(url, "label_values(cidwatch_decisions_total, rule)", chosen))
            nobody = {**chosen, "tenant": "nobody", "caller_id": ".*"}
            for (uid, title), exprs in panels.items():
                found = [series for expr in exprs for series in query(url, fill(expr, chosen))]
                assert found, (tenant, uid, title)
                for series in found:
                    labels = series["metric"]
                    assert labels.get("tenant", tenant) == tenant, (tenant, uid, title, labels)
                    assert labels.get("caller_id", next(iter(own[tenant]))) in own[tenant], (tenant, uid, title)
                for expr in exprs:
                    if "cidwatch_rule_threshold" in expr:
                        continue  # the French cap: the pack's, the same for every tenant
                    assert query(url, fill(expr, nobody)) == [], (uid, title, "series of other tenants")
    finally:
        stop()


def _rules(url: str) -> list[dict[str, Any]]:
    return [r for g in get_json(f"{url}/api/v1/rules")["data"]["groups"] for r in g["rules"]]


# --- real Alertmanager -------------------------------------------------------------------------------


def am_alert(rule: str, severity: str, caller_id: str, ends: datetime, tenant: str = "globex") -> dict[str, Any]:
    """An alert as the worker posts it to /api/v2/alerts."""
    return {
        "labels": {"alertname": rule, "severity": severity, "caller_id": caller_id, "tenant": tenant},
        "annotations": {"summary": f"{rule} on {caller_id}", "source": "test",
                        "runbook_url": f"docs/runbooks/{rule}.md"},
        "startsAt": (ends - timedelta(hours=1)).isoformat(),
        "endsAt": ends.isoformat(),
    }


def test_alertmanager_routes_and_delivers(
    tmp_path: Path, webhook: tuple[str, list[tuple[str, dict[str, Any]]]]
) -> None:
    """The shipped route tree, in the real server: critical pages on-call, warnings go to chat and
    e-mail, a tenant with its own team gets its own, one page is a digest of a rule's caller IDs for
    one tenant, and a resolved block is notified as resolved."""
    hook, received = webhook
    config_path = tmp_path / "alertmanager.yml"
    config_path.write_text(yaml.safe_dump(alertmanager_config_to_webhooks(hook)))
    url, stop = start_alertmanager(tmp_path, config_path)
    try:
        later = datetime.now(UTC) + timedelta(hours=1)
        block = am_alert("fr.daily_limit", "critical", "+33123456789", later)
        warning = am_alert("spam.label_risk", "warning", "+14155550100", later)
        siblings = [am_alert("fr.daily_limit", "critical", f"+3312345679{n}", later) for n in range(3)]
        acme = [am_alert("fr.daily_limit", "critical", f"+3312345680{n}", later, tenant="acme") for n in range(2)]
        assert post_json(f"{url}/api/v2/alerts", [block, warning, *siblings, *acme]) == 200

        def delivered(path: str, status: str) -> list[dict[str, Any]]:
            return [p for got, p in received if got == path and p["status"] == status]

        def digest(path: str, tenant: str) -> list[dict[str, Any]]:
            return [p for p in delivered(path, "firing") if p["groupLabels"]["tenant"] == tenant]

        page = eventually(lambda: digest("/hook/compliance-oncall", "globex"), what="page")[0]
        assert page["receiver"] == "compliance-oncall"
        assert page["groupLabels"] == {"alertname": "fr.daily_limit", "tenant": "globex"}
        # one digest for the rule and tenant, listing its four caller IDs
        assert sorted(a["labels"]["caller_id"] for a in page["alerts"]) == sorted(
            a["labels"]["caller_id"] for a in [block, *siblings])
        assert {a["annotations"]["runbook_url"] for a in page["alerts"]} == {"docs/runbooks/fr.daily_limit.md"}
        assert len(digest("/hook/compliance-oncall", "globex")) == 1
        theirs = eventually(lambda: delivered("/hook/tenant-acme-oncall", "firing"), what="acme's page")[0]
        assert theirs["groupLabels"] == {"alertname": "fr.daily_limit", "tenant": "acme"}
        assert len(theirs["alerts"]) == 2
        shared = eventually(lambda: digest("/hook/compliance-oncall", "acme"), what="acme's page, shared")[0]
        assert len(shared["alerts"]) == 2
        chat = eventually(lambda: delivered("/hook/compliance-chat-and-email", "firing"), what="chat")[0]
        assert chat["alerts"][0]["labels"]["alertname"] == "spam.label_risk"

        listed = get_json(f"{url}/api/v2/alerts")
        receivers = {(a["labels"]["alertname"], a["labels"]["tenant"]): [r["name"] for r in a["receivers"]]
                     for a in listed}
        assert receivers == {("fr.daily_limit", "globex"): ["compliance-oncall"],
                             ("fr.daily_limit", "acme"): ["tenant-acme-oncall", "compliance-oncall"],
                             ("spam.label_risk", "globex"): ["compliance-chat-and-email"]}

        # the unblock: the same alert posted again with endsAt now resolves it
        assert post_json(f"{url}/api/v2/alerts", [{**block, "endsAt": datetime.now(UTC).isoformat()}]) == 200
        def resolved_ids() -> set[str]:
            return {a["labels"]["caller_id"] for p in digest("/hook/compliance-oncall", "globex")
                    for a in p["alerts"] if a["status"] == "resolved"}

        eventually(lambda: "+33123456789" in resolved_ids(), what="resolution")
    finally:
        stop()


# --- the exposition every scrape sees -------------------------------------------------------------


def exposition_lines(metrics: Metrics) -> list[str]:
    return [line for line in metrics.exposition().decode().splitlines() if line and not line.startswith("#")]


def test_exposition_has_no_destination_label() -> None:
    text = synthetic_metrics().exposition().decode()
    assert "destination=" not in text and "called" not in text
    assert 'destination_country="FR"' in text


def test_per_cli_series_are_bounded_to_the_busiest() -> None:
    metrics = Metrics(cli_limit=2)
    metrics.set_cli("+33100000001", "acme", 10, 250, 0.5, 0.1, RISK)
    metrics.set_cli("+33100000002", "acme", 30, 250, 0.5, 0.1, RISK)
    metrics.set_cli("+33100000003", "acme", 5, 250, 0.5, 0.1, RISK)  # quieter than both: not admitted
    metrics.set_cli("+33100000004", "acme", 20, 250, 0.5, 0.1, RISK)  # evicts ...0001
    assert metrics.tracked_clis == ["+33100000002", "+33100000004"]
    text = "\n".join(exposition_lines(metrics))
    for gone in ("+33100000001", "+33100000003"):
        assert gone not in text  # every per-CLI series of an evicted CLI is removed
    assert text.count('caller_id="+33100000004"') == 5 + 7  # 5 gauges + 7 risk factors


def test_per_cli_series_follow_the_inventory() -> None:
    metrics = Metrics(inventory={"+33100000001"})
    metrics.set_cli("+33100000001", "acme", 10, 250, 0.5, 0.1, None)
    metrics.set_cli("+33100000002", "acme", 900, 250, 0.5, 0.1, None)
    assert metrics.tracked_clis == ["+33100000001"]
    metrics.set_inventory(set())
    assert metrics.tracked_clis == []
    assert "caller_id" not in "\n".join(exposition_lines(metrics))


def test_tenant_change_moves_the_calls_today_series() -> None:
    metrics = Metrics()
    metrics.set_cli("+33100000001", "acme", 10, None, 0.5, 0.1, None)
    metrics.set_cli("+33100000001", "globex", 11, None, 0.5, 0.1, None)
    today = [line for line in exposition_lines(metrics) if line.startswith("cidwatch_cli_calls_today")]
    assert today == ['cidwatch_cli_calls_today{caller_id="+33100000001",tenant="globex"} 11.0']


def test_free_text_labels_are_bounded() -> None:
    metrics = Metrics()
    for i in range(100):
        metrics.record_dlq(f"reason_{i}")
        metrics.record_processed(f"raw.fmt{i}")
    metrics.record_dlq("Not a <class>!")
    metrics.record_call("sideways", "France", None, False, None, 0.0, 999)
    lines = exposition_lines(metrics)
    assert len([line for line in lines if line.startswith("cidwatch_dlq_records_total{")]) == 32 + 1  # + other
    assert len([line for line in lines if line.startswith("cidwatch_records_processed_total{")]) == 32 + 1
    assert ('cidwatch_calls_total{caller_country="unknown",destination_country="unknown",direction="other",'
            'outcome="unanswered",tenant="none"} 1.0') in lines
    assert 'cidwatch_call_sip_final_total{sip_class="none",tenant="none"} 1.0' in lines
