"""Dashboards as code: the committed JSON is current, every dashboard is wired to a Prometheus data
source variable, and `push` speaks Grafana's documented dashboard HTTP API.

Grafana's server cannot be installed here, so `push` is checked against a local HTTP server that
enforces the documented contract of POST /api/dashboards/db (Grafana docs, "Dashboard HTTP API"):
`Authorization: Bearer <token>`, a JSON body `{"dashboard": {..., "uid": ..., "id": null},
"overwrite": true}`, answers 200 `{"id", "uid", "url", "status": "success", "version", "slug"}`,
401 `{"message": "Unauthorized"}` for a bad token, 403 for a token without write access.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cidwatch.cli import main
from dashboards.build import (
    GENERATED,
    all_dashboards,
    annotation_queries,
    build,
    panel_queries,
    render,
    variable_queries,
)
from dashboards.push import PushError, payload, push

UIDS = {"cidwatch-delivery", "cidwatch-spam-risk", "cidwatch-compliance", "cidwatch-pipeline"}
PANELS = {
    "cidwatch-delivery": ["Call rate", "Answer rate by destination country", "Answer rate by CLI (lowest 20)",
                          "Average talk time", "SIP failure mix", "Analytics-blocked rate"],
    "cidwatch-spam-risk": ["Riskiest CLIs", "Risk over time (top 10)", "Short-call share (top 10)",
                           "Volume against 100/day (top 10)"],
    "cidwatch-compliance": ["Decisions in range", "Decisions by rule", "Active blocks",
                            "French daily quota use per CLI", "Blocks in force"],
    "cidwatch-pipeline": ["Throughput", "Consumer lag", "Decision latency percentiles", "DLQ rate", "Rebalances",
                          "Worker up"],
}
TENANT_DASHBOARDS = ("cidwatch-delivery", "cidwatch-spam-risk", "cidwatch-compliance")
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range"}
TOKEN = "glsa_test_token"
VIEWER_TOKEN = "glsa_viewer_token"


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict[str, Any]]:
    return all_dashboards()


# --- generated JSON -------------------------------------------------------------------------------


def test_generated_json_is_current(dashboards: dict[str, dict[str, Any]]) -> None:
    """Fails when dashboards/build.py changed without `cidwatch dashboards build`."""
    committed = {path.stem: path.read_text(encoding="utf-8") for path in GENERATED.glob("*.json")}
    regenerate = "run: cidwatch dashboards build --out dashboards/generated"
    assert set(committed) == set(dashboards), regenerate
    for uid, model in dashboards.items():
        assert committed[uid] == render(model), f"{uid}.json is stale: {regenerate}"


def test_build_is_deterministic(tmp_path: Path) -> None:
    first = {p.name: p.read_text() for p in build(tmp_path / "a")}
    second = {p.name: p.read_text() for p in build(tmp_path / "b")}
    assert first == second and set(first) == {f"{uid}.json" for uid in UIDS}


def test_stable_uids_and_titles(dashboards: dict[str, dict[str, Any]]) -> None:
    assert set(dashboards) == UIDS
    for uid, model in dashboards.items():
        assert model["uid"] == uid and model["title"].startswith("cidwatch / ")


def test_panels_are_the_issue_list(dashboards: dict[str, dict[str, Any]]) -> None:
    for uid, titles in PANELS.items():
        panels = dashboards[uid]["panels"]
        assert [p["title"] for p in panels] == titles
        assert [p["id"] for p in panels] == list(range(1, len(titles) + 1))


def test_each_dashboard_has_the_datasource_variable(dashboards: dict[str, dict[str, Any]]) -> None:
    for uid, model in dashboards.items():
        variables = {v["name"]: v for v in model["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource", uid
        assert variables["datasource"]["query"] == "prometheus", uid
        for panel in model["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, (uid, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}"
        for variable in variables.values():
            if variable["type"] == "query":
                assert variable["datasource"]["uid"] == "${datasource}"


def test_filters_where_they_make_sense(dashboards: dict[str, dict[str, Any]]) -> None:
    names = {uid: {v["name"] for v in m["templating"]["list"]} for uid, m in dashboards.items()}
    for uid in ("cidwatch-delivery", "cidwatch-spam-risk", "cidwatch-compliance"):
        assert {"tenant", "caller_id"} <= names[uid], uid
    assert "instance" in names["cidwatch-pipeline"]
    for _uid, _name, query in variable_queries(dashboards):
        assert re.fullmatch(r"label_values\((.+), (\w+)\)", query), query


def test_every_variable_a_query_uses_is_defined(dashboards: dict[str, dict[str, Any]]) -> None:
    defined = {uid: {v["name"] for v in m["templating"]["list"]} for uid, m in dashboards.items()}
    for uid, title, expr in panel_queries(dashboards):
        used = set(re.findall(r"\$\{?(\w+)", expr))
        assert used - GRAFANA_BUILTINS <= defined[uid], (uid, title, expr)


def test_panel_queries_cover_every_target(dashboards: dict[str, dict[str, Any]]) -> None:
    queries = panel_queries(dashboards)
    targets = sum(len(p["targets"]) for m in dashboards.values() for p in m["panels"])
    assert len(queries) == targets
    assert {uid for uid, _, _ in queries} == UIDS
    assert {(uid, title) for uid, title, _ in queries} == {(u, t) for u, ts in PANELS.items() for t in ts}
    for _uid, _title, expr in queries:
        assert "cidwatch_" in expr or expr.startswith("up{")
        assert not re.search(r"\bdestination\b(?!_country)", expr)


def test_risk_table_has_a_column_per_factor(dashboards: dict[str, dict[str, Any]]) -> None:
    table = dashboards["cidwatch-spam-risk"]["panels"][0]
    assert table["type"] == "table"
    refs = [t["refId"] for t in table["targets"]]
    assert refs == ["score", "volume", "burst", "answer_rate", "short_calls", "rejections", "attestation",
                    "distinct_destinations"]
    organize = next(t for t in table["transformations"] if t["id"] == "organize")
    assert set(organize["options"]["renameByName"].values()) == set(refs)


def panel(dashboards: dict[str, dict[str, Any]], uid: str, title: str) -> dict[str, Any]:
    return next(p for p in dashboards[uid]["panels"] if p["title"] == title)


def test_french_quota_draws_the_cap_the_worker_exports(dashboards: dict[str, dict[str, Any]]) -> None:
    """No 250 in the panel: its maximum is `cidwatch_rule_threshold` of fr.daily_limit's block, through
    Grafana's configFromData, and red starts at 100 % of that maximum."""
    quota = panel(dashboards, "cidwatch-compliance", "French daily quota use per CLI")
    assert quota["type"] == "bargauge"
    assert "250" not in json.dumps(quota)
    assert "max" not in quota["fieldConfig"]["defaults"]
    cap = next(t for t in quota["targets"] if t["refId"] == "cap")
    assert cap["expr"] == 'max(cidwatch_rule_threshold{rule="fr.daily_limit", kind="block"})'
    assert quota["transformations"] == [{"id": "configFromData", "options": {
        "configRefId": "cap", "mappings": [{"fieldName": "cap", "handlerKey": "max"}]}}]
    assert cap["legendFormat"] == "cap"  # the field name the mapping reads
    assert quota["fieldConfig"]["defaults"]["thresholds"] == {
        "mode": "percentage", "steps": [{"color": "green", "value": None}, {"color": "red", "value": 100}]}


def test_decisions_are_counts_over_the_range(dashboards: dict[str, dict[str, Any]]) -> None:
    in_range = panel(dashboards, "cidwatch-compliance", "Decisions in range")["targets"][0]
    assert "increase(cidwatch_decisions_total{" in in_range["expr"] and in_range["expr"].endswith("[$__range]))")
    assert in_range["instant"] is True
    by_rule = panel(dashboards, "cidwatch-compliance", "Decisions by rule")
    assert "increase(cidwatch_decisions_total{" in by_rule["targets"][0]["expr"]
    assert by_rule["fieldConfig"]["defaults"]["custom"]["drawStyle"] == "bars"
    for uid, title, expr in panel_queries(dashboards):
        if "cidwatch_decisions_total" in expr:
            assert "rate(" not in expr, (uid, title)


def test_block_and_unblock_decisions_are_annotations(dashboards: dict[str, dict[str, Any]]) -> None:
    for uid in TENANT_DASHBOARDS:
        annotations = {a["name"]: a for a in dashboards[uid]["annotations"]["list"] if a.get("expr")}
        assert set(annotations) == {"Blocks", "Unblocks"}, uid
        for name, kind in (("Blocks", "block"), ("Unblocks", "unblock")):
            annotation = annotations[name]
            assert f'kind="{kind}"' in annotation["expr"] and 'tenant=~"$tenant"' in annotation["expr"]
            assert annotation["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert annotation["enable"] is True and annotation["tagKeys"] == "rule,kind,tenant"
            assert annotation["titleFormat"] == "{{rule}} {{kind}}"


def test_blocks_in_force_table(dashboards: dict[str, dict[str, Any]]) -> None:
    blocks = panel(dashboards, "cidwatch-compliance", "Blocks in force")
    assert blocks["type"] == "table"
    assert [t["refId"] for t in blocks["targets"]] == ["since", "until"]
    assert "cidwatch_block_since_timestamp_seconds" in blocks["targets"][0]["expr"]
    assert "cidwatch_block_until_timestamp_seconds" in blocks["targets"][1]["expr"]
    organize = next(t for t in blocks["transformations"] if t["id"] == "organize")["options"]
    columns = sorted(organize["indexByName"], key=organize["indexByName"].get)
    shown = [organize["renameByName"].get(c, c) for c in columns]
    assert shown == ["CLI", "tenant", "rule", "scope", "since", "until"]
    overrides = {o["matcher"]["options"]: o["properties"] for o in blocks["fieldConfig"]["overrides"]}
    assert {"id": "unit", "value": "dateTimeAsIso"} in overrides["since"]
    assert overrides["rule"][0]["value"][0]["url"] == "${runbook_base}/docs/runbooks/${__value.text}.md"


def test_compliance_panels_link_their_runbooks(dashboards: dict[str, dict[str, Any]]) -> None:
    for item in dashboards["cidwatch-compliance"]["panels"]:
        links = [*(item.get("links") or []), *(item["fieldConfig"]["defaults"].get("links") or [])]
        links += [link for o in item["fieldConfig"].get("overrides", []) for p in o["properties"]
                  if p["id"] == "links" for link in p["value"]]
        assert any(link["url"].startswith("${runbook_base}/docs/runbooks/") for link in links), item["title"]
    for uid, model in dashboards.items():
        variables = {v["name"]: v for v in model["templating"]["list"]}
        assert variables["runbook_base"]["type"] == "textbox", uid


def test_the_four_dashboards_link_to_each_other(dashboards: dict[str, dict[str, Any]]) -> None:
    for uid, model in dashboards.items():
        link = next(link for link in model["links"] if link["type"] == "dashboards")
        assert link["tags"] == model["tags"] == ["cidwatch"], uid  # every cidwatch dashboard, by its tag
        assert link["keepTime"] is True and link["includeVars"] is True


def test_every_selector_of_a_tenant_dashboard_filters_the_tenant(dashboards: dict[str, dict[str, Any]]) -> None:
    """Each metric a Delivery, Spam-label risk or Compliance panel (or annotation) reads is selected with
    the Tenant variable, except the rule thresholds, which belong to no tenant (tests/test_obs_harness.py
    runs them with a tenant chosen against a real Prometheus)."""
    queries = [(u, t, e) for u, t, e in [*panel_queries(dashboards), *annotation_queries(dashboards)]
               if u in TENANT_DASHBOARDS]
    for uid, title, expr in queries:
        for metric, matchers in re.findall(r"\b(cidwatch_\w+|up)\b(\{[^}]*\})?", expr):
            if metric == "cidwatch_rule_threshold":
                continue
            assert 'tenant=~"$tenant"' in matchers, (uid, title, metric)
    names = {uid: {v["name"] for v in m["templating"]["list"]} for uid, m in dashboards.items()}
    assert all("tenant" in names[uid] for uid in TENANT_DASHBOARDS)
    assert "tenant" not in names["cidwatch-pipeline"]  # per worker: see dashboards/build.py


def test_panels_quote_the_rules_shipped_thresholds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The spam-label risk levels come from the shipped packs, never copies of them; the French cap is
    not quoted at all (the worker exports it)."""
    import dashboards.build as build_module
    from rules.pack import PACKS_DIR, load_packs

    for source in PACKS_DIR.glob("*.yaml"):
        text = source.read_text(encoding="utf-8")
        text = text.replace("at: 200,", "at: 150,").replace("at: 250,", "at: 180,").replace("at: 85,", "at: 90,")
        (tmp_path / source.name).write_text(text, encoding="utf-8")
    monkeypatch.setattr(build_module, "load_packs", lambda: load_packs(tmp_path))
    shipped = build_module.to_dict(build_module.compliance())
    assert shipped == all_dashboards()["cidwatch-compliance"]  # the French cap is read at run time
    risk = build_module.to_dict(build_module.spam_risk())["panels"][1]
    assert risk["description"].endswith("rule spam.label_risk warns at 70 and pages at 90.")
    assert [s["value"] for s in risk["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None, 70, 90]


# --- a local server holding Grafana's documented dashboard API ------------------------------------


class FakeGrafana:
    """Enforces the documented request shape; records violations instead of guessing past them."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.violations: list[str] = []
        self.lock = threading.Lock()

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any] | list]:
        with self.lock:
            self.requests.append((method, path))
            route = path.split("?")[0].removeprefix(self.prefix)
            if method == "GET" and route == "/api/health":
                return 200, {"commit": "test", "database": "ok", "version": "11.3.0"}
            if method == "GET" and route == "/api/frontend/settings":
                return 200, {"buildInfo": {"version": "11.3.0"}}
            if method == "GET" and route == "/api/search":
                return 200, [{"uid": uid, "type": "dash-db"} for uid in self.dashboards]
            if method == "POST" and route == "/api/dashboards/db":
                return self.save(headers, body)
            self.violations.append(f"undocumented request {method} {path}")
            return 404, {"message": "Not found"}

    def save(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        auth = headers.get("Authorization", "")
        if auth == f"Bearer {VIEWER_TOKEN}":
            return 403, {"message": "Access denied"}
        if auth != f"Bearer {TOKEN}":
            return 401, {"message": "Unauthorized"}
        if not headers.get("Content-Type", "").startswith("application/json"):
            self.violations.append("body not sent as application/json")
        try:
            data = json.loads(body)
        except ValueError:
            self.violations.append("body is not JSON")
            return 400, {"message": "bad request data"}
        return self.store(data)

    def store(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        dashboard = data.get("dashboard")
        if not isinstance(dashboard, dict) or not dashboard.get("uid") or not dashboard.get("title"):
            self.violations.append("dashboard object without uid or title")
            return 400, {"message": "Dashboard title cannot be empty"}
        if data.get("overwrite") is not True:
            self.violations.append("overwrite is not true")
        if dashboard.get("id") is not None:
            self.violations.append("dashboard.id set: Grafana would match by a local numeric id")
        uid = dashboard["uid"]
        existing = self.dashboards.get(uid)
        if existing is not None and data.get("overwrite") is not True:
            return 412, {"message": "A dashboard with the same uid already exists", "status": "name-exists"}
        number = existing["id"] if existing else len(self.dashboards) + 1
        version = existing["version"] + 1 if existing else 1
        self.dashboards[uid] = {"id": number, "version": version, "model": dashboard,
                                "folderUid": data.get("folderUid")}
        slug = re.sub(r"[^a-z0-9]+", "-", dashboard["title"].lower()).strip("-")
        return 200, {"id": number, "uid": uid, "url": f"{self.prefix}/d/{uid}/{slug}", "status": "success",
                     "version": version, "slug": slug}


def start(fake: FakeGrafana | None, raw_html: bool = False) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if raw_html or fake is None:
                self._reply(200, b"<html>not grafana</html>", "text/html")
                return
            status, answer = fake.handle(self.command, self.path, self.headers, body)
            self._reply(status, json.dumps(answer).encode(), "application/json")

        def _reply(self, status: int, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()
    server, url = start(fake)
    yield fake, url
    server.shutdown()
    server.server_close()


def test_payload_is_the_documented_body() -> None:
    body = payload({"uid": "cidwatch-x", "title": "x", "id": 7}, folder_uid="cidwatch")
    assert body == {"dashboard": {"uid": "cidwatch-x", "title": "x", "id": None}, "overwrite": True,
                    "message": "cidwatch dashboards push", "folderUid": "cidwatch"}


def test_push_uploads_every_dashboard(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    results = push(url, token=TOKEN)
    assert fake.violations == []
    assert {r["uid"] for r in results} == UIDS and all(r["status"] == "success" for r in results)
    assert set(fake.dashboards) == UIDS
    assert all(method == "POST" for method, _ in fake.requests)
    stored = fake.dashboards["cidwatch-delivery"]["model"]
    committed = json.loads((GENERATED / "cidwatch-delivery.json").read_text())
    assert stored == {**committed, "id": None}


def test_push_twice_is_idempotent(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    first = {r["uid"]: r for r in push(url, token=TOKEN)}
    second = {r["uid"]: r for r in push(url, token=TOKEN)}
    assert fake.violations == []
    assert set(first) == set(second) == set(fake.dashboards) == UIDS  # updated in place, no copies
    for uid in UIDS:
        assert second[uid]["id"] == first[uid]["id"]
        assert second[uid]["version"] == first[uid]["version"] + 1


def test_push_under_a_path_prefix_and_into_a_folder() -> None:
    fake = FakeGrafana(prefix="/grafana")
    server, url = start(fake)
    try:
        results = push(f"{url}/grafana/", token=TOKEN, folder_uid="cidwatch")
    finally:
        server.shutdown()
        server.server_close()
    assert fake.violations == [] and len(results) == 4
    assert {d["folderUid"] for d in fake.dashboards.values()} == {"cidwatch"}


@pytest.mark.parametrize("token", [None, "wrong"])
def test_push_with_a_bad_token_is_a_clear_error(grafana: tuple[FakeGrafana, str], token: str | None) -> None:
    fake, url = grafana
    with pytest.raises(PushError, match=r"rejected the token \(401\)") as caught:
        push(url, token=token)
    assert "\n" not in str(caught.value)
    assert fake.dashboards == {}


def test_push_with_a_read_only_token_is_a_clear_error(grafana: tuple[FakeGrafana, str]) -> None:
    _, url = grafana
    with pytest.raises(PushError, match=r"refused access \(403\)"):
        push(url, token=VIEWER_TOKEN)


def test_push_to_an_unreachable_url_is_a_clear_error() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(PushError, match="cannot reach Grafana") as caught:
        push(f"http://127.0.0.1:{port}", token=TOKEN, timeout=2)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


@pytest.mark.parametrize("url", ["grafana.example.com:3000", "ftp://grafana", "http://", "http://host:port", ""])
def test_push_to_a_bad_url_is_a_clear_error(url: str) -> None:
    with pytest.raises(PushError, match="bad Grafana URL"):
        push(url, token=TOKEN)


def test_push_to_something_that_is_not_grafana() -> None:
    server, url = start(None, raw_html=True)
    try:
        with pytest.raises(PushError, match="did not answer like Grafana"):
            push(url, token=TOKEN)
    finally:
        server.shutdown()
        server.server_close()


def test_push_without_built_dashboards(tmp_path: Path, grafana: tuple[FakeGrafana, str]) -> None:
    with pytest.raises(PushError, match="dashboards build"):
        push(grafana[1], token=TOKEN, out_dir=tmp_path)


# --- command line ---------------------------------------------------------------------------------


def test_cli_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboards", "build", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{uid}.json" for uid in UIDS)
    for path in tmp_path.iterdir():
        assert path.read_text() == (GENERATED / path.name).read_text()
    assert len(capsys.readouterr().out.splitlines()) == 4


def test_cli_push_token_from_env(grafana: tuple[FakeGrafana, str], monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    fake, url = grafana
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    assert main(["dashboards", "push", "--url", url]) == 0
    assert set(fake.dashboards) == UIDS
    assert "cidwatch-delivery  version 1" in capsys.readouterr().out


def test_cli_push_errors_are_one_line(grafana: tuple[FakeGrafana, str], monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    _, url = grafana
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    monkeypatch.delenv("GRAFANA_URL", raising=False)
    assert main(["dashboards", "push", "--url", url, "--token", "nope"]) == 2
    assert capsys.readouterr().err.strip().startswith("cidwatch: error: Grafana at")
    assert main(["dashboards", "push"]) == 2
    assert "needs --url" in capsys.readouterr().err
