"""Real workers for stream tests: `cidwatch worker` subprocesses on the session's broker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import CoordinatorNotAvailableError

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The key of the destination hashes the workers (and `cidwatch replay` runs) of the stream tests use: a
# worker does not start without one. Replays in the test process use it too, to decide the same.
HASH_KEY = "stream-tests-hash-key"


def env_for(bootstrap: str, prefix: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(CIDWATCH_BROKER=f"kafka://{bootstrap}", CIDWATCH_TOPIC_PREFIX=prefix, PYTHONUNBUFFERED="1")
    env.setdefault("CIDWATCH_HASH_KEY", HASH_KEY)
    return env


def cidwatch(
    bootstrap: str, prefix: str, *args: Any, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "cidwatch", *map(str, args)],
        env=env_for(bootstrap, prefix),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


class Worker:
    """One `cidwatch worker` process with its own work dir, web port and log file."""

    def __init__(self, bootstrap: str, prefix: str, workdir: Path, *args: Any) -> None:
        self.bootstrap, self.prefix, self.workdir = bootstrap, prefix, workdir
        self.web_port = free_port()
        self.args = args
        self.log = workdir / "worker.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Worker:
        self.workdir.mkdir(parents=True, exist_ok=True)
        handle = self.log.open("ab")
        command = [
            sys.executable,
            "-m",
            "cidwatch",
            "worker",
            "--store",
            "memory",
            "--workdir",
            str(self.workdir),
            "--web-port",
            str(self.web_port),
            "--loglevel",
            "info",
            "--tick",
            "0.5",
            *map(str, self.args),
        ]
        self.proc = subprocess.Popen(
            command,
            env=env_for(self.bootstrap, self.prefix),
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def stop(self, timeout: float = 60) -> int:
        """Graceful stop (SIGTERM, as an operator or a rolling deploy would), then make sure it is gone."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(10)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:]) if self.log.exists() else ""


def read_topic(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """Every record of a topic, from the start to its current end."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        out = []
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < ends[tp] for tp in partitions) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                out.extend((r.key, r.value) for r in records)
        return out
    finally:
        consumer.close()


def decisions(bootstrap: str, prefix: str) -> list[dict[str, Any]]:
    return [json.loads(value) for _, value in read_topic(bootstrap, f"{prefix}decisions") if value]


def wait_for(predicate: Callable[[], Any], timeout: float, message: str, worker: Worker | None = None,
             interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            log = f"\nworker log:\n{worker.log_tail(120)}" if worker else ""
            raise AssertionError(f"timed out after {timeout:.0f} s: {message}{log}")
        time.sleep(interval)


def settle(fetch: Callable[[], list], expected: int, timeout: float, quiet: float = 4.0) -> list:
    """Wait until `fetch()` has at least `expected` items and then stops growing for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last, last_change = fetch(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(1)
        current = fetch()
        if len(current) != len(last):
            last, last_change = current, time.monotonic()
        elif len(current) >= expected and time.monotonic() - last_change >= quiet:
            return current
    return last


def group_assignment(bootstrap: str, group: str) -> dict[str, set[tuple[str, int]]]:
    """Member id -> the (topic, partition) pairs it owns in a consumer group, as the broker reports it;
    {} while the group has no coordinator yet (a fresh broker creates its offsets topic on first use)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        try:
            described = admin.describe_groups([group])[group]
        except CoordinatorNotAvailableError:
            return {}
        out: dict[str, set[tuple[str, int]]] = {}
        for member in described.get("members") or []:
            assignment = member.get("member_assignment") or {}
            owned = set()
            for entry in assignment.get("assigned_partitions", []) if isinstance(assignment, dict) else []:
                owned.update((entry["topic"], p) for p in entry["partitions"])
            out[member["member_id"]] = owned
        return out
    finally:
        admin.close()
