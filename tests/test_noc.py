"""The NOC view on real servers: a worker on simulated traffic (real broker), scraped by a real
Prometheus with the repo's rules, paging a real Alertmanager with the repo's routes.

Every PromQL expression of every dashboard panel must return data, with template variables filled
from real label values and Grafana's interval variables at stated values (obs_harness.GRAFANA_INTERVALS).
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml
from obs_harness import (
    alertmanager_config_to_webhooks,
    fill,
    get_json,
    label_values,
    promql_regex,
    query,
    start_alertmanager,
    start_prometheus,
)
from stream_harness import ROOT, Worker, cidwatch, decisions, env_for, wait_for

from cidwatch.dev.simulate import sim_plan
from dashboards.build import panel_queries, variable_queries

pytestmark = pytest.mark.kafka
SEED = 11
RULES = ROOT / "deploy" / "prometheus-rules.yml"


def test_dashboards_alerts_and_paging_on_a_real_worker(kafka_bootstrap, topic_prefix, tmp_path, webhook):
    hook, received = webhook
    for name in ("am", "prom"):
        (tmp_path / name).mkdir()
    am_config = tmp_path / "alertmanager.yml"
    am_config.write_text(yaml.safe_dump(alertmanager_config_to_webhooks(hook)))
    am_url, stop_am = start_alertmanager(tmp_path / "am", am_config)
    inventory = tmp_path / "inventory.yaml"
    cidwatch(kafka_bootstrap, topic_prefix, "topics", "create", "--partitions", "4")
    cidwatch(
        kafka_bootstrap,
        topic_prefix,
        "simulate",
        "--seed",
        SEED,
        "--write-inventory",
        inventory,
        "--duration",
        0.1,
        "--rate",
        1,
    )
    worker = Worker(
        kafka_bootstrap,
        topic_prefix,
        tmp_path / "w1",
        "--partitions",
        "4",
        "--inventory",
        inventory,
        "--alertmanager-url",
        am_url,
        "--alert-repost",
        "2",
    ).start()
    prom_url, stop_prom = start_prometheus(tmp_path / "prom", [f"127.0.0.1:{worker.web_port}"], [RULES])
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cidwatch",
            "simulate",
            "--seed",
            str(SEED),
            "--rate",
            "30",
            "--duration",
            "55",
            "--speed",
            "60",
        ],
        env=env_for(kafka_bootstrap, topic_prefix),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        plan = sim_plan(SEED)
        got = wait_for(
            lambda: (
                lambda ds: ds if any(d["kind"] == "unblock" and d["rule"] == "fr.daily_limit" for d in ds) else None
            )(decisions(kafka_bootstrap, topic_prefix)),
            120,
            "the French CLI's block and its unblock",
            worker,
        )
        rules_seen = {d["rule"] for d in got}
        assert "spam.label_risk" in rules_seen
        time.sleep(5)  # a few more scrapes while traffic still flows

        # The simulator's robocall-like CLI scores high in the stream.
        robo = query(prom_url, f'cidwatch_cli_spam_risk_score{{caller_id="{plan.robocaller.number}"}}')
        assert robo and float(robo[0]["value"][1]) >= 70, robo

        # Every panel's query returns data, variables filled from the real label values.
        variables: dict[str, dict[str, str]] = {}
        for uid, name, text in variable_queries():
            values = label_values(prom_url, text, variables.setdefault(uid, {}))
            assert values, f"{uid}: variable {name} has no values ({text})"
            variables[uid][name] = promql_regex(values)
        # A panel has data when one of its targets does (the blocks table's `until` is empty while
        # every block in force lasts until cleared).
        targets: dict[tuple[str, str], list[str]] = {}
        for uid, title, expr in panel_queries():
            targets.setdefault((uid, title), []).append(fill(expr, variables[uid]))
        empty = [panel for panel, exprs in targets.items() if not any(query(prom_url, e) for e in exprs)]
        assert empty == []

        # Alertmanager lists the worker's alerts with the right labels ...
        listed = get_json(f"{am_url}/api/v2/alerts?active=true")
        names = {a["labels"]["alertname"] for a in listed}
        assert {"us.tollfree_to_tollfree", "uk.cli_not_permitted", "cli.not_authorized", "spam.label_risk"} <= names
        tollfree = next(a for a in listed if a["labels"]["alertname"] == "us.tollfree_to_tollfree")
        assert tollfree["labels"]["severity"] == "critical" and tollfree["labels"]["caller_id"].startswith("+1")
        assert tollfree["annotations"]["runbook_url"].endswith("docs/runbooks/us.tollfree_to_tollfree.md")
        assert tollfree["annotations"]["summary"].startswith(tollfree["labels"]["caller_id"])
        assert tollfree["annotations"]["description"]
        watchdog = [a for a in listed if a["labels"]["alertname"] == "CidwatchWorkerWatchdog"]
        assert len(watchdog) == 1 and watchdog[0]["labels"]["team"] == "noc"

        # Tenants reach the worker's metrics: blocks in force per tenant, one row per block, the cap.
        blocked = {r["metric"]["tenant"] for r in query(prom_url, "cidwatch_active_blocks > 0")}
        assert blocked and blocked <= {"acme", "globex", "initech"}, blocked
        rows = query(prom_url, "cidwatch_block_since_timestamp_seconds")
        assert rows and all(r["metric"]["tenant"] in blocked for r in rows)
        cap = query(prom_url, 'cidwatch_rule_threshold{rule="fr.daily_limit", kind="block"}')
        assert [float(c["value"][1]) for c in cap] == [250.0]
        assert query(prom_url, 'cidwatch_alertmanager_posts_total{outcome="ok"} > 0')
        # ... routes a critical one to the on-call webhook ...
        paged = wait_for(lambda: [p for path, p in received if path == "/hook/compliance-oncall"], 30, "a page")
        assert all(a["labels"]["severity"] == "critical" for p in paged for a in p["alerts"])
        # ... and shows a block resolved after its unblock (an operator's clear of the UK 0870 CLI).
        uk = plan.uk_0870.number
        cidwatch(kafka_bootstrap, topic_prefix, "blocks", "clear", uk)

        def resolved() -> list:
            return [
                a
                for path, p in received
                for a in p["alerts"]
                if a["labels"].get("alertname") == "uk.cli_not_permitted"
                and a["labels"].get("caller_id") == uk
                and a["status"] == "resolved"
                and path == "/hook/compliance-oncall"
            ]

        assert wait_for(resolved, 60, "the UK block resolved in Alertmanager", worker)
        active = get_json(f"{am_url}/api/v2/alerts?active=true")
        assert not [a for a in active if a["labels"]["alertname"] == "uk.cli_not_permitted"]

        # The worker stops: its blocks are still in force on the topic, so Alertmanager keeps them
        # firing past the worker's re-post rhythm, while the worker's watchdog resolves.
        blocks = {a["fingerprint"] for a in active if a["labels"]["severity"] == "critical"
                  and a["labels"]["alertname"] in ("cli.not_authorized", "us.tollfree_to_tollfree")}
        assert blocks
        simulator.kill()
        worker.stop()
        stopped = wait_for(lambda: [a for path, p in received if path == "/hook/noc-watchdog"
                                    for a in p["alerts"] if a["status"] == "resolved"], 60, "the watchdog resolved")
        assert stopped[0]["labels"]["alertname"] == "CidwatchWorkerWatchdog"
        still = {a["fingerprint"] for a in get_json(f"{am_url}/api/v2/alerts?active=true")}
        assert blocks <= still
    finally:
        simulator.kill()
        simulator.wait(10)
        worker.stop()
        stop_prom()
        stop_am()
