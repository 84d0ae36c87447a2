"""The check API (`cidwatch api`): its answers (unit, no broker) and the process on a real broker and a
real worker: readiness, the token, the same answer as `cidwatch blocks list` while blocks come and go,
and how soon a block reaches it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from stream_fixtures import write_jsonl
from stream_harness import ROOT, Worker, cidwatch, env_for, free_port, wait_for

from cidwatch.api.book import CHECK_FIELDS, BadRequest, Book
from cidwatch.api.openapi import document
from rules.decision import scope_applies
from rules.inventory import Inventory, InventoryEntry
from rules.numbers import classify
from streams.inventory_topic import encode

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
UK_0870 = "+448701234567"
US_TOLL_FREE = "+18445550111"


def block(caller_id: str, rule: str, scope: dict | None = None, kind: str = "block", tenant: str = "acme"):
    scope = scope or {}
    key = f"{caller_id}|{rule}|{json.dumps(scope, sort_keys=True, separators=(',', ':'))}".encode()
    value = {"id": f"{kind}-{caller_id}-{rule}", "kind": kind, "rule": rule, "severity": "critical",
             "caller_id": caller_id, "call_id": "c1", "tenant": tenant, "at": "2026-05-04T10:00:00Z", "scope": scope,
             "until": None, "count": 1, "threshold": None, "message": f"{rule} on {caller_id}", "source": "test"}
    return key, json.dumps(value).encode()


# --- the answers (no broker) --------------------------------------------------------------------


def test_scope_applies_reads_country_and_type_scopes():
    au, fr, us_tf = classify("+61291234567"), classify("+33140000001"), classify("+18005550100")
    assert scope_applies({}, fr) and scope_applies({}, None)
    assert scope_applies({"destination_country": "AU"}, au)
    assert not scope_applies({"destination_country": "AU"}, fr)
    assert scope_applies({"destination_country": "AU"}, None)  # no destination: the block may apply
    assert scope_applies({"destination_type": "toll_free"}, us_tf)
    assert not scope_applies({"destination_type": "toll_free"}, fr)
    assert scope_applies({"unknown_key": "x"}, fr)  # never read narrower than it may be
    automated = {"destination_country": "FR", "purpose": "automated,telemarketing"}
    assert scope_applies(automated, fr, "automated") and scope_applies(automated, None, None)
    assert not scope_applies(automated, None, "personal")  # the purpose rules it out, destination unknown
    assert not scope_applies(automated, au, "automated")


def test_check_reads_a_purpose_scope():
    book = Book()
    book.apply_block(*block("+33612345678", "fr.automated_not_npv", {"purpose": "automated"}))
    assert book.check("+33612345678", "acme", None, NOW)["allowed"] is False  # purpose unknown: covered
    automated = book.check("+33612345678", "acme", "+33140000001", NOW, "Automated")
    assert automated["allowed"] is False and automated["purpose"] == "automated"
    assert book.check("+33612345678", "acme", None, NOW, "personal")["allowed"] is True
    with pytest.raises(BadRequest, match="purpose: must be one of telemarketing, automated, service, personal"):
        book.check("+33612345678", "acme", None, NOW, "robocall")


def test_check_applies_scoped_blocks_by_destination():
    book = Book()
    book.apply_block(*block(US_TOLL_FREE, "au.cli_not_permitted", {"destination_country": "AU"}))
    book.apply_block(*block(UK_0870, "uk.cli_not_permitted"))
    to_au = book.check("+1 844 555 0111", "acme", "+61 2 9123 4567", NOW)
    assert set(to_au) == set(CHECK_FIELDS)
    assert to_au["allowed"] is False and to_au["cli"] == US_TOLL_FREE and to_au["destination_country"] == "AU"
    assert [(b["rule"], b["scope"]) for b in to_au["blocks"]] == [("au.cli_not_permitted",
                                                                   {"destination_country": "AU"})]
    assert to_au["blocks"][0]["runbook"] == "docs/runbooks/au.cli_not_permitted.md"
    assert to_au["blocks"][0]["since"] == "2026-05-04T10:00:00Z" and to_au["checked_at"] == "2026-05-04T12:00:00Z"
    to_fr = book.check(US_TOLL_FREE, "acme", "+33140000001", NOW)
    assert to_fr["allowed"] is True and to_fr["blocks"] == [] and to_fr["authorised"] is None
    assert book.check(US_TOLL_FREE, None, None, NOW)["allowed"] is False  # destination unknown
    assert book.check(UK_0870, "beta", "+33140000001", NOW)["allowed"] is False  # a number's block, any tenant
    assert book.check(" 448701234567", None, None, NOW)["cli"] == UK_0870  # an unencoded "+" is a space
    book.apply_block(*block(UK_0870, "uk.cli_not_permitted", kind="unblock"))
    assert book.check(UK_0870, None, None, NOW)["allowed"] is True


def test_check_refuses_malformed_numbers_with_the_parameter_named():
    book = Book()
    for cli, dest, message in (("+3314000000x", None, "cli: '+3314000000x' is not a valid E.164 number"),
                               (None, None, "cli: required"),
                               ("+33140000001", "0140000001", "destination: '0140000001' is not a valid E.164")):
        with pytest.raises(BadRequest, match=message.replace("+", r"\+")):
            book.check(cli, None, dest, NOW)


def test_check_says_whether_the_inventory_authorises_the_number_for_the_tenant():
    book = Book()
    inventory = Inventory([InventoryEntry("+33140000001", "claimed", tenant="acme")])
    book.apply_inventory(encode(inventory, NOW), "inventory@0")
    assert book.check("+33140000001", "acme", None, NOW)["authorised"] is True
    assert book.check("+33140000001", "beta", None, NOW)["authorised"] is False
    book.apply_inventory(b"not json", "inventory@1")  # ignored, as the workers ignore it
    assert book.inventory is not None and "inventory@1" in (book.inventory_error or "")
    book.apply_inventory(None, "inventory@2")
    assert book.check("+33140000001", "acme", None, NOW)["authorised"] is None


def test_blocks_filter_by_tenant_and_rule():
    book = Book(runbook_base_url="https://example.org/cidwatch")
    book.apply_block(*block(UK_0870, "uk.cli_not_permitted", tenant="acme"))
    book.apply_block(*block("+33140000001", "fr.daily_limit", tenant="beta"))
    assert [b["cli"] for b in book.blocks("beta", None)] == ["+33140000001"]
    assert [b["cli"] for b in book.blocks(None, "uk.cli_not_permitted")] == [UK_0870]
    assert [b["cli"] for b in book.blocks(None, None)] == ["+33140000001", UK_0870]
    assert book.blocks(None, None)[1]["runbook"].startswith("https://example.org/cidwatch/")


def test_openapi_documents_every_route_and_the_answer_fields():
    from cidwatch.api.server import ApiConfig, make_app

    doc = document()
    routes = {route.resource.canonical for route in make_app(ApiConfig()).router.routes()}
    assert set(doc["paths"]) == routes
    assert doc["components"]["schemas"]["Check"]["required"] == list(CHECK_FIELDS)
    assert set(doc["components"]["schemas"]["Check"]["properties"]) == set(CHECK_FIELDS)


# --- the process on a real broker ------------------------------------------------------------------


class Api:
    """One `cidwatch api` process on a free port."""

    def __init__(self, bootstrap: str, prefix: str, token: str | None = None, *args: str) -> None:
        self.port = free_port()
        env = env_for(bootstrap, prefix)
        env.pop("CIDWATCH_API_TOKEN", None)
        if token:
            env["CIDWATCH_API_TOKEN"] = token
        self.token = token
        self.proc = subprocess.Popen([sys.executable, "-m", "cidwatch", "api", "--port", str(self.port), *args],
                                     env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True, text=True)

    def get(self, path: str, token: str | None = "same") -> tuple[int, Any]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        token = self.token if token == "same" else token
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())
        except (urllib.error.URLError, ConnectionError):
            return 0, None

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.stdout.read() if self.proc.stdout else ""


@pytest.fixture
def apis():
    started: list[Api] = []

    def start(*args, **kwargs) -> Api:
        api = Api(*args, **kwargs)
        started.append(api)
        return api

    yield start
    for api in started:
        api.stop()


def test_without_a_token_the_api_refuses_a_non_loopback_address():
    proc = subprocess.run([sys.executable, "-m", "cidwatch", "api", "--host", "0.0.0.0"], cwd=ROOT, text=True,
                          capture_output=True, timeout=60, env={k: v for k, v in os.environ.items()
                                                                if k != "CIDWATCH_API_TOKEN"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "cidwatch: error: --host 0.0.0.0: without CIDWATCH_API_TOKEN the API listens on a loopback address only; "
        "set a token to listen on other addresses"]


@pytest.mark.kafka
def test_api_waits_for_the_topics_and_guards_with_its_token(kafka_bootstrap, topic_prefix, apis):
    api = apis(kafka_bootstrap, topic_prefix, token="s3cret")
    wait_for(lambda: api.get("/healthz")[0] == 200, 60, "the API answers /healthz")
    status, body = api.get("/readyz")
    assert status == 503 and "waiting for topic(s)" in body["reason"]
    status, body = api.get(f"/v1/check?cli=%2B{UK_0870[1:]}")
    assert status == 503 and body["error"].startswith("not ready:")  # never an "allowed" it cannot know
    assert api.get("/v1/check?cli=%2B33140000001", token=None)[0] == 401
    assert api.get("/v1/check?cli=%2B33140000001", token="wrong")[0] == 401
    cidwatch(kafka_bootstrap, topic_prefix, "topics", "create", "--partitions", "2")
    wait_for(lambda: api.get("/readyz")[0] == 200, 60, "the API is ready once the topics exist")
    assert api.get("/v1/check?cli=%2B33140000001")[1]["allowed"] is True
    status, body = api.get("/v1/check?cli=%2B3314000000x")
    assert status == 400 and "cli: '+3314000000x' is not a valid E.164 number" in body["error"]
    assert api.get("/openapi.json", token=None)[1]["openapi"] == "3.1.0"
    assert "bearer token required" in api.stop()


def _blocks_list(bootstrap: str, prefix: str) -> list[dict]:
    return json.loads(cidwatch(bootstrap, prefix, "blocks", "list", "--json").stdout)


def _call(call_id: str, caller_id: str, destination: str) -> dict:
    return {"call_id": call_id, "started_at": "2026-05-04T10:00:00Z", "caller_id": caller_id,
            "destination": destination, "tenant": "acme"}


def _seen_after_decision(api: Api, bootstrap: str, prefix: str, tmp: Path, records: list[dict], cli: str) -> float:
    """Produce `records`, poll /v1/check on `cli` until it is blocked; return the seconds from the block's
    record at the broker (its timestamp) to the first answer that showed it."""
    cidwatch(bootstrap, prefix, "produce", write_jsonl(tmp, records))
    deadline = time.monotonic() + 90
    while api.get(f"/v1/check?cli=%2B{cli[1:]}")[1]["allowed"]:
        assert time.monotonic() < deadline, (f"{cli} never blocked in the API; blocks list: "
                                             f"{_blocks_list(bootstrap, prefix)}; API: {api.get('/readyz')}")
        time.sleep(0.01)
    seen = time.time()
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        topic = f"{prefix}blocks"
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        stamps = [r.timestamp for batch in consumer.poll(timeout_ms=3000).values() for r in batch
                  if r.key.decode().startswith(f"{cli}|")]
    finally:
        consumer.close()
    assert stamps, f"no block record of {cli}"
    return seen - max(stamps) / 1000


@pytest.mark.kafka
def test_api_gives_blocks_lists_answer_while_blocks_come_and_go(kafka_bootstrap, topic_prefix, tmp_path, apis):
    cidwatch(kafka_bootstrap, topic_prefix, "topics", "create", "--partitions", "2")
    worker = Worker(kafka_bootstrap, topic_prefix, tmp_path / "w1", "--partitions", "2").start()
    api = apis(kafka_bootstrap, topic_prefix)
    try:
        wait_for(lambda: api.get("/readyz")[0] == 200, 60, "the API is ready")

        def same_as_blocks_list() -> list[dict]:
            listed = _blocks_list(kafka_bootstrap, topic_prefix)
            status, body = api.get("/v1/blocks")
            assert status == 200 and body == {"blocks": listed, "count": len(listed)}
            return listed

        assert same_as_blocks_list() == []
        delays = [_seen_after_decision(api, kafka_bootstrap, topic_prefix, tmp_path / "uk.jsonl",
                                       [_call("a-1", UK_0870, "+442071838750")], UK_0870)]
        delays.append(_seen_after_decision(api, kafka_bootstrap, topic_prefix, tmp_path / "au.jsonl",
                                           [_call("a-2", US_TOLL_FREE, "+61291234567")], US_TOLL_FREE))
        assert [(b["cli"], b["rule"]) for b in same_as_blocks_list()] == [
            (US_TOLL_FREE, "au.cli_not_permitted"), (UK_0870, "uk.cli_not_permitted")]
        assert api.get(f"/v1/check?cli=%2B{US_TOLL_FREE[1:]}&destination=%2B33140000001")[1]["allowed"] is True
        assert api.get(f"/v1/check?cli=%2B{US_TOLL_FREE[1:]}&destination=%2B61291234567")[1]["allowed"] is False

        cidwatch(kafka_bootstrap, topic_prefix, "blocks", "clear", UK_0870)
        wait_for(lambda: api.get(f"/v1/check?cli=%2B{UK_0870[1:]}")[1]["allowed"], 30, "the clear in the API")
        assert [b["cli"] for b in same_as_blocks_list()] == [US_TOLL_FREE]
        delays.append(_seen_after_decision(api, kafka_bootstrap, topic_prefix, tmp_path / "uk2.jsonl",
                                           [_call("a-3", UK_0870, "+442071838750")], UK_0870))
        assert len(same_as_blocks_list()) == 2
        print(f"block visible in the API after its record reached the broker: {[round(d, 3) for d in delays]} s")
        assert max(delays) < 1.0, delays
        assert worker.running(), worker.log_tail()
    finally:
        worker.stop()
