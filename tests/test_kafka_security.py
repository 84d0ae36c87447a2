"""cidwatch against a broker reached as a managed cluster is: SASL_SSL, SCRAM-SHA-512, a private CA.

One broker for the module (tests/kafka_harness.py: certificates made with openssl, the SCRAM user with
kafka-configs). The commands and the worker run as subprocesses with only the CIDWATCH_KAFKA_*
environment telling them how to connect, the password in a file.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from kafka_harness import SecureBroker, start_secure_broker
from stream_harness import ROOT, Worker, cidwatch, free_port, wait_for

from streams import connection
from streams.connection import BrokerUnavailable, aiokafka_options, check_broker, faust_credentials, kafka_producer
from streams.settings import Settings
from streams.topics import admin_client, create_topics, replication_factor

pytestmark = pytest.mark.kafka
EXAMPLES = ROOT / "examples"
# The standing blocks of examples/cdrs.jsonl with examples/inventory.yaml (README's worked replay).
EXPECTED_BLOCKS = {"us.tollfree_to_tollfree", "au.cli_not_permitted", "uk.cli_not_permitted", "cli.not_authorized"}


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    if shutil.which("java") is None or shutil.which("openssl") is None:  # ./dev test installs openssl
        pytest.fail("no Java or openssl: the SASL_SSL broker cannot run (./dev test installs openssl as root)")
    broker, stop = start_secure_broker(tmp_path_factory.mktemp("kafka-secure"))
    try:
        yield broker
    finally:
        stop()


@pytest.fixture
def secure_env(secure_broker: SecureBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> SecureBroker:
    """The process environment a managed-cluster user sets (the harness's subprocesses inherit it)."""
    password_file = tmp_path / "kafka-password"
    password_file.write_text(secure_broker.password + "\n")
    password_file.chmod(0o600)
    monkeypatch.setenv("CIDWATCH_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CIDWATCH_KAFKA_SASL_MECHANISM", secure_broker.mechanism)
    monkeypatch.setenv("CIDWATCH_KAFKA_SASL_USERNAME", secure_broker.username)
    monkeypatch.setenv("CIDWATCH_KAFKA_SASL_PASSWORD_FILE", str(password_file))
    monkeypatch.setenv("CIDWATCH_KAFKA_SSL_CAFILE", str(secure_broker.ca_file))
    monkeypatch.delenv("CIDWATCH_KAFKA_SASL_PASSWORD", raising=False)
    monkeypatch.setenv("CIDWATCH_HASH_KEY", "test-hash-key")
    return secure_broker


def blocks_in_force(broker: SecureBroker, prefix: str) -> set[str]:
    listed = cidwatch(broker.secure_bootstrap, prefix, "blocks", "list", "--json")
    return {block["rule"] for block in json.loads(listed.stdout)}


def test_the_worker_and_every_command_work_over_sasl_ssl(secure_env: SecureBroker, topic_prefix: str,
                                                         tmp_path: Path) -> None:
    broker = secure_env
    at = broker.secure_bootstrap
    created = cidwatch(at, topic_prefix, "topics", "create", "--partitions", "2")
    assert "(1 replica(s))" in created.stdout  # the broker's default.replication.factor
    pushed = cidwatch(at, topic_prefix, "inventory", "push", EXAMPLES / "inventory.yaml")
    assert "pushed 7 numbers" in pushed.stdout
    produced = cidwatch(at, topic_prefix, "produce", EXAMPLES / "cdrs.jsonl")
    assert "sent 534 records" in produced.stdout
    worker = Worker(at, topic_prefix, tmp_path / "worker", "--partitions", "2").start()
    try:
        wait_for(lambda: blocks_in_force(broker, topic_prefix) >= EXPECTED_BLOCKS, 120,
                 "the worker's blocks on the SASL_SSL broker", worker)
        tailed = cidwatch(at, topic_prefix, "tail", "decisions", "--from-beginning", "--max", "3", "--timeout", "10")
        assert len(tailed.stdout.splitlines()) == 3
        assert all("  " in line and line.split("  ")[1] in ("alert", "block", "unblock")
                   for line in tailed.stdout.splitlines())
    finally:
        assert worker.stop() == 0, worker.log_tail()
    assert broker.password not in worker.log.read_text(errors="replace")
    for output in (created, pushed, produced, tailed):
        assert broker.password not in output.stdout + output.stderr


def _one_line_error(proc: object) -> str:
    stderr = proc.stderr.strip()  # type: ignore[attr-defined]
    assert proc.returncode == 2, stderr  # type: ignore[attr-defined]
    assert len(stderr.splitlines()) == 1 and stderr.startswith("cidwatch: error: "), stderr
    return stderr


COMMANDS = (
    ("topics", "create"), ("tail", "--timeout", "1"), ("blocks", "list"),
    ("inventory", "push", str(EXAMPLES / "inventory.yaml")), ("produce", str(EXAMPLES / "cdrs.jsonl")),
)


def test_a_wrong_password_is_one_clear_line(secure_env: SecureBroker, topic_prefix: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    monkeypatch.setenv("CIDWATCH_KAFKA_SASL_PASSWORD_FILE", str(wrong))
    for command in (*COMMANDS, ("worker", "--workdir", str(tmp_path / "w"), "--web-port", str(free_port()))):
        line = _one_line_error(cidwatch(secure_env.secure_bootstrap, topic_prefix, *command, check=False, timeout=60))
        assert "refused SCRAM-SHA-512 authentication as 'cidwatch-app'" in line, (command, line)
        assert "not-the-password" not in line


def test_an_untrusted_certificate_is_one_clear_line(secure_env: SecureBroker, topic_prefix: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIDWATCH_KAFKA_SSL_CAFILE", str(secure_env.other_ca_file))
    for command in COMMANDS:
        line = _one_line_error(cidwatch(secure_env.secure_bootstrap, topic_prefix, *command, check=False, timeout=60))
        assert f"TLS certificate of the Kafka broker at {secure_env.secure_bootstrap} is not trusted" in line, line
        assert "CIDWATCH_KAFKA_SSL_CAFILE" in line


def test_hostname_verification_is_on_by_default(secure_broker: SecureBroker) -> None:
    """A server whose certificate our CA signed for another host name is refused, unless the user turns
    the check off (a TLS server on loopback presenting that certificate: the client's check is what
    is tested)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(secure_broker.tls_dir / "elsewhere.pem", secure_broker.tls_dir / "elsewhere.key")
    with socket.create_server(("127.0.0.1", 0)) as server:
        def serve() -> None:
            with contextlib.suppress(OSError), server.accept()[0] as raw, context.wrap_socket(raw, server_side=True):
                pass

        # With the check off the handshake passes, and the server (no Kafka) hangs up after it.
        for check, expected in (("true", "not trusted (IP address mismatch"),
                                ("false", "closed the connection after the TLS handshake")):
            thread = threading.Thread(target=serve, daemon=True)
            thread.start()
            env = {"CIDWATCH_BROKER": f"127.0.0.1:{server.getsockname()[1]}", "CIDWATCH_KAFKA_SECURITY_PROTOCOL": "SSL",
                   "CIDWATCH_KAFKA_SSL_CAFILE": str(secure_broker.ca_file), "CIDWATCH_KAFKA_SSL_CHECK_HOSTNAME": check,
                   "CIDWATCH_KAFKA_TIMEOUT": "5"}
            with pytest.raises(BrokerUnavailable) as caught:
                check_broker(Settings.from_env(env))
            assert expected in str(caught.value), (check, str(caught.value))
            thread.join(5)


def test_replication_factor_is_the_brokers_default_unless_given(secure_broker: SecureBroker, topic_prefix: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIDWATCH_HASH_KEY", "test-hash-key")
    settings = Settings(broker=secure_broker.bootstrap, topic_prefix=topic_prefix)
    with admin_client(settings) as admin:
        assert replication_factor(settings, admin) == 1  # server.properties: default.replication.factor=1
        assert replication_factor(Settings(broker=secure_broker.bootstrap, replication_factor=3), admin) == 3
    # Given, it reaches the broker's create request: one broker cannot hold 2 replicas.
    proc = cidwatch(secure_broker.bootstrap, topic_prefix, "topics", "create", "--replication-factor", "2",
                    check=False)
    line = _one_line_error(proc)
    assert "The target replication factor of 2 cannot be reached because only 1 broker(s) are registered" in line
    # The worker creates its topics, its changelog included, with the same number.
    worker = cidwatch(secure_broker.bootstrap, topic_prefix, "worker", "--replication-factor", "2", "--web-port",
                      free_port(), check=False)
    assert "The target replication factor of 2 cannot be reached" in _one_line_error(worker)


def test_faust_gets_the_same_credentials() -> None:
    settings = Settings.from_env({"CIDWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                                  "CIDWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
                                  "CIDWATCH_KAFKA_SASL_USERNAME": "u", "CIDWATCH_KAFKA_SASL_PASSWORD": "p"})
    options = credentials_to_aiokafka_auth(faust_credentials(settings))
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("u", "p")
    assert options["ssl_context"].check_hostname
    plain = Settings.from_env({"CIDWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                               "CIDWATCH_KAFKA_SASL_USERNAME": "u", "CIDWATCH_KAFKA_SASL_PASSWORD": "p"})
    assert credentials_to_aiokafka_auth(faust_credentials(plain))["security_protocol"] == "SASL_PLAINTEXT"


def test_mutual_tls_with_a_client_certificate(secure_broker: SecureBroker, topic_prefix: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """An SSL listener that requires a client certificate: the certificate, its encrypted key and the
    key's password from a file work; without them, one line says what the broker wants."""
    tls = secure_broker.tls_dir
    key_password = tmp_path / "key-password"
    key_password.write_text(secure_broker.key_password + "\n")
    monkeypatch.setenv("CIDWATCH_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("CIDWATCH_KAFKA_SSL_CAFILE", str(secure_broker.ca_file))
    at = secure_broker.mtls_bootstrap
    line = _one_line_error(cidwatch(at, topic_prefix, "topics", "create", "--partitions", "1", check=False))
    assert f"the Kafka broker at {at} closed the connection after the TLS handshake: it may require a client "\
           "certificate (CIDWATCH_KAFKA_SSL_CERTFILE" in line, line
    monkeypatch.setenv("CIDWATCH_KAFKA_SSL_CERTFILE", str(tls / "client.pem"))
    monkeypatch.setenv("CIDWATCH_KAFKA_SSL_KEYFILE", str(tls / "client.key"))
    monkeypatch.setenv("CIDWATCH_KAFKA_SSL_KEY_PASSWORD_FILE", str(key_password))
    assert "created" in cidwatch(at, topic_prefix, "topics", "create", "--partitions", "1").stdout
    assert "pushed 7 numbers" in cidwatch(at, topic_prefix, "inventory", "push", EXAMPLES / "inventory.yaml").stdout
    monkeypatch.setenv("CIDWATCH_KAFKA_SSL_KEY_PASSWORD_FILE", str(tmp_path / "no-such-file"))
    line = _one_line_error(cidwatch(at, topic_prefix, "tail", check=False))
    assert "CIDWATCH_KAFKA_SSL_KEY_PASSWORD_FILE" in line and "no-such-file" in line


def unsigned_jwt(subject: str, lifetime_s: int = 900) -> tuple[str, int]:
    """A token Kafka's unsecured OAUTHBEARER validator accepts (alg none), and its expiry in ms: what the
    test broker takes where MSK would take its SigV4-signed token."""
    now = int(time.time())

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'sub': subject, 'iat': now, 'exp': now + lifetime_s})}.", (
        now + lifetime_s) * 1000


def test_aws_msk_iam_tokens_reach_the_broker_through_kafka_python_and_aiokafka(
        secure_broker: SecureBroker, topic_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS_MSK_IAM is SASL/OAUTHBEARER with a token from AWS's signer. The test broker cannot check an
    MSK token, so the signer is replaced by one making tokens the broker accepts: what is tested is the
    path of a token through both client libraries (and a refused one is one line)."""
    signed: list[str] = []

    def signer(region: str) -> tuple[str, int]:
        signed.append(region)
        return unsigned_jwt("cidwatch-app")

    monkeypatch.setattr(connection, "_msk_signer", lambda: signer)
    monkeypatch.setattr(connection, "_TOKENS", {})
    settings = Settings.from_env({"CIDWATCH_BROKER": secure_broker.secure_bootstrap,
                                  "CIDWATCH_TOPIC_PREFIX": topic_prefix, "CIDWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                                  "CIDWATCH_KAFKA_SASL_MECHANISM": "AWS_MSK_IAM", "AWS_REGION": "eu-west-3",
                                  "CIDWATCH_KAFKA_SSL_CAFILE": str(secure_broker.ca_file)})
    create_topics(settings, partitions=1)  # kafka-python's admin
    producer = kafka_producer(settings, "msk-test")
    producer.send(settings.topic("cdr"), key=b"k", value=b"over OAUTHBEARER").get(10)
    producer.close()

    async def consume() -> bytes:
        consumer = AIOKafkaConsumer(settings.topic("cdr"), **aiokafka_options(settings), auto_offset_reset="earliest",
                                    group_id=None)
        await consumer.start()
        try:
            return (await asyncio.wait_for(consumer.getone(), 20)).value
        finally:
            await consumer.stop()

    assert asyncio.run(consume()) == b"over OAUTHBEARER"
    assert signed and set(signed) == {"eu-west-3"}
    assert len(signed) == 1  # one token, reused by every client until it nears its expiry
    options = credentials_to_aiokafka_auth(faust_credentials(settings))
    assert (options["security_protocol"], options["sasl_mechanism"]) == ("SASL_SSL", "OAUTHBEARER")
    # A token the broker refuses (expired) is one line about the AWS credentials.
    monkeypatch.setattr(connection, "_msk_signer", lambda: lambda region: (unsigned_jwt("x", -60)[0], 0))
    monkeypatch.setattr(connection, "_TOKENS", {})
    with pytest.raises(BrokerUnavailable, match="refused the AWS_MSK_IAM token for region eu-west-3"):
        check_broker(Settings.from_env({**settings_env(settings), "CIDWATCH_KAFKA_TIMEOUT": "5"}))


def settings_env(settings: Settings) -> dict[str, str]:
    return {"CIDWATCH_BROKER": settings.broker, "CIDWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "CIDWATCH_KAFKA_SASL_MECHANISM": "AWS_MSK_IAM", "CIDWATCH_KAFKA_AWS_REGION": "eu-west-3",
            "CIDWATCH_KAFKA_SSL_CAFILE": str(settings.security.ssl_cafile)}


def test_the_aws_signer_makes_an_msk_connect_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the msk-iam extra installed: AWS's signer makes, offline, a token that is a SigV4-signed
    kafka-cluster:Connect URL for the region (MSK checks it; no MSK here)."""
    # The dev extras install AWS's signer (pyproject.toml): its absence is a failure, not a skip.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setattr(connection, "_TOKENS", {})
    tokens = connection.MskIamTokens("eu-west-3")
    url = base64.urlsafe_b64decode(tokens() + "==").decode()
    assert url.startswith("https://kafka.eu-west-3.amazonaws.com/?Action=kafka-cluster%3AConnect")
    assert "X-Amz-Signature=" in url and "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE" in url
