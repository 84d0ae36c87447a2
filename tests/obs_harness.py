"""Real Prometheus and Alertmanager servers on loopback ports, for tests.

Why real servers: a hand-written imitation would agree with whatever the code under test assumes.
These start Debian's `prometheus` and `prometheus-alertmanager` with configs derived from deploy/
(same jobs, rules and routes; shorter intervals; test targets), storage under the test's tmp dir,
and wait on /-/ready. Each start returns (url, stop); stop() is idempotent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
READY_TIMEOUT_S = 30.0

Stop = Callable[[], None]


def binary(name: str) -> str:
    """The Debian binary, or skip (fail under CI=true: CI must not pass without real servers)."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed (Debian packages prometheus, prometheus-alertmanager)")
        pytest.skip(f"{name} is not installed")
    return path


def free_port() -> int:
    """A loopback port free right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = READY_TIMEOUT_S) -> None:
    """Poll `url`/-/ready until 200; on timeout or early exit, fail with the server's log tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{log.stem} exited with {process.returncode}:\n{_tail(log)}")
        if _ready(url):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{log.stem} not ready at {url} after {timeout:.0f}s:\n{_tail(log)}")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _spawn(args: Sequence[str], log: Path) -> tuple[subprocess.Popen[bytes], Stop]:
    handle = log.open("wb")
    process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        handle.close()

    return process, stop


def _start(name: str, tmp: Path, make_args: Callable[[int], list[str]]) -> tuple[str, Stop]:
    """Start on a free port; retry with another port if one was taken between probe and bind."""
    last_error: RuntimeError | None = None
    for attempt in range(3):
        port = free_port()
        log = tmp / f"{name}-{attempt}.log"
        process, stop = _spawn(make_args(port), log)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, process, log)
        except RuntimeError as exc:
            stop()
            last_error = exc
            if "address already in use" not in str(exc):
                raise
            continue
        return url, stop
    assert last_error is not None
    raise last_error


# --- Prometheus ---------------------------------------------------------------------------------


def prometheus_config(
    scrape_targets: Sequence[str],
    rule_files: Sequence[str | Path],
    scrape_interval: str = "1s",
    alertmanager: str | None = None,
) -> dict[str, Any]:
    """deploy/prometheus.yml with test targets for the `cidwatch` job and a short interval."""
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = scrape_interval
    config["global"]["evaluation_interval"] = scrape_interval
    config["rule_files"] = [str(Path(f).resolve()) for f in rule_files]
    config["scrape_configs"] = [
        {**job, "static_configs": [{"targets": list(scrape_targets)}]}
        for job in config["scrape_configs"] if job["job_name"] == "cidwatch"
    ]
    if alertmanager:
        target = alertmanager.removeprefix("http://").rstrip("/")
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [target]}]}]}
    else:
        config.pop("alerting", None)
    return config


def start_prometheus(
    tmp: Path,
    scrape_targets: Sequence[str],
    rule_files: Sequence[str | Path] = (),
    scrape_interval: str = "1s",
    alertmanager: str | None = None,
) -> tuple[str, Stop]:
    """Real Prometheus scraping `scrape_targets` (host:port) as job "cidwatch"; returns (url, stop)."""
    exe = binary("prometheus")
    tmp = Path(tmp)
    config_path = tmp / "prometheus.yml"
    config = prometheus_config(scrape_targets, rule_files, scrape_interval, alertmanager)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def args(port: int) -> list[str]:
        return [
            exe, f"--config.file={config_path}", f"--storage.tsdb.path={tmp / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
            "--enable-feature=expand-external-labels",  # as docker-compose.yml runs it (runbook_base)
        ]

    return _start("prometheus", tmp, args)


# --- Alertmanager -------------------------------------------------------------------------------


def start_alertmanager(tmp: Path, config_path: str | Path) -> tuple[str, Stop]:
    """Real Alertmanager with `config_path`, clustering off, storage in `tmp`; returns (url, stop)."""
    exe = binary("prometheus-alertmanager")
    tmp = Path(tmp)

    def args(port: int) -> list[str]:
        return [
            exe, f"--config.file={config_path}", f"--storage.path={tmp / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn",
        ]

    return _start("alertmanager", tmp, args)


def alertmanager_config_to_webhooks(webhook_base: str, interval: str = "1s") -> dict[str, Any]:
    """deploy/alertmanager.yml with its route tree intact but every receiver a webhook to
    `webhook_base`/<receiver name>, so a test sees which receiver the real router picked."""
    config = yaml.safe_load((DEPLOY / "alertmanager.yml").read_text())
    config["global"] = {"resolve_timeout": "5m"}
    config["receivers"] = [
        {"name": r["name"], "webhook_configs": [{"url": f"{webhook_base}/{r['name']}", "send_resolved": True}]}
        for r in config["receivers"]
    ]
    config["route"].update(group_wait=interval, group_interval=interval, repeat_interval="1h")
    _shorten(config["route"].get("routes", []), interval)
    return config


def _shorten(routes: list[dict[str, Any]], interval: str) -> None:
    """Child routes inherit the root's timings unless they set their own: shorten those too."""
    for route in routes:
        for key in ("group_wait", "group_interval"):
            if key in route:
                route[key] = interval
        _shorten(route.get("routes", []), interval)


# --- Grafana's template variables, resolved against a real Prometheus -------------------------------

GRAFANA_INTERVALS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


def promql_regex(values: list[str]) -> str:
    """What Grafana puts in `=~"$var"` for a multi-value selection: escaped values, alternated;
    backslashes doubled again for the PromQL string literal."""
    return "|".join(re.escape(v).replace("\\", "\\\\") for v in sorted(values))


def fill(expr: str, variables: dict[str, str]) -> str:
    """Substitute Grafana's interval variables (stated values) and the dashboard's own; longest
    names first so `$caller_id` is never mistaken for a shorter `$caller`."""
    values = {**GRAFANA_INTERVALS, **{f"${k}": v for k, v in variables.items()}}
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(name, values[name])
    assert "$" not in expr, expr
    return expr


def label_values(prometheus: str, query_text: str, variables: dict[str, str]) -> list[str]:
    """Grafana's `label_values(selector, label)`, answered by the real server's series API."""
    found = re.fullmatch(r"label_values\((.+), (\w+)\)", fill(query_text, variables))
    assert found, query_text
    selector, label = found.groups()
    params = urllib.parse.urlencode({"match[]": selector})
    with urllib.request.urlopen(f"{prometheus}/api/v1/series?{params}", timeout=5) as response:
        series = json.loads(response.read())["data"]
    return sorted({s[label] for s in series if label in s})


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    """An instant PromQL query against a real Prometheus; the result vector."""
    data = get_json(f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    assert data["status"] == "success", data
    return data["data"]["result"]
