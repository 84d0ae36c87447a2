"""The Kafka connection flags every broker command takes, read into one `Settings`.

Each flag falls back to its `CIDWATCH_*` environment variable (streams/settings.py reads them and
holds the defaults). No flag takes a secret: the SASL password and a TLS key's password come from a
file (`--sasl-password-file`) or the environment, because a command line is visible to every user of
the machine.
"""

from __future__ import annotations

import argparse

from streams.settings import DEFAULT_TIMEOUT_S, SASL_MECHANISMS, SECURITY_PROTOCOLS, Settings

# (flag, dest, metavar, environment variable, help); dest is the name Settings.from_env takes.
_OPTIONS = (
    ("--broker", "broker", "URL", "CIDWATCH_BROKER",
     "bootstrap broker(s), HOST:PORT[,HOST:PORT] or kafka://HOST:PORT[;kafka://HOST:PORT] "
     "(default kafka://127.0.0.1:9092)"),
    ("--sasl-username", "sasl_username", "NAME", "CIDWATCH_KAFKA_SASL_USERNAME", "SASL user name"),
    ("--sasl-password-file", "sasl_password_file", "FILE", "CIDWATCH_KAFKA_SASL_PASSWORD_FILE",
     "file holding the SASL password (or the password itself in CIDWATCH_KAFKA_SASL_PASSWORD; never a flag)"),
    ("--ssl-cafile", "ssl_cafile", "FILE", "CIDWATCH_KAFKA_SSL_CAFILE",
     "CA certificate(s) that signed the broker's certificate, PEM (default: the system's CAs)"),
    ("--ssl-certfile", "ssl_certfile", "FILE", "CIDWATCH_KAFKA_SSL_CERTFILE",
     "client certificate, PEM, for brokers that require mutual TLS"),
    ("--ssl-keyfile", "ssl_keyfile", "FILE", "CIDWATCH_KAFKA_SSL_KEYFILE", "the client certificate's private key"),
    ("--ssl-key-password-file", "ssl_key_password_file", "FILE", "CIDWATCH_KAFKA_SSL_KEY_PASSWORD_FILE",
     "file holding the private key's password (or CIDWATCH_KAFKA_SSL_KEY_PASSWORD)"),
    ("--aws-region", "aws_region", "REGION", "CIDWATCH_KAFKA_AWS_REGION",
     "the MSK cluster's region, for AWS_MSK_IAM (default: AWS_REGION)"),
)


class SecretRefused(argparse.Action):
    """`--sasl-password`, `--ssl-key-password` and `--hash-key` exist only to be refused (otherwise argparse
    would take them as abbreviations of the `-file` flags, and a secret for a file name)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        parser.error(f"{option_string} is not accepted: a secret on the command line is visible to every user "
                     f"of the machine; use {option_string}-file FILE or the environment variable")


def add_kafka_arguments(parser: argparse.ArgumentParser, replication: bool = False) -> None:
    """Add the connection flags (and `--replication-factor` for commands that create topics)."""
    group = parser.add_argument_group("Kafka connection (each flag falls back to its environment variable)")
    group.add_argument("--security-protocol", type=str.upper, choices=SECURITY_PROTOCOLS, default=None,
                       help="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (env CIDWATCH_KAFKA_SECURITY_PROTOCOL, "
                       "default PLAINTEXT)")
    group.add_argument("--sasl-mechanism", type=str.upper, choices=SASL_MECHANISMS, default=None,
                       help="env CIDWATCH_KAFKA_SASL_MECHANISM, default PLAIN; AWS_MSK_IAM signs with the AWS "
                       "credentials of the environment (needs the msk-iam extra)")
    for flag, dest, metavar, variable, text in _OPTIONS:
        group.add_argument(flag, dest=dest, metavar=metavar, default=None, help=f"{text} (env {variable})")
    for refused in ("--sasl-password", "--ssl-key-password"):
        group.add_argument(refused, action=SecretRefused, help=argparse.SUPPRESS)
    group.add_argument("--no-ssl-check-hostname", dest="ssl_check_hostname", action="store_const", const="false",
                       default=None, help="do not check that the broker's certificate names the host "
                       "(env CIDWATCH_KAFKA_SSL_CHECK_HOSTNAME=false; on by default)")
    group.add_argument("--kafka-timeout", dest="kafka_timeout", type=float, metavar="S", default=None,
                       help="seconds to wait for a broker that does not answer before saying so "
                       f"(env CIDWATCH_KAFKA_TIMEOUT, default {DEFAULT_TIMEOUT_S:g})")
    if replication:
        group.add_argument("--replication-factor", dest="replication_factor", type=int, metavar="N", default=None,
                           help="replicas of every topic created, the workers' changelogs included (env "
                           "CIDWATCH_KAFKA_REPLICATION_FACTOR; default: the broker's default.replication.factor)")


def kafka_settings(args: argparse.Namespace) -> Settings:
    """The settings of the environment, with this command's flags over them."""
    names = ("broker", "security_protocol", "sasl_mechanism", "sasl_username", "sasl_password_file", "ssl_cafile",
             "ssl_certfile", "ssl_keyfile", "ssl_key_password_file", "ssl_check_hostname", "replication_factor",
             "aws_region")
    flags = {name: getattr(args, name, None) for name in names}
    return Settings.from_env(timeout=getattr(args, "kafka_timeout", None), **flags)
