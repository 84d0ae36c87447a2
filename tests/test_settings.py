"""The connection settings: flags over environment, secrets from files, kept out of repr, bad values named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cidwatch.cli import build_parser
from cidwatch.kafka_options import kafka_settings
from streams.connection import aiokafka_options, kafka_python_options
from streams.settings import Settings, SettingsError

SASL = {"CIDWATCH_KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "CIDWATCH_KAFKA_SASL_MECHANISM": "scram-sha-512",
        "CIDWATCH_KAFKA_SASL_USERNAME": "app"}


def test_defaults_are_the_local_broker_in_plaintext() -> None:
    settings = Settings.from_env({})
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.security.protocol == "PLAINTEXT" and settings.replication_factor is None
    options = kafka_python_options(settings)
    assert options["security_protocol"] == "PLAINTEXT" and "ssl_context" not in options
    assert options["bootstrap_timeout_ms"] == 10_000


def test_the_password_comes_from_a_file_or_the_environment_and_is_never_in_repr(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret-from-file\n")
    from_file = Settings.from_env({**SASL, "CIDWATCH_KAFKA_SASL_PASSWORD_FILE": str(secret)})
    assert from_file.security.sasl_password == "s3cret-from-file"
    from_env = Settings.from_env({**SASL, "CIDWATCH_KAFKA_SASL_PASSWORD": "s3cret-from-env"})
    assert from_env.security.sasl_password == "s3cret-from-env"
    for settings in (from_file, from_env):
        assert "s3cret" not in repr(settings)
    options = aiokafka_options(from_env)
    assert (options["sasl_mechanism"], options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "SCRAM-SHA-512", "app", "s3cret-from-env")
    assert options["ssl_context"].check_hostname


def test_flags_win_over_the_environment_and_no_flag_takes_a_password(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-flag-file")
    for name, value in {**SASL, "CIDWATCH_BROKER": "env-host:9092", "CIDWATCH_KAFKA_SASL_PASSWORD": "env"}.items():
        monkeypatch.setenv(name, value)
    args = build_parser().parse_args(["tail", "--broker", "flag-host:9093", "--sasl-password-file", str(secret),
                                      "--sasl-mechanism", "plain"])
    settings = kafka_settings(args)
    assert settings.bootstrap_servers == "flag-host:9093"
    assert settings.security.sasl_password == "from-flag-file" and settings.security.sasl_mechanism == "PLAIN"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["tail", "--sasl-password", "x"])
    worker = build_parser().parse_args(["worker", "--replication-factor", "3"])
    assert kafka_settings(worker).replication_factor == 3


@pytest.mark.parametrize(("env", "message"), [
    ({"CIDWATCH_KAFKA_SECURITY_PROTOCOL": "TLS"}, "CIDWATCH_KAFKA_SECURITY_PROTOCOL: 'TLS' is not one of"),
    ({**SASL, "CIDWATCH_KAFKA_SASL_MECHANISM": "GSSAPI", "CIDWATCH_KAFKA_SASL_PASSWORD": "p"},
     "CIDWATCH_KAFKA_SASL_MECHANISM: 'GSSAPI' is not one of"),
    (SASL, "SASL_SSL needs a user name (CIDWATCH_KAFKA_SASL_USERNAME) and a password"),
    ({**SASL, "CIDWATCH_KAFKA_SASL_PASSWORD_FILE": "/nonexistent/pw"},
     "CIDWATCH_KAFKA_SASL_PASSWORD_FILE: /nonexistent/pw: cannot read"),
    ({"CIDWATCH_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "CIDWATCH_KAFKA_SSL_CAFILE: /nonexistent/ca.pem: no such"),
    ({"CIDWATCH_KAFKA_SSL_CHECK_HOSTNAME": "maybe"}, "CIDWATCH_KAFKA_SSL_CHECK_HOSTNAME: 'maybe' is not true or false"),
    ({"CIDWATCH_KAFKA_TIMEOUT": "soon"}, "CIDWATCH_KAFKA_TIMEOUT: 'soon' is not a number"),
    ({"CIDWATCH_KAFKA_REPLICATION_FACTOR": "0"}, "--replication-factor must be at least 1"),
    ({"CIDWATCH_BROKER": "kafka://a:1;b"}, "CIDWATCH_BROKER: 'b' is not HOST:PORT"),
    ({"CIDWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "CIDWATCH_KAFKA_SASL_MECHANISM": "AWS_MSK_IAM",
      "AWS_REGION": "eu-west-1"},
     "AWS_MSK_IAM needs CIDWATCH_KAFKA_SECURITY_PROTOCOL=SASL_SSL and the cluster's region"),
    ({"CIDWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "CIDWATCH_KAFKA_SASL_MECHANISM": "AWS_MSK_IAM"},
     "AWS_MSK_IAM needs CIDWATCH_KAFKA_SECURITY_PROTOCOL=SASL_SSL and the cluster's region"),
])
def test_unusable_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env(env)


def test_broker_lists_in_both_forms() -> None:
    faust_form = Settings.from_env({"CIDWATCH_BROKER": "kafka://a:1;kafka://b:2"})
    plain_form = Settings.from_env({"CIDWATCH_BROKER": "a:1, b:2"})
    assert faust_form.bootstrap_servers == plain_form.bootstrap_servers == "a:1,b:2"
    assert plain_form.faust_broker == "kafka://a:1;kafka://b:2"
