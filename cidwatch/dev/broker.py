"""A local single-node Apache Kafka broker (KRaft) for development, demos and tests.

A development tool: it needs a repository checkout (its `pom.xml`, and `.cache/kafka/lib` for the
jars), which an installed cidwatch does not have; production runs against the Kafka you operate.
Why: the stream workers need a real broker, and Java plus Maven are all a machine needs to run one;
no container runtime. The jars come from Maven Central through `pom.xml` at the repository root;
the broker runs detached so it outlives the command that started it, and everything it writes
(data, config, log, pid) stays under one data directory.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cidwatch.cli import CliError

REPO_ROOT = Path(__file__).resolve().parents[2]
POM = REPO_ROOT / "pom.xml"
LIB_DIR = REPO_ROOT / ".cache" / "kafka" / "lib"
MARKER_NAME = ".complete"
DEFAULT_PORT = 9092
DEFAULT_HEAP = "512m"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
HEAP_PATTERN = re.compile(r"^\d+[kKmMgG]?$")

# Popen objects of brokers started by this process, so that their exit is reaped (no zombie
# that still answers `kill -0`) and Python does not warn about a child it never waited for.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class BrokerError(CliError):
    """The broker could not be fetched, started or stopped; the message says why."""


@dataclass(frozen=True)
class BrokerInfo:
    """Where a broker of one data directory is (or was) and whether it runs."""

    data_dir: Path
    log_path: Path
    running: bool
    pid: int | None = None
    port: int | None = None
    controller_port: int | None = None
    already_running: bool = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True)
class SecureListener:
    """A SASL_SSL listener beside the PLAINTEXT one, as managed clusters (MSK, Confluent Cloud, Aiven)
    offer: TLS with the broker certificate of a PKCS12 keystore, SASL PLAIN and SCRAM-SHA-256/512.

    The tests use it to reach the broker as a user would reach a managed cluster; SCRAM users are
    added with `kafka-configs` over the PLAINTEXT listener (`add_scram_user`), PLAIN users here."""

    port: int
    keystore: Path
    keystore_password: str = field(repr=False)
    plain_users: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # (name, password)
    # An SSL listener that requires a client certificate signed by a CA of `truststore` (mutual TLS).
    mtls_port: int | None = None
    truststore: Path | None = None

    @property
    def listeners(self) -> str:
        mtls = f",SSL://127.0.0.1:{self.mtls_port}" if self.mtls_port else ""
        return f",SASL_SSL://127.0.0.1:{self.port}{mtls}"


# --- jars -------------------------------------------------------------------------------------


def ensure_jars(lib_dir: Path = LIB_DIR) -> Path:
    """Return the folder of broker jars, running Maven only when it is missing or incomplete.

    A marker file lists the jars and the pom's hash, so a second start downloads nothing and an
    edited pom (say, a new Kafka version) fetches again instead of mixing two versions.
    """
    if _jars_complete(lib_dir):
        return lib_dir
    if not POM.is_file():
        raise BrokerError(f"{POM} not found: `cidwatch broker` is a development tool that runs from a repository "
                          "checkout; point CIDWATCH_BROKER at your Kafka instead")
    lib_dir.mkdir(parents=True, exist_ok=True)
    for old in lib_dir.glob("*.jar"):
        old.unlink()
    _run_maven(lib_dir)
    jars = sorted(path.name for path in lib_dir.glob("*.jar"))
    if not any(name.startswith("kafka_2.13-") for name in jars):
        raise BrokerError(f"Maven ran but {lib_dir} has no kafka_2.13 jar")
    marker = {"pom_sha256": _pom_hash(), "jars": jars}
    (lib_dir / MARKER_NAME).write_text(json.dumps(marker, indent=1) + "\n")
    return lib_dir


def _jars_complete(lib_dir: Path) -> bool:
    try:
        marker = json.loads((lib_dir / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return False
    if POM.exists() and marker.get("pom_sha256") != _pom_hash():
        return False
    jars = marker.get("jars") or []
    return bool(jars) and all((lib_dir / name).is_file() for name in jars)


def _pom_hash() -> str | None:
    return hashlib.sha256(POM.read_bytes()).hexdigest() if POM.exists() else None


def _run_maven(lib_dir: Path) -> None:
    """Copy the pom's runtime dependencies into `lib_dir` (the only network step)."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is not installed; it is needed once to fetch the Kafka jars")
    if not POM.exists():
        raise BrokerError(f"{POM} is missing; it lists the Kafka jars to fetch")
    command = [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
               f"-DoutputDirectory={lib_dir}"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise BrokerError(f"fetching the Kafka jars failed (mvn exit {result.returncode}):\n{tail}")


# --- paths and config -------------------------------------------------------------------------


def default_data_dir() -> Path:
    """`$CIDWATCH_BROKER_DIR`, else `.cache/broker` under the current directory."""
    return Path(os.environ.get("CIDWATCH_BROKER_DIR") or Path.cwd() / ".cache" / "broker")


def _paths(data_dir: Path) -> dict[str, Path]:
    return {
        "properties": data_dir / "server.properties",
        "log4j": data_dir / "log4j.properties",
        "log": data_dir / "broker.log",
        "pid": data_dir / "broker.pid",
        "cluster_id": data_dir / "cluster.id",
        "log_dirs": data_dir / "kraft-logs",
    }


def server_properties(data_dir: Path, port: int, controller_port: int, secure: SecureListener | None = None) -> str:
    """Single-node KRaft config sized for a 2-core development machine, loopback only."""
    log_dirs = _paths(data_dir)["log_dirs"]
    extra = secure.listeners if secure else ""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}{extra}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}{extra}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
                                          + (",SASL_SSL:SASL_SSL,SSL:SSL" if secure else ""),
        "log.dirs": str(log_dirs),
        # Topics are created explicitly (`cidwatch topics create`) with their partition counts.
        "auto.create.topics.enable": "false",
        "num.partitions": "8",
        "default.replication.factor": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "group.initial.rebalance.delay.ms": "0",
        # Two cores: few threads.
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        "num.replica.fetchers": "1",
        # Retention for a development box; the cleaner compacts `blocks` and `inventory`.
        "log.retention.hours": "24",
        "log.retention.bytes": str(1 << 30),
        "log.segment.bytes": str(64 << 20),
        "log.retention.check.interval.ms": "60000",
        "log.cleaner.enable": "true",
        "log.cleaner.threads": "1",
        "log.cleaner.dedupe.buffer.size": str(16 << 20),
        **(_secure_properties(secure) if secure else {}),
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _secure_properties(secure: SecureListener) -> dict[str, str]:
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    users = " ".join(f'user_{name}="{password}"' for name, password in secure.plain_users)
    plain = f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
    # OAUTHBEARER with Kafka's unsecured validator (unsigned JWTs): for testing the clients' token path only.
    oauth = ("org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
             'unsecuredLoginStringClaim_sub="broker";')
    return {
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
        "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config": oauth,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": plain,
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
        "listener.name.sasl_ssl.ssl.keystore.type": "PKCS12",
        "listener.name.sasl_ssl.ssl.keystore.location": str(secure.keystore),
        "listener.name.sasl_ssl.ssl.keystore.password": secure.keystore_password,
        "listener.name.sasl_ssl.ssl.key.password": secure.keystore_password,
        **({"listener.name.ssl.ssl.keystore.type": "PKCS12",
            "listener.name.ssl.ssl.keystore.location": str(secure.keystore),
            "listener.name.ssl.ssl.keystore.password": secure.keystore_password,
            "listener.name.ssl.ssl.key.password": secure.keystore_password,
            "listener.name.ssl.ssl.truststore.type": "PKCS12",
            "listener.name.ssl.ssl.truststore.location": str(secure.truststore),
            "listener.name.ssl.ssl.truststore.password": secure.keystore_password,
            "listener.name.ssl.ssl.client.auth": "required"} if secure.mtls_port and secure.truststore else {}),
    }


LOG4J_PROPERTIES = """\
# Everything to stdout, which `cidwatch broker start` sends to broker.log in the data directory.
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
# The full config dump (hundreds of lines) would bury the lines that say why a start failed;
# server.properties in the same directory is the config.
log4j.logger.kafka.server.KafkaConfig=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.controller=INFO
log4j.logger.kafka.log.LogCleaner=INFO
"""


def _write_config(data_dir: Path, port: int, controller_port: int, secure: SecureListener | None = None) -> None:
    paths = _paths(data_dir)
    paths["properties"].write_text(server_properties(data_dir, port, controller_port, secure))
    paths["properties"].chmod(0o600)  # a keystore password may be in it
    paths["log4j"].write_text(LOG4J_PROPERTIES)


def _cluster_id(data_dir: Path) -> str:
    """The stored cluster id, or a new one in Kafka's form (22 chars of URL-safe base64)."""
    path = _paths(data_dir)["cluster_id"]
    if path.exists():
        return path.read_text().strip()
    cluster_id = "-"
    while cluster_id.startswith("-"):  # Kafka refuses ids that look like command-line options
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    path.write_text(cluster_id + "\n")
    return cluster_id


def _read_ports(data_dir: Path) -> tuple[int | None, int | None]:
    """Client and controller ports from the data directory's server.properties."""
    try:
        text = _paths(data_dir)["properties"].read_text()
    except OSError:
        return None, None
    port = re.search(r"^listeners=PLAINTEXT://[^:]+:(\d+)", text, re.MULTILINE)
    controller = re.search(r"CONTROLLER://[^:,]+:(\d+)", text)
    return (int(port.group(1)) if port else None, int(controller.group(1)) if controller else None)


# --- processes --------------------------------------------------------------------------------


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise BrokerError("Java is not installed; the Kafka broker needs a Java 11+ runtime")
    return java


def _java_command(lib_dir: Path, data_dir: Path, heap: str, main: str, *args: str) -> list[str]:
    paths = _paths(data_dir)
    return [
        _java(), f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true", f"-Dlog4j.configuration=file:{paths['log4j']}",
        f"-Dkafka.logs.dir={data_dir}", "-cp", f"{lib_dir}/*", main, *args,
    ]


def _format_storage(lib_dir: Path, data_dir: Path) -> None:
    """Format the KRaft log directory once; a formatted one has meta.properties."""
    paths = _paths(data_dir)
    if (paths["log_dirs"] / "meta.properties").exists():
        return
    command = _java_command(lib_dir, data_dir, "256m", "kafka.tools.StorageTool", "format",
                            "-t", _cluster_id(data_dir), "-c", str(paths["properties"]),
                            "--ignore-formatted")
    with paths["log"].open("ab") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise BrokerError(f"formatting {paths['log_dirs']} failed:\n{_log_tail(paths['log'])}")


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "Z"


def _alive(pid: int, data_dir: Path) -> bool:
    """True while `pid` is this data directory's broker (not a reused pid, not a zombie)."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if not Path("/proc").is_dir():
        return True
    cmdline = _cmdline(pid)
    return (cmdline is not None and not _is_zombie(pid) and "kafka.Kafka" in cmdline
            and str(_paths(data_dir)["properties"]) in cmdline)


def _read_pid(data_dir: Path) -> int | None:
    try:
        return int(_paths(data_dir)["pid"].read_text().strip())
    except (OSError, ValueError):
        return None


def _running_pid(data_dir: Path) -> int | None:
    pid = _read_pid(data_dir)
    return pid if pid is not None and _alive(pid, data_dir) else None


def _log_tail(log_path: Path, lines: int = 40, since: int = 0) -> str:
    try:
        with log_path.open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


# --- ports and readiness ----------------------------------------------------------------------


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers_metadata(port: int) -> bool:
    """TCP first (cheap), then a metadata request: a listening socket is not a ready broker."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            pass
    except OSError:
        return False
    from kafka.admin import KafkaAdminClient

    try:
        admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}", client_id="cidwatch-broker-check",
                                 bootstrap_timeout_ms=3000, request_timeout_ms=3000)
        try:
            admin.list_topics()
        finally:
            admin.close()
    except Exception:  # any client error means "not ready yet"; the caller retries until its deadline
        return False
    return True


def _wait_ready(process: subprocess.Popen[bytes], port: int, log_path: Path, log_start: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerError(f"the broker exited with status {process.returncode} while starting:\n"
                              f"{_log_tail(log_path, since=log_start)}")
        if _answers_metadata(port):
            return
        time.sleep(0.25)
    raise BrokerError(f"the broker did not answer on 127.0.0.1:{port} within {START_TIMEOUT_S:.0f} s:\n"
                      f"{_log_tail(log_path, since=log_start)}")


# --- start / stop / status --------------------------------------------------------------------


def start(port: int = DEFAULT_PORT, data_dir: Path | None = None, heap: str = DEFAULT_HEAP,
          secure: SecureListener | None = None) -> BrokerInfo:
    """Start the broker of `data_dir` detached and return once it answers metadata requests.

    `port=0` picks a free loopback port. A broker already running on that data directory is
    left alone and returned with `already_running=True`.
    """
    data_dir = (data_dir or default_data_dir()).resolve()
    if not HEAP_PATTERN.match(heap):
        raise BrokerError(f"--heap {heap!r} is not a JVM size such as 512m or 1g")
    running = status(data_dir)
    if running.running:
        return BrokerInfo(**{**running.__dict__, "already_running": True})
    port = port or free_port()
    if not _port_free(port):
        raise BrokerError(f"port {port} on 127.0.0.1 is in use; pick another with --port")
    lib_dir = ensure_jars()
    data_dir.mkdir(parents=True, exist_ok=True)
    controller_port = _other_free_port(port)
    _write_config(data_dir, port, controller_port, secure)
    paths = _paths(data_dir)
    log_start = _log_header(paths["log"], port)
    _format_storage(lib_dir, data_dir)
    process = _spawn(lib_dir, data_dir, heap)
    try:
        _wait_ready(process, port, paths["log"], log_start)
    except BrokerError:
        _terminate(process.pid, data_dir)
        raise
    return BrokerInfo(data_dir=data_dir, log_path=paths["log"], running=True, pid=process.pid,
                      port=port, controller_port=controller_port)


def add_scram_user(data_dir: Path, port: int, mechanism: str, name: str, password: str) -> None:
    """Create (or change) a SCRAM user with `kafka-configs` (kafka.admin.ConfigCommand) over the
    PLAINTEXT listener on `port`, as an operator of a self-managed cluster does."""
    command = _java_command(ensure_jars(), data_dir, "256m", "kafka.admin.ConfigCommand",
                            "--bootstrap-server", f"127.0.0.1:{port}", "--alter",
                            "--add-config", f"{mechanism}=[iterations=4096,password={password}]",
                            "--entity-type", "users", "--entity-name", name)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BrokerError(f"kafka-configs could not add the {mechanism} user {name}: "
                          f"{(result.stdout + result.stderr).strip()[-400:]}")


def _other_free_port(port: int) -> int:
    controller_port = free_port()
    while controller_port == port:
        controller_port = free_port()
    return controller_port


def _log_header(log_path: Path, port: int) -> int:
    """Mark this start in the log and return the offset where its output begins."""
    with log_path.open("ab") as log:
        offset = log.tell()
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"=== cidwatch broker start {stamp} port {port} ===\n".encode())
    return offset


def _spawn(lib_dir: Path, data_dir: Path, heap: str) -> subprocess.Popen[bytes]:
    """Run kafka.Kafka in its own session, so it survives this command and its terminal."""
    paths = _paths(data_dir)
    command = _java_command(lib_dir, data_dir, heap, "kafka.Kafka", str(paths["properties"]))
    with paths["log"].open("ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=data_dir, start_new_session=True)
    _CHILDREN[process.pid] = process
    paths["pid"].write_text(f"{process.pid}\n")
    return process


def stop(data_dir: Path | None = None) -> bool:
    """Stop the broker of `data_dir`: SIGTERM, up to 30 s for a clean shutdown, then SIGKILL.

    Returns whether a broker was running.
    """
    data_dir = (data_dir or default_data_dir()).resolve()
    pid = _running_pid(data_dir)
    if pid is not None:
        _terminate(pid, data_dir)
    _paths(data_dir)["pid"].unlink(missing_ok=True)
    return pid is not None


def _terminate(pid: int, data_dir: Path) -> None:
    for sig, wait_s in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if _wait_gone(pid, data_dir, wait_s):
            return
    raise BrokerError(f"broker process {pid} did not exit after SIGKILL")


def _wait_gone(pid: int, data_dir: Path, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid, data_dir):
            return True
        time.sleep(0.1)
    return not _alive(pid, data_dir)


def status(data_dir: Path | None = None) -> BrokerInfo:
    """Whether the broker of `data_dir` runs, with its pid, ports and log path."""
    data_dir = (data_dir or default_data_dir()).resolve()
    port, controller_port = _read_ports(data_dir)
    pid = _running_pid(data_dir)
    return BrokerInfo(data_dir=data_dir, log_path=_paths(data_dir)["log"], running=pid is not None,
                      pid=pid, port=port, controller_port=controller_port)


# --- command line -----------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cidwatch broker start|stop|status`."""
    parser = subparsers.add_parser(
        "broker", help="run a local single-node Kafka broker (KRaft): a development tool, from a repository checkout",
        description="A local Apache Kafka broker (single node, KRaft, loopback only). The jars are "
                    "fetched once with Maven into .cache/kafka/lib; data, config, log and pid live in "
                    "the data directory.")
    actions = parser.add_subparsers(dest="broker_action", metavar="ACTION", required=True)
    start_parser = _add_action(actions, "start", "start the broker detached and wait until it answers",
                               _cmd_start)
    start_parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                              help=f"client port on 127.0.0.1 (default {DEFAULT_PORT}; 0 picks a free one)")
    start_parser.add_argument("--heap", default=DEFAULT_HEAP,
                              help=f"JVM heap, -Xms and -Xmx (default {DEFAULT_HEAP})")
    _add_action(actions, "stop", "stop the broker (SIGTERM, then SIGKILL after 30 s)", _cmd_stop)
    _add_action(actions, "status", "say whether the broker runs, with pid, port and log", _cmd_status)


def _add_action(actions: argparse._SubParsersAction, name: str, help_text: str,
                func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    parser = actions.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="broker data directory (env CIDWATCH_BROKER_DIR; default ./.cache/broker)")
    parser.set_defaults(func=func)
    return parser


def _cmd_start(args: argparse.Namespace) -> int:
    began = time.monotonic()
    info = start(port=args.port, data_dir=args.data_dir, heap=args.heap)
    if info.already_running:
        print(f"broker already running: pid {info.pid}, {info.bootstrap}, log {info.log_path}")
    else:
        print(f"broker started in {time.monotonic() - began:.1f} s: pid {info.pid}, {info.bootstrap}, "
              f"log {info.log_path}")
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    was_running = stop(args.data_dir)
    print("broker stopped" if was_running else "broker was not running")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    info = status(args.data_dir)
    state = f"running, pid {info.pid}" if info.running else "not running"
    port = info.port if info.port is not None else "-"
    print(f"broker {state}\nport: {port}\ndata: {info.data_dir}\nlog: {info.log_path}")
    return 0 if info.running else 1
