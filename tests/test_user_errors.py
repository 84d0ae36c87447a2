"""Every error a user can cause is one line naming the file, field or topic, exit status 2, no traceback.

The commands run as subprocesses, as a user runs them: what is tested is what reaches the terminal.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from stream_harness import ROOT, cidwatch, free_port

from cidwatch import tail
from streams.dlq import Rejected, dead_letter
from streams.settings import Settings
from streams.topics import create_topics

EXAMPLES = ROOT / "examples"


def run(*args: object, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cidwatch", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "CIDWATCH_HASH_KEY": "k", **(env or {})}, timeout=timeout)


def one_line(proc: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed command (and that it failed with status 2, no traceback)."""
    stderr = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, stderr)
    assert len(stderr.splitlines()) == 1 and stderr.startswith("cidwatch: error: "), stderr
    return stderr


@pytest.mark.kafka
def test_producing_to_a_topic_that_does_not_exist(kafka_bootstrap: str, topic_prefix: str) -> None:
    line = one_line(cidwatch(kafka_bootstrap, topic_prefix, "produce", EXAMPLES / "cdrs.jsonl", check=False))
    assert f"topic {topic_prefix}cdr does not exist" in line and "cidwatch topics create" in line


def test_inventory_push_with_no_broker() -> None:
    port = free_port()  # nobody listens there
    line = one_line(run("inventory", "push", EXAMPLES / "inventory.yaml", env={"CIDWATCH_BROKER": f"127.0.0.1:{port}"}))
    assert f"cannot reach the Kafka broker at 127.0.0.1:{port}" in line


@pytest.mark.parametrize("broker", ["localhost", "kafka://host:99999", "host:port", "a:1;;b:2"])
def test_a_malformed_cidwatch_broker(broker: str) -> None:
    line = one_line(run("tail", env={"CIDWATCH_BROKER": broker}))
    assert line.startswith("cidwatch: error: CIDWATCH_BROKER: ") and "is not HOST:PORT" in line


def test_an_unwritable_out(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    line = one_line(run("replay", EXAMPLES / "cdrs.jsonl", "--out", a_file / "out"))
    assert line == f"cidwatch: error: --out {a_file / 'out'}: cannot write there: Not a directory"


@pytest.mark.parametrize("command", ["replay", "produce"])
def test_a_directory_given_as_input(command: str, tmp_path: Path) -> None:
    extra = ("--out", tmp_path / "out") if command == "replay" else ()
    line = one_line(run(command, EXAMPLES, *extra))
    assert line == f"cidwatch: error: {EXAMPLES}: is a directory, not a file; name the files in it (for example " \
                   f"{EXAMPLES}/*.jsonl)"


@pytest.mark.parametrize("command", ["replay", "push"])
def test_a_duplicate_number_in_an_inventory_names_both_entries(command: str, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text('numbers:\n  - {number: "+33162000000", source: claimed, tenant: acme}\n'
                         '  - {number: "+33 1 84 88 40 00", source: claimed}\n'
                         '  - {number: "+33 1 62 00 00 00", source: ported, tenant: globex}\n')
    args = (("replay", EXAMPLES / "cdrs.jsonl", "--inventory", inventory, "--out", tmp_path / "out")
            if command == "replay" else ("inventory", "push", inventory))
    line = one_line(run(*args, env={"CIDWATCH_BROKER": f"127.0.0.1:{free_port()}"}))
    assert line == (f"cidwatch: error: {inventory}: entry 3: number +33162000000 is listed twice, at entry 1 and at "
                    "entry 3; keep one entry per number")


def test_a_duplicate_number_in_a_csv_inventory_names_both_lines(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.csv"
    inventory.write_text("number,source\n+33162000000,claimed\n+33184884000,claimed\n+33162000000,ported\n")
    line = one_line(run("replay", EXAMPLES / "cdrs.jsonl", "--inventory", inventory, "--out", tmp_path / "out"))
    assert "line 4: number +33162000000 is listed twice, at line 2 and at line 4" in line


def test_yaml_errors_name_the_file_line_and_column(tmp_path: Path) -> None:
    broken = 'numbers:\n  - {number: "+33162000000", source: claimed\n  - other\n'
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(broken)
    line = one_line(run("replay", EXAMPLES / "cdrs.jsonl", "--inventory", inventory, "--out", tmp_path / "o"))
    assert line == (f"cidwatch: error: {inventory}: not valid YAML: line 4, column 1: expected ',' or '}}', but got "
                    "'<stream end>' (while parsing a flow mapping)")
    packs = tmp_path / "packs"
    packs.mkdir()
    (packs / "fr.yaml").write_text("rules:\n  - id: fr.daily_limit\n    kind: [block\n")
    line = one_line(run("replay", EXAMPLES / "cdrs.jsonl", "--rules", packs, "--out", tmp_path / "o"))
    assert line.startswith(f"cidwatch: error: {packs / 'fr.yaml'}: not valid YAML: line 4, column 1: ")
    profile = tmp_path / "asterisk.yaml"
    profile.write_text("columns:\n  src: 'caller\n")
    line = one_line(run("replay", EXAMPLES / "cdrs.jsonl", "--format", "asterisk", "--profile", profile,
                        "--out", tmp_path / "o"))
    assert line.startswith(f"cidwatch: error: {profile}: not valid YAML: line 3, column 1: found unexpected end "
                           "of stream")


def test_a_closed_pipe_is_one_line(tmp_path: Path) -> None:
    """`cidwatch history ... | head -1`: the reader goes away while cidwatch still writes."""
    folder = tmp_path / "replay"
    folder.mkdir()
    decision = {"id": "d", "kind": "alert", "rule": "cli.invalid", "caller_id": "+33140000001", "message": "m" * 200}
    with (folder / "decisions.jsonl").open("w") as handle:
        for number in range(3000):  # about 700 KB of output: far more than a pipe holds
            handle.write(json.dumps({**decision, "id": f"d{number}", "at": f"2026-05-04T10:{number % 60:02d}:00Z"})
                         + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "cidwatch", "history", "+33140000001", "--from", folder],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, text=True)
    assert proc.stdout is not None and proc.stdout.readline()
    proc.stdout.close()  # as `head -1` exits
    stderr = proc.stderr.read() if proc.stderr else ""
    assert proc.wait(60) == 2
    assert stderr.strip() == "cidwatch: error: standard output was closed (broken pipe); output stopped"


@pytest.fixture
def silent_broker() -> Iterator[str]:
    """An address that accepts TCP connections and never answers (a firewall, a hung broker)."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as server:
        yield f"127.0.0.1:{server.getsockname()[1]}"


def test_a_broker_that_does_not_answer_is_reported_after_one_bounded_timeout(silent_broker: str,
                                                                            tmp_path: Path) -> None:
    """Every broker command waits once, CIDWATCH_KAFKA_TIMEOUT seconds, and says so in the same words."""
    env = {**os.environ, "CIDWATCH_BROKER": silent_broker, "CIDWATCH_KAFKA_TIMEOUT": "2", "CIDWATCH_HASH_KEY": "k"}
    commands = [
        ("topics", "create"), ("produce", EXAMPLES / "cdrs.jsonl"), ("tail",), ("blocks", "list"),
        ("blocks", "clear", "+33140000001"), ("history", "+33140000001"),
        ("inventory", "push", EXAMPLES / "inventory.yaml"),
        ("inventory", "withdraw"), ("simulate", "--duration", "1"),
        ("worker", "--workdir", tmp_path / "w", "--web-port", free_port()),
    ]
    running = [(command, subprocess.Popen([sys.executable, "-m", "cidwatch", *map(str, command)], env=env, cwd=ROOT,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
               for command in commands]
    for command, proc in running:
        _, stderr = proc.communicate(timeout=90)
        assert proc.returncode == 2, (command, stderr)
        lines = [line for line in stderr.splitlines() if not line.startswith("simulating:")]
        assert lines == [f"cidwatch: error: cannot reach the Kafka broker at {silent_broker} (no answer within 2 s); "
                         "start one with `cidwatch broker start` or set CIDWATCH_BROKER"], (command, stderr)


@pytest.mark.kafka
def test_tail_dlq_prints_time_reason_field_source_and_the_record(kafka_bootstrap: str, topic_prefix: str) -> None:
    settings = Settings(broker=kafka_bootstrap, topic_prefix=topic_prefix)
    create_topics(settings, partitions=1)
    from streams.connection import kafka_producer

    letter = dead_letter(b'{"call_id":"c1","started_at":"yesterday"}',
                         Rejected("bad_value", "started_at", "not ISO 8601"), f"{topic_prefix}cdr", 0, 17)
    producer = kafka_producer(settings, "test")
    producer.send(settings.topic("dlq"), value=json.dumps(letter).encode()).get(10)
    producer.close()
    proc = cidwatch(kafka_bootstrap, topic_prefix, "tail", "dlq", "--from-beginning", "--max", "1", "--timeout", "20")
    at, reason, field, source, record = proc.stdout.strip().split("  ")
    assert at.endswith("Z") and at[:2] == "20" and at != "-"
    assert (reason, field, source) == ("bad_value: not ISO 8601", "started_at", f"{topic_prefix}cdr/0@17")
    assert record == '{"call_id":"c1","started_at":"yesterday"}'
    assert tail.format_record("dlq", None, json.dumps(letter).encode()).endswith(record)


def test_a_worker_without_a_hash_key_does_not_start(tmp_path: Path) -> None:
    """Destinations are kept only as keyed hashes: with no key, one line naming where to set it, before any
    connection (no broker listens here)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CIDWATCH_HASH_KEY", "CIDWATCH_HASH_KEY_FILE")}
    proc = subprocess.run([sys.executable, "-m", "cidwatch", "worker", "--workdir", tmp_path], capture_output=True,
                          text=True, cwd=ROOT, env={**env, "CIDWATCH_BROKER": f"127.0.0.1:{free_port()}"}, timeout=60)
    line = one_line(proc)
    assert "no hash key" in line and "--hash-key-file" in line and "CIDWATCH_HASH_KEY" in line
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    assert "no hash key" in one_line(run("worker", "--workdir", tmp_path, "--hash-key-file", empty,
                                         env={"CIDWATCH_HASH_KEY": ""}))
