"""Stream figures in one run on one broker, each next to what it is compared with.

Every consumer reads the same generated CDRs (bench/generate.py, seed 5, 3,000 CLIs, every rule firing),
keyed by their subject as `cidwatch produce` keys them (`cidwatch.produce.record_key`), 8 partitions:

  (a) a bare aiokafka consumer + json.loads: the ceiling of any Python consumer on this machine;
  (b) a no-op Faust agent (`async for e in stream.events(): json.loads(e.value)`) in its own group,
      measured before and after the workers (the difference shows the machine's drift in the run), and
      the same agent reading batches as the worker does (`noack_take`, then each event acknowledged);
  (c) the current worker with every rule (`python -m cidwatch worker --store memory`), one worker, then
      two workers (separate work dirs and web ports) on a second copy of the input;
  (d) Kafka messages per CDR: the records the worker produced to every topic of its prefix (decisions,
      alerts, blocks, forwards, dead letters, its changelog) plus the records it consumed, over the CDRs;
  (e) the worker of a baseline revision (default 00f27cb, main before the batch rewrite), run from its own
      worktree (bench/baseline.py) against its own topic prefix on the same broker;
  (f) produce -> decision latency: a fresh worker, CDRs produced at a steady --rate for --latency-seconds;
      a decision's record timestamp minus the produce timestamp of the CDR it judged (by call_id).

A rate is counted from the group's first offset commit (process start, group join and table recovery
excluded) to the moment every partition of its inputs is committed to its end; a run that has not
finished after --max-seconds is cut there and its rate taken over the records it judged. Each worker
and the no-op agent run as subprocesses; their CPU time over the same window is read from /proc, with
the broker's and the rest of the machine's ("others": on a shared machine, other people's jobs), so a
rate can be read against the CPU it actually got.

Run: .venv/bin/python bench/stream_throughput.py [--records N] [--rate R] [--workers 2] [--skip-baseline]
     [--profile DIR]   (py-spy the no-op agent and the first worker; speedscope files and a summary)
It starts its own broker on a free loopback port (data in a temporary folder) and stops it and every
process it started at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PARTITIONS = 8
BASELINE_REV = "00f27cb"
TICKS = os.sysconf("SC_CLK_TCK")


# -- the no-op Faust agent (run in its own process: `stream_throughput.py noop-agent ...`) -------------

def noop_agent(bootstrap: str, topic: str, group: str, web_port: str, datadir: str, mode: str = "events") -> None:
    """A Faust app with one agent that only parses each value: Faust's own cost per event. `mode` "take"
    reads batches as the worker does (`noack_take(2000, within=0.02)`, then each event acknowledged)."""
    import faust

    app = faust.App(group, broker=f"kafka://{bootstrap}", store="memory://", datadir=datadir,
                    web_port=int(web_port), web_bind="127.0.0.1", web_host="127.0.0.1",
                    topic_partitions=PARTITIONS, topic_replication_factor=1, key_serializer="raw",
                    value_serializer="raw", consumer_auto_offset_reset="earliest", broker_commit_interval=1.0)
    source = app.topic(topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    @app.agent(source, name="noop")
    async def noop(stream: Any) -> None:
        if mode == "take":
            async for events in stream.noack_take(2000, within=0.02):
                for event in events:
                    json.loads(event.value)
                for event in events:
                    await stream.ack(event)
        else:
            async for event in stream.events():
                json.loads(event.value)

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


# -- processes -----------------------------------------------------------------------------------------

def free_port() -> int:
    from cidwatch.dev.broker import free_port as pick

    return pick()


def spawn(argv: Sequence[str], log: Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        return subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM (a graceful stop), then SIGKILL to the process group it leads if it lingers."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU of the processes (all their threads) so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


class Profiler:
    """`py-spy record` attached to a process (non-blocking sampling) until `stop()`."""

    def __init__(self, pid: int, out: Path) -> None:
        self.out = out
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if spy is None:
            raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
        self.proc = subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "200", "--nonblocking",
                                      "--format", "speedscope", "--output", str(out)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


# Frames every sample passes through (the event loop, the entry points): left out of the inclusive list.
TRUNK = ("BaseEventLoop.run_until_complete ", "BaseEventLoop.run_forever ", "BaseEventLoop._run_once ",
         "Handle._run ", "_run_code ", "_run_module_as_main ", "Worker.execute_from_commandline ", "<module> ",
         "main (cidwatch/cli.py)", "run (cidwatch/worker_cmd.py)", "CidwatchWorker.start ", "noop_agent (",
         "Agent._execute_actor ")


def _package(file: str) -> str:
    """What a frame's code belongs to: a site-packages distribution, a cidwatch package, or a stdlib module."""
    parts = Path(file).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    for own in ("rules", "streams", "cidwatch", "bench"):
        if own in parts and str(ROOT) in file:
            return f"cidwatch {own}/"
    return parts[-2] if len(parts) > 1 and parts[-2] not in ("lib", "python3.11") else Path(file).stem


def summarise_profile(path: Path, cpu_us: float, top: int = 16) -> list[str]:
    """Where a py-spy speedscope profile spends its samples, as shares and as µs of `cpu_us` (the process's
    CPU per event, read from /proc over the same run): by package, top frames inclusive and self.

    py-spy drops idle samples (a thread waiting in epoll) and weighs each sample in seconds, so the
    weights add up to the busy time of all threads.
    """
    if not path.exists():
        return [f"  (no profile written at {path})"]
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]

    def label(i: int) -> str:
        file = frames[i].get("file") or ""
        parts = Path(file).parts
        short = "/".join(parts[parts.index("site-packages") + 1:]) if "site-packages" in parts else \
            "/".join(parts[-2:])
        return f"{frames[i]['name']} ({short})"

    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    busy = wall = 0.0
    for profile in data["profiles"]:
        wall = max(wall, profile["endValue"] - profile["startValue"])
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            busy += weight
            if stack:
                own[label(stack[-1])] += weight
                packages[_package(frames[stack[-1]].get("file") or "")] += weight
            for name in {label(i) for i in stack}:
                inclusive[name] += weight
    if not busy:
        return ["  (empty profile)"]
    lines = [f"  {busy:.1f} s of samples in {wall:.1f} s sampled ({100 * busy / max(wall, 1e-9):.0f}% busy); "
             f"{cpu_us:.0f} CPU µs per event (/proc); columns: share of samples, µs per event"]

    def row(name: str, n: float) -> str:
        return f"    {100 * n / busy:5.1f}% {n / busy * cpu_us:6.1f} µs  {name}"

    lines.append("  self time by package (where the CPU goes):")
    lines += [row(name, n) for name, n in packages.most_common(top)]
    lines.append("  inclusive (a frame and everything it calls; the event loop's trunk left out):")
    branches = [(name, n) for name, n in inclusive.most_common() if not any(name.startswith(t) for t in TRUNK)]
    lines += [row(name, n) for name, n in branches[:top]]
    lines.append("  self (the frame's own code):")
    lines += [row(name, n) for name, n in own.most_common(top)]
    return lines


# -- Kafka ---------------------------------------------------------------------------------------------

class Kafka:
    """Admin and metadata clients kept open for the run (polling must stay cheap on 2 cores)."""

    def __init__(self, bootstrap: str) -> None:
        from kafka import KafkaConsumer
        from kafka.admin import KafkaAdminClient

        self.bootstrap = bootstrap
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap)

    def close(self) -> None:
        self.admin.close()
        self.consumer.close()

    def topics(self, prefix: str) -> list[str]:
        return sorted(t for t in self.admin.list_topics() if t.startswith(prefix))

    def ends(self, topics: Sequence[str]) -> dict[str, dict[int, int]]:
        from kafka import TopicPartition

        partitions = [TopicPartition(t, p) for t in topics for p in self.consumer.partitions_for_topic(t) or ()]
        out: dict[str, dict[int, int]] = defaultdict(dict)
        for tp, offset in self.consumer.end_offsets(partitions).items():
            out[tp.topic][tp.partition] = offset
        return {t: out.get(t, {}) for t in topics}

    def committed(self, group: str) -> dict[str, dict[int, int]]:
        try:
            offsets = self.admin.list_group_offsets({group: None}).get(group, {})
        except Exception:  # the group has not committed anything yet
            return {}
        out: dict[str, dict[int, int]] = defaultdict(dict)
        for tp, meta in offsets.items():
            if meta.offset >= 0:
                out[tp.topic][tp.partition] = meta.offset
        return out

    def stable(self, group: str, members: int) -> bool:
        try:
            described = self.admin.describe_groups([group])[group]
        except Exception:
            return False
        state = described.get("group_state", described.get("state"))
        return state == "Stable" and len(described.get("members") or []) >= members


def produce(bootstrap: str, topic: str, records: Sequence[tuple[bytes | None, bytes]], rate: float = 0) -> float:
    """Send the records (as fast as possible, or paced at `rate` a second); seconds taken."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5 if rate else 20, batch_size=256 * 1024)
    t0 = time.perf_counter()
    for i, (key, value) in enumerate(records):
        if rate and i % 20 == 0:
            time.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()
    return time.perf_counter() - t0


def read_all(bootstrap: str, topic: str) -> list[Any]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=5000)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        out: list[Any] = []
        deadline = time.monotonic() + 120
        while any(consumer.position(tp) < ends[tp] for tp in partitions) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                out.extend(records)
        return out
    finally:
        consumer.close()


async def bare_consume(bootstrap: str, topic: str, n: int) -> tuple[float, float]:
    """Records/s and CPU µs per record of a bare aiokafka consumer that parses each value, in this process."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"bare-{time.time()}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                for record in records:
                    json.loads(record.value)  # what any worker must do at least
                seen += len(records)
    finally:
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        await consumer.stop()
    return seen / elapsed, cpu / seen * 1e6


# -- one measured consumer -----------------------------------------------------------------------------

def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / TICKS, sum(fields[:8]) / TICKS


@dataclass
class Snapshot:
    """What a measurement window is computed from, taken at its start and at its end."""

    at: float
    cpu: float  # the measured processes
    broker: float
    own: float  # this bench process (polling, producing)
    machine: tuple[float, float]
    committed: dict[str, dict[int, int]]
    ends: dict[str, dict[int, int]]

    @classmethod
    def take(cls, kafka: Kafka, pids: Sequence[int], broker_pid: int, group: str, prefix: str | None) -> Snapshot:
        ends = kafka.ends(kafka.topics(prefix)) if prefix else {}
        return cls(time.monotonic(), cpu_seconds(pids), cpu_seconds([broker_pid]), time.process_time(),
                   machine_busy(), kafka.committed(group), ends)


@dataclass
class Measured:
    name: str
    judged: int = 0  # CDRs judged (committed on the topic where they are judged) in the rate window
    seconds: float = 0.0
    finished: bool = False
    cpu: float = 0.0  # CPU seconds of its processes in the window
    broker_cpu: float = 0.0  # the broker's CPU seconds in the window
    own_cpu: float = 0.0  # this bench process's CPU seconds in the window
    machine_cpu: float = 0.0  # CPU seconds the whole machine was busy in the window
    ingested: int = 0  # CDRs read from the input topic (committed), in all
    judged_total: int = 0  # CDRs judged, in all
    produced: Counter[str] = field(default_factory=Counter)  # records produced, by topic (prefix removed)
    consumed: Counter[str] = field(default_factory=Counter)  # records consumed, by topic (prefix removed)

    @property
    def rate(self) -> float:
        return self.judged / self.seconds if self.seconds else 0.0

    @property
    def cpu_us(self) -> float:
        return self.cpu / max(self.judged, 1) * 1e6

    @property
    def broker_us(self) -> float:
        return self.broker_cpu / max(self.judged, 1) * 1e6

    def cores(self, cpu: float) -> float:
        return cpu / self.seconds if self.seconds else 0.0

    @property
    def others(self) -> float:
        """Cores the rest of the machine (other engineers' jobs) kept busy in the window."""
        return self.cores(max(0.0, self.machine_cpu - self.cpu - self.broker_cpu - self.own_cpu))

    def count_messages(self, prefix: str, first: Snapshot, last: Snapshot, sources: Sequence[str]) -> None:
        """Records produced (end offsets grown) and consumed (committed) on every topic of the prefix."""
        for topic, offsets in last.ends.items():
            short = topic.removeprefix(prefix)
            grew = sum(offsets.values()) - sum(first.ends.get(topic, {}).values())
            if topic in sources:
                self.consumed[short] = sum(last.committed.get(topic, {}).values())
                if topic == sources[0]:
                    continue  # the input: produced by the bench
            if grew:
                self.produced[short] = grew

    def _per(self, short: str, produced: bool) -> float:
        """Per CDR of the stage the topic belongs to: reading the input and forwarding per CDR read,
        the rest per CDR judged (the two are equal when a worker judges what it reads in one pass)."""
        ingest = short == ("cdr.by-subject" if produced else "cdr")
        counter = self.produced if produced else self.consumed
        return counter[short] / max(self.ingested if ingest else self.judged_total, 1)

    @property
    def messages_per_cdr(self) -> float:
        return sum(self._per(t, True) for t in self.produced) + sum(self._per(t, False) for t in self.consumed)

    @property
    def decisions(self) -> int:
        return self.produced.get("decisions", 0)

    def breakdown(self) -> str:
        parts = [f"consumed {t} {self._per(t, False):.3f}" for t in sorted(self.consumed) if self.consumed[t]]
        parts += [f"produced {t} {self._per(t, True):.3f}" for t in sorted(self.produced) if self.produced[t]]
        return ", ".join(parts)


def judged_topic_of(tree: Path, prefix: str) -> str:
    """Where a revision's worker judges CDRs: since cca0530 on `cdr` itself when the record's partition owns
    its subject (`partition_of` in streams/app.py; the bench keys records by subject, so all of them);
    before that on `cdr.by-subject`, after a forward."""
    app = (tree / "streams" / "app.py").read_text(encoding="utf-8")
    return f"{prefix}cdr" if "def partition_of(" in app else f"{prefix}cdr.by-subject"


@dataclass
class Target:
    """What one measurement runs: its processes, its group, and where its CDRs are judged."""

    name: str
    prefix: str  # topic prefix: every topic it reads or writes starts with it
    group: str
    judged_topic: str  # full name of the topic whose committed offsets count judged CDRs
    sources: tuple[str, ...]  # full names of every topic it consumes (all must be committed to their end)
    start: Callable[[], list[subprocess.Popen]]
    counts_messages: bool = True


def window(result: Measured, first: Snapshot, last: Snapshot, judged_topic: str, input_topic: str) -> None:
    """Fill `result` with what happened between two snapshots."""
    judged = sum(last.committed.get(judged_topic, {}).values())
    result.seconds = last.at - first.at
    result.judged = judged - sum(first.committed.get(judged_topic, {}).values())
    result.judged_total = judged
    result.ingested = sum(last.committed.get(input_topic, {}).values())
    result.cpu = last.cpu - first.cpu
    result.broker_cpu = last.broker - first.broker
    result.own_cpu = last.own - first.own
    result.machine_cpu = last.machine[0] - first.machine[0]


def measure(kafka: Kafka, target: Target, n: int, broker_pid: int, max_seconds: float,
            profile: Path | None = None) -> Measured:
    """Start the target's processes on its backlog; the window runs from the group's first commit until
    every partition of its sources is committed to the end, or `max_seconds`."""
    result = Measured(target.name)
    prefix = target.prefix if target.counts_messages else None
    before = Snapshot.take(kafka, [], broker_pid, target.group, prefix)
    procs = target.start()
    pids = [p.pid for p in procs]
    profiler = None
    first = None
    try:
        while True:
            time.sleep(0.5)
            for proc in procs:
                if proc.poll() is not None:
                    raise SystemExit(f"{target.name}: process {proc.pid} exited with {proc.returncode} "
                                     f"(see its log)")
            if first is None:
                if not kafka.committed(target.group).get(target.judged_topic):
                    if time.monotonic() - before.at > 180:
                        raise SystemExit(f"{target.name}: nothing committed within 180 s of the start")
                    continue
                first = Snapshot.take(kafka, pids, broker_pid, target.group, None)
                if profile is not None:
                    profiler = Profiler(pids[0], profile)
                continue
            last = Snapshot.take(kafka, pids, broker_pid, target.group, prefix)
            ends = kafka.ends(target.sources)
            done = last.committed
            drained = all(done.get(t, {}).get(p, 0) >= end for t in target.sources for p, end in ends[t].items())
            result.finished = drained and sum(ends[target.sources[0]].values()) >= n
            if result.finished or last.at - first.at > max_seconds:
                break
    finally:
        if profiler is not None:
            profiler.stop()
        for proc in procs:
            stop(proc)
    window(result, first, last, target.judged_topic, target.sources[0])
    if target.counts_messages:
        result.count_messages(target.prefix, before, last, target.sources)
    return result


# -- the run -------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000, help="CDRs in the backlog runs (default 200,000)")
    parser.add_argument("--rate", type=float, default=2000, help="CDRs/s of the steady-state latency run")
    parser.add_argument("--latency-seconds", type=float, default=30, help="length of the latency run (s)")
    parser.add_argument("--workers", type=int, default=2, help="also measure this many workers together (1: skip)")
    parser.add_argument("--skip-baseline", action="store_true", help="do not run the baseline revision's worker")
    parser.add_argument("--baseline", default=BASELINE_REV, help=f"baseline revision (default {BASELINE_REV})")
    parser.add_argument("--max-seconds", type=float, default=150,
                        help="cut a throughput run after this many seconds of judging (default 150)")
    parser.add_argument("--batch-size", type=int, default=None, help="the worker's --batch-size (default: its own)")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="py-spy the no-op agent and the first worker into DIR (speedscope) and summarise")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR", help="keep logs and broker data in DIR")
    args = parser.parse_args()

    from bench.baseline import python_command, worktree
    from bench.generate import cdrs, write_inventory
    from cidwatch.dev import broker
    from cidwatch.produce import record_key
    from streams.settings import Settings
    from streams.topics import create_topics

    base_tree = None if args.skip_baseline else worktree(args.baseline)
    tmp = Path(tempfile.mkdtemp(prefix="cidwatch-stream-bench-")) if args.keep is None else args.keep
    tmp.mkdir(parents=True, exist_ok=True)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    inventory = write_inventory(tmp / "inventory.yaml", seed=5)
    t0 = time.perf_counter()
    records = [(record_key(r), json.dumps(r).encode()) for r in cdrs(args.records, seed=5)]
    print(f"generated {len(records):,} CDRs in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    info = broker.start(port=free_port(), data_dir=tmp / "broker", heap="1g")
    bootstrap = f"127.0.0.1:{info.port}"
    kafka = Kafka(bootstrap)
    n = len(records)
    results: dict[str, Measured] = {}
    produce_rate = 0.0
    try:
        prefixes = ["w1.", "lat."] + ([f"w{args.workers}."] if args.workers > 1 else []) + \
            ([] if base_tree is None else ["base."])
        for prefix in prefixes:
            create_topics(Settings(broker=f"kafka://{bootstrap}", topic_prefix=prefix), partitions=PARTITIONS)
        for prefix in prefixes:
            if prefix != "lat.":
                seconds = produce(bootstrap, f"{prefix}cdr", records)
                produce_rate = produce_rate or n / seconds
        print(f"produced the backlogs ({produce_rate:,.0f} CDRs/s)", file=sys.stderr)

        def env(prefix: str, tree: Path = ROOT) -> dict[str, str]:
            return dict(os.environ, CIDWATCH_BROKER=f"kafka://{bootstrap}", CIDWATCH_TOPIC_PREFIX=prefix,
                        PYTHONPATH=str(tree), PYTHONUNBUFFERED="1",
                        CIDWATCH_HASH_KEY=os.environ.get("CIDWATCH_HASH_KEY", "bench-hash-key"))  # workers need one

        def worker_argv(name: str) -> list[str]:
            argv = ["-m", "cidwatch", "worker", "--store", "memory", "--partitions", str(PARTITIONS),
                    "--inventory", str(inventory), "--workdir", str(tmp / name), "--web-port", str(free_port())]
            return argv + ([] if args.batch_size is None else ["--batch-size", str(args.batch_size)])

        def workers(prefix: str, count: int, name: str) -> Callable[[], list[subprocess.Popen]]:
            return lambda: [spawn([sys.executable, *worker_argv(f"{name}-{i}")], tmp / f"{name}-{i}.log",
                                  env=env(prefix)) for i in range(count)]

        def baseline_worker() -> list[subprocess.Popen]:
            assert base_tree is not None
            return [spawn(python_command(worker_argv("base")), tmp / "base.log", cwd=base_tree,
                          env=env("base.", base_tree))]

        def noop(group: str, mode: str = "events") -> Callable[[], list[subprocess.Popen]]:
            return lambda: [spawn([sys.executable, __file__, "noop-agent", bootstrap, "w1.cdr", group,
                                   str(free_port()), str(tmp / group), mode], tmp / f"{group}.log")]

        def current(prefix: str, name: str, count: int) -> Target:
            sources = (f"{prefix}cdr", f"{prefix}cdr.by-subject")
            return Target(name, prefix, f"{prefix}cidwatch", f"{prefix}cdr", sources, workers(prefix, count, name))

        def run(target: Target, profile: str | None = None) -> Measured:
            out = None if args.profile is None or profile is None else args.profile / profile
            print(f"measuring {target.name} ...", file=sys.stderr)
            results[target.name] = m = measure(kafka, target, n, info.pid, args.max_seconds, out)
            print(f"  {m.rate:,.0f} CDRs/s over {m.judged:,} CDRs in {m.seconds:.0f} s"
                  f"{'' if m.finished else ' (cut)'}", file=sys.stderr)
            return m

        bare = asyncio.run(bare_consume(bootstrap, "w1.cdr", n))
        run(Target("no-op Faust agent (before)", "noop-1", "noop-1", "w1.cdr", ("w1.cdr",), noop("noop-1"),
                   counts_messages=False), "noop.speedscope.json")
        run(Target("no-op Faust agent, batches as the worker", "noop-take", "noop-take", "w1.cdr", ("w1.cdr",),
                   noop("noop-take", "take"), counts_messages=False))
        run(current("w1.", "worker x1", 1), "worker.speedscope.json")
        if args.workers > 1:
            run(current(f"w{args.workers}.", f"worker x{args.workers}", args.workers))
        if base_tree is not None:
            run(Target(f"worker x1 {args.baseline}", "base.", "base.cidwatch", judged_topic_of(base_tree, "base."),
                       ("base.cdr", "base.cdr.by-subject"), baseline_worker))
        run(Target("no-op Faust agent (after)", "noop-2", "noop-2", "w1.cdr", ("w1.cdr",), noop("noop-2"),
                   counts_messages=False))
        steady, latency = latency_run(kafka, info.pid, records, args, env, worker_argv, tmp)
    finally:
        kafka.close()
        broker.stop(tmp / "broker")
    report(results, bare, produce_rate, steady, latency, args, n)
    if args.profile is not None:
        for name, file in (("no-op Faust agent (before)", "noop.speedscope.json"),
                           ("worker x1", "worker.speedscope.json")):
            print(f"\nprofile of the {name} ({args.profile / file}):")
            print("\n".join(summarise_profile(args.profile / file, results[name].cpu_us)))
    if args.keep is None:
        shutil.rmtree(tmp, ignore_errors=True)


def latency_run(kafka: Kafka, broker_pid: int, records: list[tuple[bytes | None, bytes]], args: argparse.Namespace,
                env: Callable[[str], dict[str, str]], worker_argv: Callable[[str], list[str]],
                tmp: Path) -> tuple[Measured, list[tuple[float, float]]]:
    """A fresh worker, joined and idle, then CDRs at a steady rate: the steady state's figures and each
    decision's (seconds into the run its CDR was produced, produce -> decision latency in s)."""
    count = min(len(records), int(args.rate * args.latency_seconds))
    bootstrap, group = kafka.bootstrap, "lat.cidwatch"
    print(f"latency: {count:,} CDRs at {args.rate:g}/s ...", file=sys.stderr)
    result = Measured(f"worker x1, steady {args.rate:g}/s")
    proc = spawn([sys.executable, *worker_argv("lat")], tmp / "lat.log", env=env("lat."))
    try:
        deadline = time.monotonic() + 120
        while not kafka.stable(group, 1):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("latency worker did not join its group")
            time.sleep(0.5)
        time.sleep(3)  # its (empty) table recovered
        first = Snapshot.take(kafka, [proc.pid], broker_pid, group, "lat.")
        produce(bootstrap, "lat.cdr", records[:count], args.rate)
        deadline = time.monotonic() + 120
        while True:
            last = Snapshot.take(kafka, [proc.pid], broker_pid, group, "lat.")
            result.finished = sum(last.committed.get("lat.cdr", {}).values()) >= count
            if result.finished or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        stop(proc)
    window(result, first, last, "lat.cdr", "lat.cdr")
    result.count_messages("lat.", first, last, ("lat.cdr", "lat.cdr.by-subject"))
    produced = {json.loads(r.value)["call_id"]: r.timestamp for r in read_all(bootstrap, "lat.cdr")}
    start = min(produced.values(), default=0)
    out = []
    for record in read_all(bootstrap, "lat.decisions"):
        call_id = json.loads(record.value).get("call_id")
        if call_id in produced:
            out.append(((produced[call_id] - start) / 1000, (record.timestamp - produced[call_id]) / 1000))
    return result, out


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def report(results: dict[str, Measured], bare: tuple[float, float], produce_rate: float, steady: Measured,
           latency: list[tuple[float, float]], args: argparse.Namespace, n: int) -> None:
    print(f"\n{n:,} generated CDRs (seed 5, 3,000 CLIs), keyed by subject, {PARTITIONS} partitions, one local broker, "
          f"memory tables, {os.cpu_count()} cores shared with the broker and whatever else runs")
    print(f"{'':37} {'CDRs/s':>8} {'CPU µs':>7} {'cores used by:':>15} {'':>13} {'msgs':>5} {'deci-':>6}")
    print(f"{'':37} {'':>8} {'per CDR':>7} {'it':>5} {'broker':>6} {'others':>6} {'per CDR':>7} {'sions':>6}  judged")
    print(f"{'produce (kafka-python, bench process)':37} {produce_rate:8,.0f}")
    print(f"{'bare aiokafka consume + json.loads':37} {bare[0]:8,.0f} {bare[1]:7.0f}")
    for m in [*results.values(), steady]:
        counted = bool(m.produced or m.consumed)
        msgs = f"{m.messages_per_cdr:7.2f}" if counted else f"{'':7}"
        decisions = f"{m.decisions:6,}" if counted else f"{'':6}"
        print(f"{m.name:37} {m.rate:8,.0f} {m.cpu_us:7.0f} {m.cores(m.cpu):5.2f} {m.cores(m.broker_cpu):6.2f} "
              f"{m.others:6.2f} {msgs} {decisions}  {m.judged:,} in {m.seconds:.0f} s"
              f"{'' if m.finished else ' (cut at --max-seconds)'}")
    print("Kafka messages per CDR, by topic:")
    for m in [*results.values(), steady]:
        if m.produced or m.consumed:
            print(f"  {m.name}: {m.breakdown()}")

    noops = [m.rate for name, m in results.items() if name.startswith("no-op Faust agent (")]
    noop = statistics.mean(noops) if noops else 0.0
    one = results.get("worker x1")
    many = results.get(f"worker x{args.workers}") if args.workers > 1 else None
    base = results.get(f"worker x1 {args.baseline}")
    rows: list[tuple[str, str, str, str]] = []

    def target(name: str, value: float, text: str, goal: str, met: bool) -> None:
        rows.append((name, text.format(value), goal, "yes" if met else "NO"))

    if one and noop:
        target("worker / no-op Faust agent (mean)", one.rate / noop, "{:.2f}", ">= 0.5", one.rate / noop >= 0.5)
        rows.append(("  no-op agent after / before", f"{noops[-1] / noops[0]:.2f}", "(drift)", ""))
        rows.append(("  no-op Faust agent / bare aiokafka", f"{noop / bare[0]:.3f}" if bare[0] else "-", "", ""))
        noop_us = statistics.mean(m.cpu_us for name, m in results.items() if name.startswith("no-op Faust agent ("))
        rows.append(("  CPU per CDR: worker / no-op", f"{one.cpu_us / noop_us:.2f}", "", ""))
    if one and many:
        target(f"{args.workers} workers / 1", many.rate / one.rate, "{:.2f}", ">= 1.5", many.rate / one.rate >= 1.5)
    if one:
        target("Kafka messages per CDR, backlog", one.messages_per_cdr, "{:.2f}", "<= 2.2", one.messages_per_cdr <= 2.2)
    target(f"Kafka messages per CDR, {args.rate:g}/s", steady.messages_per_cdr, "{:.2f}", "<= 2.2",
           steady.messages_per_cdr <= 2.2)
    if latency:
        delays = [d for _, d in latency]
        p99 = percentile(delays, 0.99)
        rows.append((f"p50 produce->decision at {args.rate:g}/s", f"{percentile(delays, 0.5) * 1000:.0f} ms", "", ""))
        target(f"p99 produce->decision at {args.rate:g}/s", p99 * 1000, "{:.0f} ms", "<= 250 ms", p99 <= 0.25)
        late = [d for at, d in latency if at >= 10]
        if late:
            rows.append(("  p50 / p99 after its first 10 s", f"{percentile(late, 0.5) * 1000:.0f} / "
                         f"{percentile(late, 0.99) * 1000:.0f} ms", "", ""))
        rows.append(("  decisions with a call_id / max", f"{len(delays):,} / {max(delays) * 1000:.0f} ms", "", ""))
    if one and base:
        rows.append((f"worker rate: current / {args.baseline}", f"{one.rate / base.rate:.2f}", "", ""))
        rows.append((f"CPU per CDR: current / {args.baseline}", f"{one.cpu_us / base.cpu_us:.2f}", "", ""))
        if noop:
            rows.append((f"{args.baseline} worker / no-op Faust agent", f"{base.rate / noop:.2f}", "", ""))
        rows.append((f"Kafka messages per CDR, {args.baseline}", f"{base.messages_per_cdr:.2f}", "", ""))
    print(f"\n{'ratios, this run':44} {'measured':>14}   {'target':10} met")
    for name, value, goal, met in rows:
        print(f"{name:44} {value:>14}   {goal:10} {met}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "noop-agent":
        noop_agent(*sys.argv[2:])
    else:
        main()
