"""`cidwatch demo` end to end: its own broker, a worker and the simulator, stopped by --duration or SIGTERM,
leaving no process behind.

No `kafka_bootstrap` fixture: the demo starts (and must stop) a broker itself, so each test gives it
a free port, a temporary data directory and work dir, a unique topic prefix, and a working directory
that is not the repository.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from cidwatch.dev.broker import free_port

pytestmark = pytest.mark.kafka

# The rules the simulator's traffic is written to trip (cidwatch/dev/simulate.py, one CLI or a few each).
SIMULATED_RULES = {
    "cli.invalid", "cli.not_authorized", "us.tollfree_to_tollfree", "tollfree.international",
    "au.cli_not_permitted", "uk.cli_not_permitted", "fr.daily_limit", "fr.callback_unanswered",
    "us.cnam_missing", "spam.label_risk", "cli.same_as_destination",
}
DECISION = re.compile(r"^\s*[\d.]+s\s+\S+\s+(alert|block|unblock)\s+(\S+)\s+(\S+)\s+\S")
PID = re.compile(r"^(broker|worker): started .*?\(pid (\d+)")


@pytest.fixture
def demo_env(tmp_path):
    if shutil.which("java") is None:
        if os.environ.get("CI"):
            pytest.fail("no Java runtime: the demo's Kafka broker cannot run, and CI must run this test")
        pytest.skip("no Java runtime: the demo's Kafka broker cannot run")
    env = {**os.environ, "CIDWATCH_TOPIC_PREFIX": f"demo{uuid.uuid4().hex[:8]}.", "PYTHONUNBUFFERED": "1"}
    env.pop("CIDWATCH_BROKER_DIR", None)
    return env


def demo_command(tmp_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "cidwatch", "demo", "--port", str(free_port()), "--data-dir",
            str(tmp_path / "broker"), "--workdir", str(tmp_path / "worker"), *args]


def started_pids(output: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for line in output.splitlines() if (m := PID.match(line))}


def alive(pid: int) -> bool:
    """Running and not a zombie (an unreaped child of someone else still answers kill -0)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def processes_mentioning(path: Path) -> list[str]:
    """Command lines of live processes that name `path` (the broker's config, the worker's work dir)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmdline and alive(int(proc.name)):
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def assert_nothing_left(output: str, tmp_path: Path) -> None:
    pids = started_pids(output)
    assert set(pids) == {"broker", "worker"}, output[:3000]
    assert not [name for name, pid in pids.items() if alive(pid)], pids
    assert processes_mentioning(tmp_path) == []


def test_demo_shows_every_rule_and_leaves_no_process(demo_env, tmp_path):
    began = time.monotonic()
    proc = subprocess.run(demo_command(tmp_path, "--duration", "90"), env=demo_env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=240)
    output = proc.stdout
    assert proc.returncode == 0, f"{output[-3000:]}\n{proc.stderr[-3000:]}"
    seen = {(m.group(1), m.group(2)) for line in output.splitlines() if (m := DECISION.match(line))}
    assert {rule for _, rule in seen} >= SIMULATED_RULES, output[-4000:]
    assert ("unblock", "fr.daily_limit") in seen
    # The summary checks the shipped packs' enabled rules: these all fired, and it says so.
    verdict = re.search(r"^  (every rule fired|rules that did not fire: (.*))$", output, re.MULTILINE)
    assert verdict is not None, output[-3000:]
    assert not SIMULATED_RULES & set((verdict.group(2) or "").split(", ")), verdict.group(0)
    assert re.search(r"dead letters: [1-9]", output)
    assert_nothing_left(output, tmp_path)
    assert time.monotonic() - began < 200


def test_sigterm_stops_the_demo_cleanly(demo_env, tmp_path):
    log = tmp_path / "demo.out"
    with log.open("w") as handle:
        proc = subprocess.Popen(demo_command(tmp_path), env=demo_env, cwd=tmp_path, stdout=handle,
                                stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while "Decisions as the worker makes them" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        time.sleep(3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(90) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    output = log.read_text()
    assert "SIGTERM: stopping" in output and "worker: stopped" in output and "broker: stopped" in output
    assert "Summary (stopped by SIGTERM)" in output
    assert_nothing_left(output, tmp_path)
