"""`cidwatch demo`: the whole pipeline on one machine, in one command (what `./dev demo` runs).

It starts the local broker if none runs on the data directory, creates the topics, pushes the
simulator's number inventory, starts one worker, runs the simulator, and prints every decision and
dead letter as the worker emits it. Ctrl-C, SIGTERM or `--duration` stops it all: the simulator, the
worker (SIGTERM, then SIGKILL of its process group if it hangs) and the broker if the demo started
it. Why so careful: a demo that leaves a JVM or a worker behind holds the port and the RocksDB lock,
and the next run fails in a confusing way.

The worker keeps its tables in `--workdir` between runs, on the configured topic prefix. Those tables
are only consistent with the broker whose changelog topics they were restored from, so a marker file
records the broker's cluster id and the prefix; when either changed (a wiped `.cache/broker`, another
prefix), the stale tables are removed before the worker starts.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from cidwatch.cli import CliError
from cidwatch.dev import broker
from cidwatch.dev.simulate import (
    Simulator,
    default_start,
    describe_run,
    generate,
    inventory_yaml,
    new_seed,
    sim_inventory,
)
from streams.settings import Settings

DEFAULT_WORKDIR = Path(".cache/demo-worker")
DEFAULT_RATE = 40.0
DEFAULT_SPEED = 60.0
WORKER_READY_TIMEOUT_S = 120.0
WORKER_STOP_TIMEOUT_S = 30.0
READY_LINE = "Worker ready"  # Faust's recovery service, at log level info
STABLE_FALLBACK_S = 15.0
DRAIN_QUIET_S = 3.0  # after the simulator stops: print until this long without a decision...
DRAIN_MAX_S = 12.0  # ...or this long at most
MARKER = ".cidwatch-demo.json"


def enabled_rules() -> tuple[str, ...]:
    """The rules the demo's worker runs (the shipped packs' enabled rules, in registry order): the
    summary says which of them did not fire."""
    from rules.pack import load_packs
    from rules.registry import registry

    pack = load_packs()
    return tuple(rule_id for rule_id in registry() if rule_id in pack)


class Stop(BaseException):
    """SIGTERM (or SIGINT) asked the demo to stop: unwinds to the cleanup like Ctrl-C, past `except Exception`."""


# --- output -----------------------------------------------------------------------------------


def say(text: str = "", out: TextIO | None = None) -> None:
    print(text, file=out or sys.stdout, flush=True)


def decision_line(data: dict[str, Any], elapsed_s: float) -> str:
    """`  12.3s  at  kind  rule  caller_id  message`: tail's columns, aligned, after the demo's clock."""
    return (f"{_elapsed(elapsed_s)}  {_text(data.get('at')):20}  {_text(data.get('kind')):7}  "
            f"{_text(data.get('rule')):23}  {_text(data.get('caller_id')):16}  {_text(data.get('message'))}")


def dlq_line(data: dict[str, Any], elapsed_s: float) -> str:
    """One dead letter: why, where it came from, and the start of the record as it was sent."""
    source = data.get("source") if isinstance(data.get("source"), dict) else {}
    where = f"{source.get('topic', '-')}/{source.get('partition', '-')}@{source.get('offset', '-')}"
    try:
        raw = base64.b64decode(data.get("value_b64") or "").decode("utf-8", "replace")
    except ValueError:
        raw = "?"
    reason = f"{_text(data.get('field'))}: {_text(data.get('reason'))}"
    return f"{_elapsed(elapsed_s)}  {'dead letter':20}  {'dlq':7}  {where:40}  {reason}  |  {raw[:90]}"


def _elapsed(seconds: float) -> str:
    return f"{seconds:6.1f}s"


def _text(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass
class Tally:
    """What the demo saw, and when each rule first showed (real seconds after the simulator started)."""

    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    first_seen: dict[str, float] = field(default_factory=dict)
    expected: tuple[str, ...] = field(default_factory=enabled_rules)

    def add_decision(self, data: dict[str, Any], elapsed_s: float) -> None:
        rule, kind = str(data.get("rule")), str(data.get("kind"))
        self.decisions[(rule, kind)] += 1
        self.first_seen.setdefault(rule, elapsed_s)
        if kind == "unblock":
            self.first_seen.setdefault(f"{rule} unblock", elapsed_s)

    def summary(self) -> list[str]:
        """Decisions per rule and kind, dead letters per reason, and rules that never fired."""
        lines = [f"  {'rule':26} {'alert':>6} {'block':>6} {'unblock':>8}   first seen"]
        rules = sorted({rule for rule, _ in self.decisions})
        for rule in rules:
            counts = [self.decisions[(rule, kind)] for kind in ("alert", "block", "unblock")]
            first, unblock = self.first_seen.get(rule), self.first_seen.get(f"{rule} unblock")
            lines.append(f"  {rule:26} {counts[0]:6} {counts[1]:6} {counts[2]:8}   "
                         f"{'-' if first is None else _elapsed(first)}"
                         + ("" if unblock is None else f" (unblock at {unblock:.1f}s)"))
        if not rules:
            lines.append("  (no decisions)")
        letters = ", ".join(f"{reason} {n}" for reason, n in sorted(self.dead_letters.items()))
        lines.append(f"  dead letters: {sum(self.dead_letters.values())}" + (f" ({letters})" if letters else ""))
        missing = [rule for rule in self.expected if rule not in rules]
        lines.append("  every rule fired" if not missing else f"  rules that did not fire: {', '.join(missing)}")
        return lines


# --- the pieces -------------------------------------------------------------------------------


@dataclass
class Stack:
    """What the demo started, so the cleanup stops exactly that and nothing else."""

    data_dir: Path
    signals: StopSignals
    broker_was_running: bool = True
    worker: subprocess.Popen[bytes] | None = None
    simulator: Simulator | None = None
    consumer: Any = None


def ensure_broker(stack: Stack, port: int) -> broker.BrokerInfo:
    """The data directory's broker: the running one, or one started now (and stopped at the end)."""
    broker.ensure_jars()
    info = broker.status(stack.data_dir)
    if info.running:
        say(f"broker: already running on {info.bootstrap} (pid {info.pid}); the demo leaves it running")
        return info
    stack.broker_was_running = False
    began = time.monotonic()
    info = broker.start(port=port, data_dir=stack.data_dir)
    say(f"broker: started on {info.bootstrap} in {time.monotonic() - began:.1f} s (pid {info.pid}, "
        f"log {info.log_path})")
    return info


def prepare_topics(settings: Settings) -> int:
    """Create the topics if missing; return the cdr topic's partition count (the worker must match it)."""
    from cidwatch.tail import make_consumer
    from streams.topics import create_topics

    result = create_topics(settings)
    say(f"topics: {len(result.created)} created, {len(result.existing)} already there "
        f"(prefix {settings.topic_prefix!r})")
    consumer = make_consumer(settings, "cidwatch-demo")
    try:
        return len(consumer.partitions_for_topic(settings.topic("cdr")) or ()) or 8
    finally:
        consumer.close()


def cluster_id(settings: Settings) -> str:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id="cidwatch-demo")
    try:
        return str(admin.describe_cluster().get("cluster_id"))
    finally:
        admin.close()


def reset_stale_state(workdir: Path, settings: Settings) -> None:
    """Remove the worker's tables when they were restored from another broker or prefix (see module doc)."""
    identity = {"cluster_id": cluster_id(settings), "topic_prefix": settings.topic_prefix}
    marker = workdir / MARKER
    try:
        previous = json.loads(marker.read_text())
    except (OSError, ValueError):
        previous = None
    if previous != identity and workdir.exists() and any(workdir.iterdir()):
        say(f"worker state: {workdir} belongs to another broker or topic prefix; starting it afresh")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(identity) + "\n")


def push_inventory(settings: Settings, seed: int, workdir: Path) -> Path:
    """Write the simulator's inventory under the work dir and publish it to the inventory topic."""
    from streams.inventory_topic import push

    inventory = sim_inventory(seed)
    path = workdir / "inventory.yaml"
    path.write_text(inventory_yaml(inventory), encoding="utf-8")
    push(settings, inventory)
    say(f"inventory: {len(inventory)} numbers of acme, globex and initech pushed ({path})")
    return path


def hash_key_file(workdir: Path) -> Path:
    """The demo's key of the destination hashes, made once beside the worker's tables (readable by its owner
    only): the worker does not start without a key, and the tables it keeps between runs need the same one."""
    path = workdir / "hash.key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32) + "\n", encoding="utf-8")
    return path


def start_worker(stack: Stack, settings: Settings, workdir: Path, inventory: Path, partitions: int) -> Path:
    """`cidwatch worker` in its own session (a Ctrl-C in the terminal reaches the demo, not it)."""
    log = workdir / "worker.log"
    web_port = broker.free_port()
    command = [sys.executable, "-m", "cidwatch", "worker", "--store", "rocksdb", "--workdir", str(workdir),
               "--web-port", str(web_port), "--partitions", str(partitions), "--tick", "1",
               "--inventory", str(inventory), "--loglevel", "info"]
    if not (os.environ.get("CIDWATCH_HASH_KEY") or os.environ.get("CIDWATCH_HASH_KEY_FILE")):
        command += ["--hash-key-file", str(hash_key_file(workdir))]
    env = {**os.environ, "CIDWATCH_BROKER": settings.broker, "CIDWATCH_TOPIC_PREFIX": settings.topic_prefix,
           "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as handle, stack.signals.deferred():
        stack.worker = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
                                        env=env, start_new_session=True)
    (workdir / "worker.pid").write_text(f"{stack.worker.pid}\n")
    say(f"worker: started (pid {stack.worker.pid}, rocksdb tables in {workdir}, log {log}, "
        f"metrics http://127.0.0.1:{web_port}/metrics)")
    return log


def wait_for_worker(stack: Stack, settings: Settings, log: Path) -> None:
    """Until the worker has restored its tables and consumes, so the first records are judged as they come.

    Faust says "Worker ready" in its log (at the info level the demo asks for) once recovery is over;
    should its wording change, a consumer group that has been stable for a while will do.
    """
    from streams.config import WorkerConfig

    group = WorkerConfig(settings=settings).app_id
    began = time.monotonic()
    stable_since: float | None = None
    while time.monotonic() - began < WORKER_READY_TIMEOUT_S:
        if stack.worker is not None and stack.worker.poll() is not None:
            raise CliError(f"the worker exited with status {stack.worker.returncode} while starting:\n"
                           f"{_tail(log)}")
        if stable_since is None and _group_has_partitions(settings, group):
            stable_since = time.monotonic()
        if stable_since is not None and (READY_LINE in _tail(log, 400)
                                         or time.monotonic() - stable_since > STABLE_FALLBACK_S):
            say(f"worker: ready in {time.monotonic() - began:.1f} s")
            return
        time.sleep(0.5)
    raise CliError(f"the worker did not get ready within {WORKER_READY_TIMEOUT_S:.0f} s:\n{_tail(log)}")


def _group_has_partitions(settings: Settings, group: str) -> bool:
    from kafka.admin import KafkaAdminClient

    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id="cidwatch-demo")
    except Exception:  # the broker is up: a failure here is transient
        return False
    try:
        return _group_stable(admin, group)
    except Exception:  # the group does not exist yet
        return False
    finally:
        admin.close()


def _group_stable(admin: Any, group: str) -> bool:
    """A stable group with members (kafka-python 3's describe_groups, or 2's describe_consumer_groups)."""
    if hasattr(admin, "describe_groups"):
        described = admin.describe_groups([group]).get(group) or {}
        return described.get("group_state") == "Stable" and bool(described.get("members"))
    info = admin.describe_consumer_groups([group])[0]
    return info.state == "Stable" and bool(info.members)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def open_output_consumer(settings: Settings) -> Any:
    """A group-less consumer of the decisions and DLQ topics, positioned at their ends now."""
    from kafka import TopicPartition

    from cidwatch.tail import make_consumer

    consumer = make_consumer(settings, "cidwatch-demo")
    assigned = []
    for name in ("decisions", "dlq"):
        topic = settings.topic(name)
        assigned += [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    consumer.assign(assigned)
    consumer.seek_to_end(*assigned)
    for tp in assigned:
        consumer.position(tp)  # resolve the end offsets now, not at the first poll
    return consumer


def poll_output(consumer: Any, settings: Settings) -> Iterator[tuple[str, dict[str, Any]]]:
    """("decision" | "dlq", record) for what arrived within half a second, in produce order."""
    batch = consumer.poll(timeout_ms=500)
    records = sorted((r for rs in batch.values() for r in rs), key=lambda r: (r.timestamp, r.partition, r.offset))
    dlq = settings.topic("dlq")
    for record in records:
        try:
            data = json.loads(record.value)
        except (TypeError, ValueError):
            continue
        if isinstance(data, dict):
            yield ("dlq" if record.topic == dlq else "decision"), data


# --- running and stopping ---------------------------------------------------------------------


def show_output(stack: Stack, settings: Settings, tally: Tally, began: float) -> int:
    """Print one poll's decisions and dead letters; return how many arrived."""
    n = 0
    for kind, data in poll_output(stack.consumer, settings):
        elapsed = time.monotonic() - began
        if kind == "dlq":
            tally.dead_letters[str(data.get("error_class"))] += 1
            say(dlq_line(data, elapsed))
        else:
            tally.add_decision(data, elapsed)
            say(decision_line(data, elapsed))
        n += 1
    return n


def watch(stack: Stack, settings: Settings, tally: Tally, duration: float, log: Path) -> float:
    """Print decisions until --duration (or Ctrl-C); then drain the last ones. Returns the real seconds run."""
    began = time.monotonic()
    simulator = stack.simulator
    assert simulator is not None and stack.worker is not None
    while duration <= 0 or time.monotonic() - began < duration:
        show_output(stack, settings, tally, began)
        if stack.worker.poll() is not None:
            raise CliError(f"the worker stopped (status {stack.worker.returncode}):\n{_tail(log)}")
        if not simulator.running():
            if simulator.error is not None:
                raise CliError(f"the simulator failed: {simulator.error}")
            break
    simulator.stop()
    quiet_since = time.monotonic()
    drain_began = time.monotonic()
    while time.monotonic() - quiet_since < DRAIN_QUIET_S and time.monotonic() - drain_began < DRAIN_MAX_S:
        if show_output(stack, settings, tally, began):
            quiet_since = time.monotonic()
    return time.monotonic() - began


def stop_worker(process: subprocess.Popen[bytes]) -> str:
    """SIGTERM (a graceful Faust stop), then SIGKILL of its whole process group if it hangs."""
    if process.poll() is not None:
        return f"worker: had exited (status {process.returncode})"
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(WORKER_STOP_TIMEOUT_S)
        return f"worker: stopped in {time.monotonic() - began:.1f} s"
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        return f"worker: did not stop within {WORKER_STOP_TIMEOUT_S:.0f} s; killed"


def cleanup(stack: Stack) -> None:
    """Stop what the demo started, in dependency order; each step runs even if an earlier one failed."""
    if stack.simulator is not None:
        stack.simulator.stop()
    if stack.consumer is not None:
        with contextlib.suppress(Exception):
            stack.consumer.close()
    if stack.worker is not None:
        say(stop_worker(stack.worker))
    if not stack.broker_was_running:
        began = time.monotonic()
        try:
            if broker.stop(stack.data_dir):
                say(f"broker: stopped in {time.monotonic() - began:.1f} s")
        except broker.BrokerError as exc:
            say(f"broker: {exc}", sys.stderr)


class StopSignals:
    """SIGTERM stops the demo like Ctrl-C (by raising Stop in the main thread); once the cleanup has
    begun, further signals are noted and ignored, so a second Ctrl-C cannot leave a worker or broker behind."""

    def __init__(self) -> None:
        self.stopping = False
        self._deferring = False
        self._pending: str | None = None
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping:
            say("(already stopping: the worker and broker are being shut down)", sys.stderr)
            return
        if self._deferring:
            self._pending = self._pending or signal.Signals(signum).name
            return
        self.stopping = True
        raise Stop(signal.Signals(signum).name)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold a stop request until the block is over (between spawning a process and recording it)."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        if self._pending and not self.stopping:
            self.stopping = True
            raise Stop(self._pending)

    def __enter__(self) -> StopSignals:
        self._previous = {sig: signal.signal(sig, self._handler) for sig in (signal.SIGTERM, signal.SIGINT)}
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)


def run_demo(args: argparse.Namespace) -> int:
    """Set up, watch, and always clean up; the summary comes last. Exit status 0, or 130/143 when
    stopped by Ctrl-C/SIGTERM."""
    data_dir = (args.data_dir or broker.default_data_dir()).resolve()
    signals = StopSignals()
    stack = Stack(data_dir=data_dir, signals=signals)
    tally = Tally()
    seed = args.seed if args.seed is not None else new_seed()
    ran_s = 0.0
    stopped_by = None
    with signals:
        try:
            ran_s = _run(stack, args, seed, tally)
        except (KeyboardInterrupt, Stop) as exc:
            signals.stopping = True
            stopped_by = "SIGTERM" if str(exc) == "SIGTERM" else "Ctrl-C"
            say(f"\n{stopped_by}: stopping")
        finally:
            signals.stopping = True
            sent = stack.simulator.stats if stack.simulator is not None else None
            cleanup(stack)
    say("\nSummary" + (f" (stopped by {stopped_by})" if stopped_by else "") + ":")
    if sent is None:
        say("  stopped before the simulator started")
    else:
        say(f"  {sent.sent} CDRs sent ({sent.malformed} malformed), {sent.sim_s / 60:.0f} simulated minutes"
            + (f" in {ran_s:.0f} s" if ran_s else ""))
        for line in tally.summary():
            say(line)
    return {None: 0, "SIGTERM": 128 + signal.SIGTERM}.get(stopped_by, 128 + signal.SIGINT)


def _run(stack: Stack, args: argparse.Namespace, seed: int, tally: Tally) -> float:
    info = ensure_broker(stack, args.port)
    prefix = os.environ.get("CIDWATCH_TOPIC_PREFIX", Settings().topic_prefix)
    settings = Settings(broker=f"kafka://{info.bootstrap}", topic_prefix=prefix)
    partitions = prepare_topics(settings)
    workdir = args.workdir.resolve()
    reset_stale_state(workdir, settings)
    inventory = push_inventory(settings, seed, workdir)
    log = start_worker(stack, settings, workdir, inventory, partitions)
    wait_for_worker(stack, settings, log)
    stack.consumer = open_output_consumer(settings)
    start = default_start(datetime.now(UTC))
    say(f"simulator: {args.rate:g} CDR/s of ordinary traffic; {describe_run(seed, start, args.speed)}")
    emissions = generate(seed, args.rate, args.duration, args.speed, start)
    stack.simulator = Simulator(settings, emissions, args.speed).start()
    until = f"for {args.duration:g} s" if args.duration > 0 else "until Ctrl-C"
    say(f"\nDecisions as the worker makes them ({until}): demo clock, call time (UTC, simulated), kind, rule, "
        "caller ID, message\n")
    return watch(stack, settings, tally, args.duration, log)


# --- command line -----------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cidwatch demo`."""
    parser = subparsers.add_parser(
        "demo", help="run broker, worker and simulator together and show decisions as they happen",
        description="The one-command demo: start the local Kafka broker if none runs on the data directory, "
        "create the topics (prefix: env CIDWATCH_TOPIC_PREFIX), push the simulated tenants' inventory, start "
        "one worker (RocksDB tables in --workdir, log in --workdir/worker.log), send simulated traffic that "
        "trips every rule, and print each decision and dead letter as it happens. Ctrl-C or --duration stops "
        "everything it started (the broker only if it started it) and prints a summary per rule.")
    parser.add_argument("--duration", type=float, default=0.0, metavar="S",
                        help="seconds of simulated traffic once the worker is ready (default 0: until Ctrl-C); "
                        "every rule shows within about 45 s but us.calling_hours, which waits for 21:00 in "
                        "New York (2-3 min at the default speed; the start line says when)")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, metavar="N",
                        help=f"records per second of ordinary traffic (default {DEFAULT_RATE:g})")
    parser.add_argument("--speed", type=float, default=DEFAULT_SPEED, metavar="X",
                        help=f"simulated seconds per real second (default {DEFAULT_SPEED:g})")
    parser.add_argument("--seed", type=int, default=None, metavar="N",
                        help="simulator seed (default: a new one each run, so every rule fires again)")
    parser.add_argument("--port", type=int, default=broker.DEFAULT_PORT, metavar="N",
                        help=f"broker port on 127.0.0.1 when the demo starts it (default {broker.DEFAULT_PORT})")
    parser.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                        help="broker data directory (env CIDWATCH_BROKER_DIR; default ./.cache/broker)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, metavar="DIR",
                        help=f"the worker's table storage and log (default {DEFAULT_WORKDIR})")
    parser.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.rate <= 0 or args.speed <= 0 or args.duration < 0:
        raise CliError("--rate and --speed must be positive, --duration 0 or more")
    return run_demo(args)
