"""streams.alerting.AlertPoster against a real Alertmanager (Debian `prometheus-alertmanager`).

Why a real server: what "resolved", "re-posted" and "idempotent" mean is decided by Alertmanager's
merge of alerts with equal labels, which an imitation would only restate. The server runs the
shipped route tree (deploy/alertmanager.yml) with every receiver turned into a webhook the test
serves, so a page shows up at /hook/tenant-acme-oncall. Intervals are shortened: re-post every 1 s,
back-off between 0.1 and 0.5 s, group_wait/group_interval 1 s.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from obs_harness import alertmanager_config_to_webhooks, binary, free_port, start_alertmanager, wait_ready

from rules.cdr import iso_utc
from rules.decision import decision_id
from streams.alerting import AlertPoster, alert_labels, backoff_delay, runbook_url

Received = list[tuple[str, dict[str, Any]]]
FAST = {"repost_seconds": 1.0, "timeout": 2.0, "max_backoff": 0.5, "min_backoff": 0.1}


# --- fixtures: the webhook the test runs, Alertmanager with the shipped routes ---------------------


def am_config(tmp_path: Path, hook: str) -> Path:
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(alertmanager_config_to_webhooks(hook)))
    return path


@pytest.fixture
def alertmanager(tmp_path: Path, webhook: tuple[str, Received]) -> Iterator[tuple[str, Received]]:
    url, stop = start_alertmanager(tmp_path, am_config(tmp_path, webhook[0]))
    yield url, webhook[1]
    stop()


# --- helpers -----------------------------------------------------------------------------------------


def decision(kind: str, rule: str, severity: str, caller_id: str, at: datetime, *, until: datetime | None = None,
             scope: dict[str, str] | None = None, tenant: str | None = "acme", message: str = "") -> dict[str, Any]:
    """A decision as the engine writes it (Decision.to_dict())."""
    return {
        "id": decision_id(kind, rule, severity, caller_id, json.dumps(scope or {}), iso_utc(at)),
        "kind": kind, "rule": rule, "severity": severity, "caller_id": caller_id, "call_id": "c-1",
        "tenant": tenant, "at": iso_utc(at), "scope": scope or {}, "until": None if until is None else iso_utc(until),
        "count": 1, "threshold": None, "message": message or f"{rule} {kind} on {caller_id}",
        "source": f"source of {rule}",
    }


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def active(url: str, caller_id: str) -> list[dict[str, Any]]:
    """Alerts Alertmanager lists (GET /api/v2/alerts: active, not resolved) for one caller ID."""
    return [a for a in get_json(f"{url}/api/v2/alerts") if a["labels"].get("caller_id") == caller_id]


def delivered(received: Received, path: str, status: str, caller_id: str) -> list[dict[str, Any]]:
    return [alert for got, payload in received if got == path and payload["status"] == status
            for alert in payload["alerts"] if alert["labels"]["caller_id"] == caller_id]


async def eventually(probe: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll without blocking the loop the poster runs on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def run_with(poster: AlertPoster, body: Callable[[AlertPoster], Awaitable[None]]) -> None:
    async def main() -> None:
        await poster.start()
        try:
            await body(poster)
        finally:
            await poster.stop()

    asyncio.run(main())


# --- against a real Alertmanager ------------------------------------------------------------------------


def test_block_fires_pages_and_its_unblock_resolves(alertmanager: tuple[str, Received]) -> None:
    url, received = alertmanager
    now = datetime.now(UTC).replace(microsecond=0)
    cli = "+33162000010"
    block = decision("block", "fr.daily_limit", "critical", cli, now - timedelta(minutes=5),
                     message="251 calls today from +33162000010 (cap 250)")
    unblock = {**decision("unblock", "fr.daily_limit", "critical", cli, now), "message": "cleared by an operator"}
    results: list[bool] = []

    async def body(poster: AlertPoster) -> None:
        poster.submit(block)
        listed = (await eventually(lambda: active(url, cli), what="the block listed"))[0]
        assert listed["labels"] == {"alertname": "fr.daily_limit", "severity": "critical", "caller_id": cli,
                                    "tenant": "acme"}
        assert listed["annotations"] == {
            "summary": f"{cli} blocked by fr.daily_limit, tenant acme",
            "description": f"251 calls today from {cli} (cap 250) In force since {block['at']} until cleared "
                           "(cidwatch blocks clear): dialers must not present this caller ID. "
                           "Source: source of fr.daily_limit",
            "source": "source of fr.daily_limit",
            "runbook_url": "https://git.example.com/cidwatch/-/blob/main/docs/runbooks/fr.daily_limit.md",
            "decision_id": block["id"],
        }
        assert when(listed["startsAt"]) == now - timedelta(minutes=5)
        assert listed["status"]["state"] == "active"
        # acme has its own compliance team in deploy/alertmanager.yml, paged as well as the shared on-call
        assert [r["name"] for r in listed["receivers"]] == ["tenant-acme-oncall", "compliance-oncall"]
        # a block has no end of its own: its endsAt is held a day ahead, pushed forward by every re-post
        first_end = when(listed["endsAt"])
        assert first_end > datetime.now(UTC) + timedelta(hours=23)
        await eventually(lambda: when(active(url, cli)[0]["endsAt"]) > first_end, what="a re-post")
        page = (await eventually(lambda: delivered(received, "/hook/tenant-acme-oncall", "firing", cli),
                                 what="the page"))[0]
        assert page["labels"]["alertname"] == "fr.daily_limit"
        assert page["annotations"]["decision_id"] == block["id"]

        poster.submit(unblock)
        await eventually(lambda: not active(url, cli), what="the block no longer active")
        resolved = (await eventually(lambda: delivered(received, "/hook/tenant-acme-oncall", "resolved", cli),
                                     what="the resolved notification"))[0]
        assert resolved["status"] == "resolved"
        assert when(resolved["endsAt"]) == now
        assert resolved["annotations"]["resolution"] == "cleared by an operator"
        assert poster.firing() == []

    run_with(AlertPoster(url, "https://git.example.com/cidwatch/-/blob/main/", on_result=results.append, **FAST),
             body)
    assert results and all(results)


def test_a_stopped_worker_leaves_its_blocks_firing_and_its_watchdog_resolves(
        alertmanager: tuple[str, Received]) -> None:
    """The worker goes away (its poster stops) while a block is in force: Alertmanager keeps the block
    active well past the worker's re-post rhythm (the block is still on the topic), and the worker's
    watchdog resolves, which the NOC hears as a resolved notification."""
    url, received = alertmanager
    now = datetime.now(UTC).replace(microsecond=0)
    cli = "+33162000013"
    block = decision("block", "cli.not_authorized", "critical", cli, now - timedelta(minutes=2))
    poster = AlertPoster(url, worker="worker-a:6066", **FAST)

    def watchdogs(status: str) -> list[dict[str, Any]]:
        return [alert for got, payload in received if got == "/hook/noc-watchdog" and payload["status"] == status
                for alert in payload["alerts"] if alert["labels"]["instance"] == "worker-a:6066"]

    async def body(poster: AlertPoster) -> None:
        poster.submit(block)
        await eventually(lambda: active(url, cli), what="the block")
        alive = (await eventually(lambda: watchdogs("firing"), what="the watchdog"))[0]
        assert alive["labels"] == {"alertname": "CidwatchWorkerWatchdog", "severity": "none", "team": "noc",
                                   "instance": "worker-a:6066"}
        assert set(alive["annotations"]) == {"summary", "description", "runbook_url"}

    run_with(poster, body)

    async def after_stop() -> None:
        # the watchdog's endsAt was 3 re-posts (3 s) ahead: Alertmanager resolves it, and tells the NOC
        await eventually(lambda: watchdogs("resolved"), timeout=30, what="the watchdog resolved")
        still = active(url, cli)
        assert len(still) == 1 and still[0]["status"]["state"] == "active"
        assert when(still[0]["endsAt"]) > datetime.now(UTC) + timedelta(hours=23)
        assert not delivered(received, "/hook/tenant-acme-oncall", "resolved", cli)

    asyncio.run(after_stop())


def test_time_boxed_block_ends_at_its_until_and_posts_failures_are_counted(
        alertmanager: tuple[str, Received]) -> None:
    url, _ = alertmanager
    now = datetime.now(UTC).replace(microsecond=0)
    cli = "+33162000014"
    until = now + timedelta(hours=2)
    block = decision("block", "fr.daily_limit", "critical", cli, now, until=until)

    async def body(poster: AlertPoster) -> None:
        poster.submit(block)
        listed = (await eventually(lambda: active(url, cli), what="the block"))[0]
        assert when(listed["endsAt"]) == until
        assert f"until {iso_utc(until)}." in listed["annotations"]["description"]
        assert poster.stats()["posts_ok"] >= 1 and poster.stats()["posts_failed"] == 0

    run_with(AlertPoster(url, **FAST), body)

    async def refused_and_failed() -> None:
        bad = AlertPoster(url, **FAST)
        await bad.start()
        try:  # an alert Alertmanager refuses (startsAt after endsAt): a 400, counted, not retried
            bad.submit(decision("alert", "cli.invalid", "warning", cli, now, until=now - timedelta(hours=1)))
            await eventually(lambda: bad.stats()["posts_refused"] >= 1, what="a refused post")
        finally:
            await bad.stop()
        gone = AlertPoster(f"http://127.0.0.1:{free_port()}", **FAST)
        await gone.start()
        try:
            gone.submit(block)
            await eventually(lambda: gone.stats()["posts_failed"] >= 2, what="failed posts")
        finally:
            await gone.stop()

    asyncio.run(refused_and_failed())


def test_alert_ends_with_its_window_and_scopes_are_separate_alerts(alertmanager: tuple[str, Received]) -> None:
    url, received = alertmanager
    now = datetime.now(UTC).replace(microsecond=0)
    cli = "+18005550100"
    until = now + timedelta(hours=3)
    to_gb = decision("alert", "tollfree.international", "warning", cli, now, until=until,
                     scope={"destination_country": "GB"}, tenant=None)
    to_fr = decision("alert", "tollfree.international", "warning", cli, now, until=until,
                     scope={"destination_country": "FR"}, tenant=None)

    async def body(poster: AlertPoster) -> None:
        poster.submit(to_gb)
        poster.submit(to_fr)
        listed = await eventually(lambda: len(active(url, cli)) == 2 and active(url, cli), what="two alerts")
        assert {a["labels"]["scope"] for a in listed} == {'{"destination_country":"FR"}',
                                                          '{"destination_country":"GB"}'}
        for alert in listed:
            assert when(alert["endsAt"]) == until  # the end of the window, not a rolling end
            assert "tenant" not in alert["labels"]  # posted as "": Alertmanager drops empty labels
            assert [r["name"] for r in alert["receivers"]] == ["compliance-chat-and-email"]
        await eventually(lambda: delivered(received, "/hook/compliance-chat-and-email", "firing", cli),
                         what="the chat notification")
        await asyncio.sleep(1.5)  # a re-post keeps endsAt at the window's end
        assert {when(a["endsAt"]) for a in active(url, cli)} == {until}

    run_with(AlertPoster(url, **FAST), body)


def test_reposting_a_decision_id_is_idempotent(alertmanager: tuple[str, Received]) -> None:
    url, _ = alertmanager
    now = datetime.now(UTC).replace(microsecond=0)
    cli = "+33162000011"
    block = decision("block", "cli.not_authorized", "critical", cli, now - timedelta(minutes=1))
    unblock = decision("unblock", "cli.not_authorized", "critical", cli, now)

    async def body(poster: AlertPoster) -> None:
        poster.submit(block)
        first = (await eventually(lambda: active(url, cli), what="the block"))[0]
        poster.submit(block)
        poster.submit({**block, "at": iso_utc(now), "message": "changed"})  # same id: still the same decision
        await asyncio.sleep(1.5)
        again = active(url, cli)
        assert len(again) == 1 and again[0]["fingerprint"] == first["fingerprint"]
        assert again[0]["startsAt"] == first["startsAt"] and again[0]["annotations"] == first["annotations"]
        assert poster.duplicates == 2
        poster.submit(unblock)
        await eventually(lambda: not active(url, cli), what="the unblock")
        poster.submit(block)  # a late re-delivery of the block must not re-fire it
        poster.submit(unblock)
        await asyncio.sleep(1.5)
        assert active(url, cli) == []
        assert poster.duplicates == 4 and poster.firing() == []

    run_with(AlertPoster(url, **FAST), body)


def test_alertmanager_down_then_up_gets_the_block(tmp_path: Path, webhook: tuple[str, Received]) -> None:
    """A closed port: submit() returns at once, posts fail and are retried with back-off, and the
    block arrives once Alertmanager starts listening on that port."""
    hook, received = webhook
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cli = "+33162000012"
    block = decision("block", "cli.not_authorized", "critical", cli, datetime.now(UTC).replace(microsecond=0))
    results: list[bool] = []
    processes: list[subprocess.Popen[bytes]] = []

    async def body(poster: AlertPoster) -> None:
        started = time.perf_counter()
        for _ in range(100):
            poster.submit(block)
        assert time.perf_counter() - started < 0.05
        await eventually(lambda: results.count(False) >= 3, what="three failed attempts")
        assert True not in results
        processes.append(spawn_alertmanager(tmp_path, am_config(tmp_path, hook), port))
        await eventually(lambda: active(url, cli), what="the block after Alertmanager came up")
        await eventually(lambda: delivered(received, "/hook/tenant-acme-oncall", "firing", cli), what="the page")
        assert results[-1] is True and poster.duplicates == 99

    try:
        run_with(AlertPoster(url, on_result=results.append, **FAST), body)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def spawn_alertmanager(tmp: Path, config: Path, port: int) -> subprocess.Popen[bytes]:
    """Alertmanager on a given port (obs_harness picks its own); waits until ready."""
    log = tmp / "alertmanager-late.log"
    process = subprocess.Popen(
        [binary("prometheus-alertmanager"), f"--config.file={config}", f"--storage.path={tmp / 'am-data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    wait_ready(f"http://127.0.0.1:{port}", process, log)
    return process


# --- without a server -------------------------------------------------------------------------------


def test_without_a_url_everything_is_a_no_op() -> None:
    poster = AlertPoster(None)

    async def body(poster: AlertPoster) -> None:
        poster.submit(decision("block", "cli.invalid", "critical", "+1", datetime.now(UTC)))
        assert poster.firing() == [] and poster.stats()["queued"] == 0

    run_with(poster, body)


def test_the_queue_is_bounded_and_drops_the_oldest() -> None:
    poster = AlertPoster("http://127.0.0.1:9", max_queue=2)  # never started: nothing drains
    at = datetime.now(UTC)
    for cli in ("+331", "+332", "+333"):
        poster.submit(decision("block", "cli.invalid", "critical", cli, at))
    assert poster.dropped == 1 and poster.stats()["queued"] == 2
    poster.submit(None)  # type: ignore[arg-type]  # never raises into the stream
    assert poster.dropped == 2


def test_labels_runbook_and_backoff() -> None:
    at = datetime.now(UTC)
    labels = alert_labels(decision("block", "au.cli_not_permitted", "critical", "+611", at,
                                   scope={"destination_country": "AU"}, tenant=None))
    assert labels == {"alertname": "au.cli_not_permitted", "severity": "critical", "caller_id": "+611",
                      "tenant": "", "scope": '{"destination_country":"AU"}'}
    assert "scope" not in alert_labels(decision("alert", "cli.invalid", "warning", "+1", at))
    assert runbook_url("cli.invalid") == "docs/runbooks/cli.invalid.md"
    assert runbook_url("cli.invalid", "https://x.example/r/") == "https://x.example/r/docs/runbooks/cli.invalid.md"
    delays = [backoff_delay(n, 1.0, 60.0) for n in range(1, 10)]
    assert 0.5 <= delays[0] <= 1.0 and all(30.0 <= d <= 60.0 for d in delays[7:])


def test_a_threshold_rules_resolve_ends_its_alert(alertmanager: tuple[str, Received]) -> None:
    """A sliding-window threshold rule's alert has no end of its own; its `resolve` decision (same rule,
    severity, caller ID, tenant and scope) resolves it in Alertmanager as an unblock resolves a block."""
    url, received = alertmanager
    now = datetime.now(UTC).replace(microsecond=0)
    cli = "+33184884100"
    alert = decision("alert", "runaway.calls_per_minute", "warning", cli, now - timedelta(minutes=3))
    resolve = {**decision("resolve", "runaway.calls_per_minute", "warning", cli, now),
               "message": "back below 10 for 5 min, the warning alert is cleared."}

    async def body(poster: AlertPoster) -> None:
        poster.submit(alert)
        await eventually(lambda: active(url, cli), what="the alert listed")
        poster.submit(resolve)
        await eventually(lambda: not active(url, cli), what="the alert no longer active")
        resolved = (await eventually(lambda: delivered(received, "/hook/compliance-chat-and-email", "resolved", cli),
                                     what="the resolved notification"))[0]
        assert when(resolved["endsAt"]) == now
        assert resolved["annotations"]["resolution"] == resolve["message"]
        assert poster.firing() == []

    run_with(AlertPoster(url, **FAST), body)
