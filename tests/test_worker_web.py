"""The worker's web server serves /metrics, /healthz and /readyz, and none of Faust's own views
(streams/web.py): /table/subjects/<CLI>/ would hand out a caller ID's state to anyone on the port."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import faust
import pytest
from stream_fixtures import write_jsonl
from stream_harness import Worker, cidwatch, decisions, free_port, wait_for
from test_compose import dockerfile_healthcheck

from streams.app import TABLE, CidwatchWorker
from streams.config import WorkerConfig
from streams.web import FAUST_VIEWS_OFF

CLI = "+448701234567"  # a UK 0870 CLI: uk.cli_not_permitted blocks it, so its state is in the table
FAUST_PATHS = ["/table/", f"/table/{TABLE}/", f"/table/{TABLE}/{urllib.parse.quote(CLI)}/", "/router/",
               "/router/topics", f"/router/{TABLE}/", f"/router/{TABLE}/{urllib.parse.quote(CLI)}/",
               "/graph/", "/assignment/", "/performance/"]


def routes(app: faust.App) -> set[str]:
    """The paths the app's web server would serve (its blueprints and pages applied, nothing bound)."""
    app.web.init_server()
    return {route.resource.canonical for route in app.web.web_app.router.routes()}


def test_faust_serves_tables_and_router_unless_its_settings_turn_them_off() -> None:
    """What the settings in streams/web.py change: Faust's defaults serve both, the settings neither."""
    default = routes(faust.App("web-default", broker="kafka://127.0.0.1:1"))
    assert {"/table/{name}/{key}/", "/router/{name}/{key}/"} <= default
    assert routes(faust.App("web-off", broker="kafka://127.0.0.1:1", **FAUST_VIEWS_OFF)) == {"/"}


def test_the_worker_serves_only_its_own_pages(tmp_path: Path) -> None:
    worker = CidwatchWorker(WorkerConfig(workdir=tmp_path))
    assert routes(worker.app) == {"/", "/metrics", "/healthz", "/readyz"}
    assert worker.readiness().ready is False  # not in a group yet


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""  # not listening yet


def image_healthcheck(port: int) -> int:
    """The Dockerfile's HEALTHCHECK command, run here as Docker would run it in the worker's container."""
    env = {**os.environ, "CIDWATCH_WEB_PORT": str(port)}
    return subprocess.run(["sh", "-c", dockerfile_healthcheck()], env=env, capture_output=True, timeout=30).returncode


@pytest.mark.kafka
def test_faust_views_answer_404_on_a_running_worker(kafka_bootstrap, topic_prefix, tmp_path):
    cidwatch(kafka_bootstrap, topic_prefix, "topics", "create", "--partitions", "2")
    worker = Worker(kafka_bootstrap, topic_prefix, tmp_path / "w", "--partitions", "2").start()
    try:
        wait_for(lambda: get(worker.web_port, "/readyz")[0] == 200, 90, "/readyz never answered 200", worker)
        assert json.loads(get(worker.web_port, "/readyz")[1]) == {"ready": True, "reason": "judging"}
        assert get(worker.web_port, "/healthz") == (200, b'{"status":"ok"}')
        assert image_healthcheck(worker.web_port) == 0
        assert image_healthcheck(free_port()) != 0  # nothing listening: unhealthy
        record = {"call_id": "w-1", "started_at": "2026-03-29T10:00:00Z", "caller_id": CLI,
                  "destination": "+442079460000"}
        cidwatch(kafka_bootstrap, topic_prefix, "produce", write_jsonl(tmp_path / "one.jsonl", [record]))
        wait_for(lambda: any(d["caller_id"] == CLI for d in decisions(kafka_bootstrap, topic_prefix)), 60,
                 "no decision about the 0870 CLI", worker)
        # The CLI's state is in the table now: Faust's /table/ view would have returned it.
        for path in FAUST_PATHS:
            status, body = get(worker.web_port, path)
            assert status == 404, (path, status, body[:200])
            assert CLI.encode() not in body
        status, body = get(worker.web_port, "/metrics")
        assert status == 200 and b"cidwatch_records_processed_total" in body
        assert json.loads(get(worker.web_port, "/")[1]) == {"status": "OK"}  # Faust's production index only
    finally:
        worker.stop()
    assert worker.proc is not None and worker.proc.returncode == 0, worker.log_tail()
