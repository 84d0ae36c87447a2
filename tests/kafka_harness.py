"""A real Kafka broker for tests: one KRaft node on a free loopback port, in a temporary directory.

Why a real broker: the stream workers' behaviour (keys, partitions, compaction, dead letters) is
what the tests are about, and in-memory fakes would not show it. `cidwatch.dev.broker` does the work,
so the tests also exercise the same start/stop code that developers use.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cidwatch.dev import broker


def start_test_broker(tmp_dir: Path, heap: str = "512m") -> tuple[str, Callable[[], None]]:
    """Start a broker with its data under `tmp_dir`; return its bootstrap address and a stopper."""
    data_dir = Path(tmp_dir) / "broker"
    info = broker.start(port=broker.free_port(), data_dir=data_dir, heap=heap)

    def stop() -> None:
        broker.stop(data_dir)

    return info.bootstrap, stop


# --- a broker as a managed cluster is reached: SASL over TLS ------------------------------------

SCRAM_USER = "cidwatch-app"


@dataclass(frozen=True)
class SecureBroker:
    """A broker with a SASL_SSL listener: its PLAINTEXT address (for the test's own admin work), its
    SASL_SSL address, the CA that signed its certificate, another CA (that did not), and a SCRAM user."""

    bootstrap: str
    secure_bootstrap: str
    ca_file: Path
    other_ca_file: Path
    tls_dir: Path  # also holds elsewhere.pem/.key (another host name) and client.pem/.key (mutual TLS)
    mtls_bootstrap: str  # an SSL listener that requires a client certificate
    key_password: str = field(repr=False)  # client.key's
    username: str
    password: str = field(repr=False)
    mechanism: str = "SCRAM-SHA-512"


def make_certificates(folder: Path, password: str) -> tuple[Path, Path, Path]:
    """With openssl: a CA, a broker certificate it signs for 127.0.0.1 (and localhost) in a PKCS12
    keystore, a certificate it signs for another host name, a client certificate (client.pem, its key
    client.key encrypted with `password`), and an unrelated CA; with keytool, the broker's truststore.
    Returns (keystore, CA file, other CA file)."""
    folder.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    for name in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
                "-days", "2", "-subj", f"/CN=cidwatch test {name}")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
            "-subj", "/CN=127.0.0.1")
    (folder / "broker.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                       "keyUsage=critical,digitalSignature,keyEncipherment\n"
                                       "extendedKeyUsage=serverAuth\n"
                                       "authorityKeyIdentifier=keyid\n")
    openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "broker.pem", "-days", "2", "-extfile", "broker.ext")
    (folder / "elsewhere.ext").write_text("subjectAltName=DNS:elsewhere.invalid\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "elsewhere.key", "-out", "elsewhere.csr",
            "-subj", "/CN=elsewhere.invalid")
    openssl("x509", "-req", "-in", "elsewhere.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "elsewhere.pem", "-days", "2", "-extfile", "elsewhere.ext")
    # A client certificate for the mutual-TLS listener, its key encrypted (the key's password is a secret too).
    openssl("req", "-newkey", "rsa:2048", "-passout", f"pass:{password}", "-keyout", "client.key",
            "-out", "client.csr", "-subj", "/CN=cidwatch-client")
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "client.pem", "-days", "2")
    # The broker's truststore for client certificates: the CA, with keytool as a Kafka operator does.
    subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem", "-keystore",
                    "truststore.p12", "-storetype", "PKCS12", "-storepass", password], cwd=folder, check=True,
                   capture_output=True)
    openssl("pkcs12", "-export", "-in", "broker.pem", "-inkey", "broker.key", "-certfile", "ca.pem",
            "-name", "broker", "-out", "broker.p12", "-passout", f"pass:{password}")
    return folder / "broker.p12", folder / "ca.pem", folder / "other-ca.pem"


def start_secure_broker(tmp_dir: Path, heap: str = "384m") -> tuple[SecureBroker, Callable[[], None]]:
    """Start a broker with a SASL_SSL listener (certificates made here, a SCRAM-SHA-512 user made with
    kafka-configs); return where it is and a stopper."""
    tmp_dir = Path(tmp_dir)
    keystore_password = secrets.token_hex(8)
    keystore, ca_file, other_ca = make_certificates(tmp_dir / "tls", keystore_password)
    data_dir = tmp_dir / "broker"
    secure_port, mtls_port = broker.free_port(), broker.free_port()
    while mtls_port == secure_port:
        mtls_port = broker.free_port()
    info = broker.start(port=broker.free_port(), data_dir=data_dir, heap=heap,
                        secure=broker.SecureListener(secure_port, keystore, keystore_password, mtls_port=mtls_port,
                                                     truststore=keystore.parent / "truststore.p12"))
    password = secrets.token_urlsafe(12)

    def stop() -> None:
        broker.stop(data_dir)

    try:
        broker.add_scram_user(data_dir, info.port or 0, "SCRAM-SHA-512", SCRAM_USER, password)
    except Exception:
        stop()
        raise
    return SecureBroker(info.bootstrap, f"127.0.0.1:{secure_port}", ca_file, other_ca, ca_file.parent,
                        f"127.0.0.1:{mtls_port}", keystore_password, SCRAM_USER, password), stop
