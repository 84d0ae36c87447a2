"""The shipped Prometheus and Alertmanager configs pass the projects' own checkers.

Skipped only when the Debian binaries are missing on a developer machine; under CI=true a missing
binary is a failure, so CI can never go green without having checked the configs.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from obs_harness import binary

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_alertmanager_config_is_valid() -> None:
    out = run(binary("amtool"), "check-config", "deploy/alertmanager.yml").stdout
    assert "SUCCESS" in out


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=fr.daily_limit", "severity=critical", "caller_id=+33123456789"], "compliance-oncall"),
        (["alertname=spam.label_risk", "severity=critical", "caller_id=+14155550100"], "compliance-oncall"),
        (["alertname=spam.label_risk", "severity=warning", "caller_id=+14155550100"],
         "compliance-chat-and-email"),
        (["alertname=us.cnam_missing", "severity=info", "caller_id=+14155550100"], "compliance-chat-and-email"),
        (["alertname=CidwatchWorkerDown", "severity=critical", "team=noc"], "noc-oncall"),
        (["alertname=CidwatchDLQGrowing", "severity=warning", "team=noc"], "noc-chat"),
        (["alertname=CidwatchWorkerWatchdog", "severity=none", "team=noc", "instance=w:6066"], "noc-watchdog"),
        # a tenant with its own team: its pages and warnings go to that team and the shared receivers
        (["alertname=fr.daily_limit", "severity=critical", "caller_id=+33123456789", "tenant=acme"],
         "tenant-acme-oncall compliance-oncall"),
        (["alertname=fr.daily_limit", "severity=critical", "caller_id=+33123456789", "tenant=globex"],
         "compliance-oncall"),
        (["alertname=us.cnam_missing", "severity=info", "tenant=acme"], "tenant-acme-chat compliance-chat-and-email"),
    ],
)
def test_alertmanager_routes(labels: list[str], receiver: str) -> None:
    out = run(binary("amtool"), "config", "routes", "test", "--config.file=deploy/alertmanager.yml", *labels).stdout
    assert out.strip().split(",") == receiver.split()


def test_alertmanager_groups_by_rule_and_tenant_and_holds_no_secret() -> None:
    config = yaml.safe_load((DEPLOY / "alertmanager.yml").read_text())
    assert config["route"]["group_by"] == ["alertname", "tenant"]  # a digest per rule and tenant
    oncall = next(r for r in config["receivers"] if r["name"] == "compliance-oncall")
    assert oncall["pagerduty_configs"][0]["routing_key_file"].startswith("/etc/alertmanager/secrets/")
    assert oncall["opsgenie_configs"][0]["api_key_file"].startswith("/etc/alertmanager/secrets/")
    for url in re.findall(r"https?://[^\s\"']+", (DEPLOY / "alertmanager.yml").read_text()):
        assert re.match(r"https?://[^/]*example\.(com|net|org)\b", url), url


def test_prometheus_config_is_valid() -> None:
    out = run(binary("promtool"), "check", "config", "deploy/prometheus.yml").stdout
    assert "SUCCESS" in out


def test_prometheus_config_scrapes_workers_and_alerts() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["cidwatch"]["static_configs"][0]["targets"] == ["worker:6066"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert config["rule_files"] == ["prometheus-rules.yml"]


def test_prometheus_rules_are_valid() -> None:
    out = run(binary("promtool"), "check", "rules", "deploy/prometheus-rules.yml").stdout
    assert "SUCCESS: 7 rules found" in out


def test_prometheus_rules_unit_tests_pass() -> None:
    """promtool evaluates each alert on synthetic series: fires when it should, not before."""
    run(binary("promtool"), "test", "rules", "deploy/prometheus-rules.test.yml")


def test_pipeline_alerts_and_their_runbooks() -> None:
    groups = yaml.safe_load((DEPLOY / "prometheus-rules.yml").read_text())["groups"]
    alerts = {rule["alert"]: rule for group in groups for rule in group["rules"]}
    assert set(alerts) == {"CidwatchWorkerDown", "CidwatchDLQGrowing", "CidwatchConsumerLagHigh",
                           "CidwatchWorkerStalled", "CidwatchInternalErrors", "CidwatchNoWorkerUp",
                           "CidwatchAlertmanagerPostsFailing"}
    assert alerts["CidwatchNoWorkerUp"]["expr"].startswith("absent(")
    failing = alerts["CidwatchAlertmanagerPostsFailing"]["expr"]
    assert 'cidwatch_alertmanager_posts_total{outcome=~"failed|refused"}' in failing
    assert "up" in alerts["CidwatchWorkerDown"]["expr"]
    assert "cidwatch_stalled" in alerts["CidwatchWorkerStalled"]["expr"]
    assert 'reason="internal_error"' in alerts["CidwatchInternalErrors"]["expr"]
    assert "cidwatch_dlq_records_total" in alerts["CidwatchDLQGrowing"]["expr"]
    assert "cidwatch_consumer_lag" in alerts["CidwatchConsumerLagHigh"]["expr"]
    base = "{{ with $externalLabels.runbook_base }}{{ . }}/{{ end }}"  # the API's address in the stack
    for name, rule in alerts.items():
        link = rule["annotations"]["runbook_url"]
        assert link.startswith(base) and (ROOT / link.removeprefix(base)).is_file(), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
    assert (ROOT / "docs" / "runbooks" / "CidwatchWorkerWatchdog.md").is_file()  # the worker posts that one
