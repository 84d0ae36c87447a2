"""Settings shared by every command: where the broker is, how to reach it safely, and topic names.

One frozen object, read from the environment (`Settings.from_env`) and from a command's flags (which
win); streams/connection.py turns it into the keyword arguments of kafka-python, aiokafka and Faust,
so the three clients of a process always connect the same way. Secrets (the SASL password, a TLS
key's password) come from the environment or a file, never a flag (a command line is visible to every
user of the machine in `ps`), and are kept out of `repr` so they never reach a log.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rules.errors import CidwatchError

DEFAULT_BROKER = "kafka://127.0.0.1:9092"
DEFAULT_PREFIX = "cidwatch."
# The six public topics, then the workers' repartition topic (CDRs keyed by their subject). The
# latter is created here, not by Faust on first start: a consumer group that forms before a topic
# exists never gets its partitions assigned.
TOPIC_NAMES = ("cdr", "decisions", "alerts", "blocks", "dlq", "inventory", "cdr.by-subject")
COMPACTED_TOPICS = frozenset({"blocks", "inventory"})

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
# AWS_MSK_IAM: Amazon MSK's IAM access control, SASL/OAUTHBEARER with a token signed by AWS's own signer
# library (aws-msk-iam-sasl-signer-python, the `msk-iam` extra), from the usual AWS credential chain.
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "AWS_MSK_IAM")
# How long a command waits for a broker that does not answer before it says so: one bounded wait,
# the same for every command (a client's own default is 30 to 60 s, then retries).
DEFAULT_TIMEOUT_S = 10.0
_BROKER_ENTRY = re.compile(r"^(?:kafka://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")


class SettingsError(CidwatchError):
    """A setting that cannot be used; the message names the flag or environment variable."""


@dataclass(frozen=True)
class KafkaSecurity:
    """How a client proves who it is to the broker and checks that the broker is the right one.

    `sasl_password` and `ssl_key_password` are secrets: not in `repr`, so not in a log line or a
    traceback's locals.
    """

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None  # None: the system's trusted CAs (a managed cluster's public CA)
    ssl_certfile: Path | None = None  # a client certificate, for clusters that require mutual TLS
    ssl_keyfile: Path | None = None
    ssl_key_password: str | None = field(default=None, repr=False)
    ssl_check_hostname: bool = True
    aws_region: str | None = None  # AWS_MSK_IAM: the cluster's region

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")


@dataclass(frozen=True)
class Settings:
    broker: str = DEFAULT_BROKER
    topic_prefix: str = DEFAULT_PREFIX
    security: KafkaSecurity = field(default_factory=KafkaSecurity)
    timeout_s: float = DEFAULT_TIMEOUT_S
    # Replicas of every topic cidwatch creates; None: the broker's default.replication.factor.
    replication_factor: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **flags: Any) -> Settings:
        """The settings of `env` (default: the process environment); `flags` (a command's options,
        None when not given) override them. Raises SettingsError naming what is wrong."""
        env = os.environ if env is None else env
        given = {name: value for name, value in flags.items() if value is not None}

        def pick(name: str, variable: str) -> str | None:
            value = given.get(name)
            return str(value) if value is not None else (env.get(variable) or None)

        security = KafkaSecurity(
            protocol=(pick("security_protocol", "CIDWATCH_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").upper(),
            sasl_mechanism=(pick("sasl_mechanism", "CIDWATCH_KAFKA_SASL_MECHANISM") or "PLAIN").upper(),
            sasl_username=pick("sasl_username", "CIDWATCH_KAFKA_SASL_USERNAME"),
            sasl_password=read_secret(env, given, "sasl_password_file", "CIDWATCH_KAFKA_SASL_PASSWORD"),
            ssl_cafile=_path(pick("ssl_cafile", "CIDWATCH_KAFKA_SSL_CAFILE")),
            ssl_certfile=_path(pick("ssl_certfile", "CIDWATCH_KAFKA_SSL_CERTFILE")),
            ssl_keyfile=_path(pick("ssl_keyfile", "CIDWATCH_KAFKA_SSL_KEYFILE")),
            ssl_key_password=read_secret(env, given, "ssl_key_password_file", "CIDWATCH_KAFKA_SSL_KEY_PASSWORD"),
            ssl_check_hostname=_flag(pick("ssl_check_hostname", "CIDWATCH_KAFKA_SSL_CHECK_HOSTNAME"), True,
                                     "CIDWATCH_KAFKA_SSL_CHECK_HOSTNAME"),
            aws_region=(pick("aws_region", "CIDWATCH_KAFKA_AWS_REGION") or env.get("AWS_REGION")
                        or env.get("AWS_DEFAULT_REGION")),
        )
        settings = cls(
            broker=pick("broker", "CIDWATCH_BROKER") or DEFAULT_BROKER,
            topic_prefix=env.get("CIDWATCH_TOPIC_PREFIX", DEFAULT_PREFIX),
            security=security,
            timeout_s=_number(pick("timeout", "CIDWATCH_KAFKA_TIMEOUT"), DEFAULT_TIMEOUT_S, float,
                              "--kafka-timeout / CIDWATCH_KAFKA_TIMEOUT"),
            replication_factor=_number(pick("replication_factor", "CIDWATCH_KAFKA_REPLICATION_FACTOR"), None, int,
                                       "--replication-factor / CIDWATCH_KAFKA_REPLICATION_FACTOR"),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Raise SettingsError for a broker list, protocol, mechanism or file that cannot work."""
        for entry in self.broker.split(";") if ";" in self.broker else self.broker.split(","):
            match = _BROKER_ENTRY.match(entry.strip())
            if match is None or not 0 < int(match["port"]) < 65536:
                raise SettingsError(f"CIDWATCH_BROKER: {entry.strip()!r} is not HOST:PORT (for example "
                                    "kafka://broker1:9092;kafka://broker2:9092 or broker1:9092,broker2:9092)")
        security = self.security
        if security.protocol not in SECURITY_PROTOCOLS:
            raise SettingsError(f"CIDWATCH_KAFKA_SECURITY_PROTOCOL: {security.protocol!r} is not one of "
                                f"{', '.join(SECURITY_PROTOCOLS)}")
        if security.uses_sasl:
            if security.sasl_mechanism not in SASL_MECHANISMS:
                raise SettingsError(f"CIDWATCH_KAFKA_SASL_MECHANISM: {security.sasl_mechanism!r} is not one of "
                                    f"{', '.join(SASL_MECHANISMS)}")
            if security.sasl_mechanism == "AWS_MSK_IAM":
                if security.protocol != "SASL_SSL" or not security.aws_region:
                    raise SettingsError("AWS_MSK_IAM needs CIDWATCH_KAFKA_SECURITY_PROTOCOL=SASL_SSL and the cluster's "
                                        "region (CIDWATCH_KAFKA_AWS_REGION, or AWS_REGION)")
            elif not security.sasl_username or security.sasl_password is None:
                raise SettingsError(f"{security.protocol} needs a user name (CIDWATCH_KAFKA_SASL_USERNAME) and a "
                                    "password (CIDWATCH_KAFKA_SASL_PASSWORD or CIDWATCH_KAFKA_SASL_PASSWORD_FILE)")
        for label, path in (("CIDWATCH_KAFKA_SSL_CAFILE", security.ssl_cafile),
                            ("CIDWATCH_KAFKA_SSL_CERTFILE", security.ssl_certfile),
                            ("CIDWATCH_KAFKA_SSL_KEYFILE", security.ssl_keyfile)):
            if path is not None and not path.is_file():
                raise SettingsError(f"{label}: {path}: no such file")
        if security.ssl_keyfile is not None and security.ssl_certfile is None:
            raise SettingsError("CIDWATCH_KAFKA_SSL_KEYFILE needs CIDWATCH_KAFKA_SSL_CERTFILE (the client certificate)")
        if self.timeout_s <= 0:
            raise SettingsError("CIDWATCH_KAFKA_TIMEOUT must be more than 0 seconds")
        if self.replication_factor is not None and self.replication_factor < 1:
            raise SettingsError("--replication-factor must be at least 1")

    @property
    def bootstrap_servers(self) -> str:
        """The broker URL without Faust's `kafka://` scheme, for kafka-python and aiokafka."""
        parts = self.broker.split(";") if ";" in self.broker else self.broker.split(",")
        return ",".join(part.strip().removeprefix("kafka://") for part in parts)

    @property
    def faust_broker(self) -> str:
        """The broker list in Faust's form: `kafka://host:port;kafka://host:port`."""
        return ";".join(f"kafka://{part}" for part in self.bootstrap_servers.split(","))

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def read_secret(env: Mapping[str, str], given: Mapping[str, Any], file_flag: str, variable: str) -> str | None:
    """A secret from a file (`--...-file` flag, or VARIABLE_FILE), else from VARIABLE itself. A file's
    trailing newline is not part of the secret (editors add one)."""
    path = given.get(file_flag) or env.get(f"{variable}_FILE")
    if path:
        try:
            return Path(path).expanduser().read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            name = f"--{file_flag.replace('_', '-')}" if given.get(file_flag) else f"{variable}_FILE"
            raise SettingsError(f"{name}: {path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from exc
    return env.get(variable)


def _flag(value: str | None, default: bool, label: str) -> bool:
    if value is None:
        return default
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{label}: {value!r} is not true or false")


def _number(value: str | None, default: Any, kind: type, label: str) -> Any:
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError:
        raise SettingsError(f"{label}: {value!r} is not a{'n integer' if kind is int else ' number'}") from None
