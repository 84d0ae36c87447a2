"""Shared pytest fixtures."""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

# --- Kafka: one real broker per test session (tests/kafka_harness.py) -------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kafka: needs the session's local Kafka broker (Java; jars via Maven)")
    # kafka-python loads its protocol schemas with importlib.resources' legacy API: noise, not ours.
    for message in ("read_text is deprecated", "open_text is deprecated"):
        config.addinivalue_line("filterwarnings", f"ignore:{message}:DeprecationWarning")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """"127.0.0.1:PORT" of a KRaft broker started once for the session and stopped after it."""
    if shutil.which("java") is None:
        if os.environ.get("CI"):
            pytest.fail("no Java runtime: the Kafka broker cannot run, and CI must run these tests")
        pytest.skip("no Java runtime: the Kafka broker cannot run")
    from kafka_harness import start_test_broker

    bootstrap, stop = start_test_broker(tmp_path_factory.mktemp("kafka"))
    try:
        yield bootstrap
    finally:
        stop()


@pytest.fixture
def topic_prefix() -> str:
    """A unique topic prefix such as "t1a2b3c4d." so tests sharing the broker never collide."""
    return f"t{uuid.uuid4().hex[:8]}."


# --- a webhook receiver: what a real Alertmanager delivers, for the paging tests --------------------


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """Base URL ending in /hook, and the (path, payload) of every notification POSTed under it."""
    received: list[tuple[str, dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            received.append((self.path, json.loads(self.rfile.read(length))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()
