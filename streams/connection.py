"""One `Settings` to the keyword arguments of each Kafka client cidwatch uses, and their failures
to one line a user can act on.

Why here: the commands use kafka-python (admin, produce, tail, blocks), the API and the worker's
inventory follower use aiokafka, and the worker runs Faust (aiokafka underneath). Each names its
options a little differently; built in one place, a SASL_SSL cluster is reached the same way by all
of them, and one TLS context (aiokafka's `create_ssl_context`, hostname checked unless turned off)
is handed to each, so a CA file or client certificate is read the same way everywhere.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from typing import Any

from streams.settings import Settings, SettingsError


class BrokerUnavailable(SettingsError):
    """The broker did not answer, refused our credentials, or its certificate is not trusted."""


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of the settings (None without TLS): the CA file (or the system's CAs), the
    optional client certificate and key, hostname verification unless turned off."""
    security = settings.security
    if not security.uses_tls:
        return None
    from aiokafka.helpers import create_ssl_context

    try:
        context = create_ssl_context(cafile=security.ssl_cafile, certfile=security.ssl_certfile,
                                     keyfile=security.ssl_keyfile, password=security.ssl_key_password)
    except ssl.SSLError as exc:
        raise SettingsError(f"CIDWATCH_KAFKA_SSL_*: the CA file, certificate or key cannot be used "
                            f"({exc.reason or exc})") from exc
    context.check_hostname = security.ssl_check_hostname
    return context


def _auth(settings: Settings, library: str = "aiokafka") -> dict[str, Any]:
    security = settings.security
    options: dict[str, Any] = {"security_protocol": security.protocol}
    if security.uses_tls:
        options["ssl_context"] = ssl_context(settings)
    if security.uses_sasl and security.sasl_mechanism == "AWS_MSK_IAM":
        options.update(sasl_mechanism="OAUTHBEARER", sasl_oauth_token_provider=token_provider(settings, library))
    elif security.uses_sasl:
        options.update(sasl_mechanism=security.sasl_mechanism, sasl_plain_username=security.sasl_username,
                       sasl_plain_password=security.sasl_password)
    return options


# --- Amazon MSK IAM ---------------------------------------------------------------------------


class MskIamTokens:
    """Amazon MSK IAM tokens for one region, shared by every client of the process.

    A token is a SigV4-signed URL (valid 15 minutes) made by AWS's signer library from the usual AWS
    credential chain (environment, profile, instance or task role); one is reused until a minute before
    it expires, so connecting many clients does not sign many.
    """

    REFRESH_MS = 60_000

    def __init__(self, region: str) -> None:
        self.region = region
        self._generate = _msk_signer()
        self._token = ""
        self._expires_ms = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if time.time() * 1000 >= self._expires_ms - self.REFRESH_MS:
                self._token, self._expires_ms = self._generate(self.region)
            return self._token


def _msk_signer() -> Any:
    """aws-msk-iam-sasl-signer-python's `generate_auth_token(region) -> (token, expiry in ms)`."""
    try:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
    except ImportError as exc:
        raise SettingsError("CIDWATCH_KAFKA_SASL_MECHANISM=AWS_MSK_IAM needs AWS's signer: "
                            "pip install 'cidwatch[msk-iam]' (aws-msk-iam-sasl-signer-python)") from exc
    return MSKAuthTokenProvider.generate_auth_token


_TOKENS: dict[str, MskIamTokens] = {}


def token_provider(settings: Settings, library: str) -> Any:
    """The region's MskIamTokens behind the token-provider class each library asks for: kafka-python's
    (a `token()` method) or aiokafka's, which Faust uses too (an async `token()`, run in a thread: the
    signer reads credential files and may ask an instance's metadata service)."""
    region = settings.security.aws_region or ""
    tokens = _TOKENS.get(region) or _TOKENS.setdefault(region, MskIamTokens(region))
    if library == "kafka-python":
        from kafka.net.sasl.oauth import AbstractTokenProvider as KafkaPythonTokenProvider

        class KafkaPythonTokens(KafkaPythonTokenProvider):
            def token(self) -> str:
                return tokens()

        return KafkaPythonTokens()
    from aiokafka.abc import AbstractTokenProvider

    class AiokafkaTokens(AbstractTokenProvider):
        async def token(self) -> str:
            return await asyncio.to_thread(tokens)

    return AiokafkaTokens()


def kafka_python_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for kafka-python's KafkaProducer, KafkaConsumer and KafkaAdminClient: the
    broker, its security, and one bounded wait for a broker that does not answer."""
    return {"bootstrap_servers": settings.bootstrap_servers, **_auth(settings, "kafka-python"),
            "bootstrap_timeout_ms": int(settings.timeout_s * 1000)}


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiokafka's AIOKafkaConsumer and AIOKafkaProducer."""
    return {"bootstrap_servers": settings.bootstrap_servers, **_auth(settings)}


def faust_credentials(settings: Settings) -> Any:
    """Faust's `broker_credentials` (faust.auth): None for PLAINTEXT; Faust turns them into the same
    aiokafka arguments (`credentials_to_aiokafka_auth` in faust/transport/drivers/aiokafka.py) for its
    consumer, producer and topic creation."""
    from faust.auth import OAuthCredentials, SASLCredentials, SSLCredentials

    security = settings.security
    if security.uses_sasl and security.sasl_mechanism == "AWS_MSK_IAM":
        return OAuthCredentials(oauth_cb=token_provider(settings, "aiokafka"), ssl_context=ssl_context(settings))
    if security.uses_sasl:
        credentials = SASLCredentials(username=security.sasl_username, password=security.sasl_password,
                                      ssl_context=ssl_context(settings), mechanism=security.sasl_mechanism)
        credentials.protocol = type(credentials.protocol)(security.protocol)
        return credentials
    if security.uses_tls:
        return SSLCredentials(ssl_context(settings))
    return None


def check_broker(settings: Settings) -> None:
    """Connect once to the bootstrap broker(s) as the clients will (TLS, then SASL), within
    `settings.timeout_s` in all; raise BrokerUnavailable with the cause in one line.

    Why before the clients: kafka-python and aiokafka retry a failed bootstrap until their own
    timeouts and then report only "unable to bootstrap", the refused password or untrusted
    certificate left in their log. This check is one bounded wait, the same for every command, and
    says which it was. A process checks a given Settings once.
    """
    if settings in _CHECKED:
        return
    problem = _in_own_loop(_probe(settings))
    if problem is not None:
        raise BrokerUnavailable(problem)
    _CHECKED.add(settings)


_CHECKED: set[Settings] = set()


def _in_own_loop(coroutine: Any) -> Any:
    """Run a coroutine to its end from synchronous code, even inside a running event loop (the API and
    the worker check from their loop's thread)."""
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(asyncio.run(coroutine)), daemon=True)
    worker.start()
    worker.join()
    return result[0] if result else "the broker check did not finish"


async def _probe(settings: Settings) -> str | None:
    """None when one bootstrap address accepts a connection (and our credentials); else why not."""
    from aiokafka.conn import create_conn
    from aiokafka.protocol.metadata import MetadataRequest

    options = _auth(settings)
    failures: list[tuple[str, BaseException, bool]] = []  # (address, error, whether SASL had passed)

    async def attempt(entry: str) -> bool:
        host, _, port = entry.rpartition(":")
        authenticated = False
        try:
            connection = await create_conn(host.strip("[]"), int(port), client_id="cidwatch-check",
                                           request_timeout_ms=int(settings.timeout_s * 1000), **options)
            authenticated = True
            try:
                # One request after authentication: aiokafka 0.14 takes the broker's OAUTHBEARER error
                # (`{"status":"invalid_token"}` with error code 0) for success (conn.py,
                # OAuthAuthenticator), and the broker, still mid-authentication, then answers this request
                # with nothing; a broker that let us in lists at least itself.
                metadata = await connection.send(MetadataRequest([]))
                if not metadata.brokers:
                    raise ConnectionError("the broker answered a metadata request with no brokers")
            finally:
                connection.close()
        except Exception as exc:  # classified by _explain; any failure means "not this address"
            failures.append((entry, exc, authenticated))
            return False
        return True

    async def any_entry() -> bool:
        for entry in settings.bootstrap_servers.split(","):
            if await attempt(entry):
                return True
        return False

    try:
        if await asyncio.wait_for(any_entry(), settings.timeout_s):
            return None
    except TimeoutError:
        return _cannot_reach(settings, f"no answer within {settings.timeout_s:g} s")
    entry, exc, authenticated = failures[-1]
    if authenticated and settings.security.sasl_mechanism == "AWS_MSK_IAM" and settings.security.uses_sasl:
        return (f"the Kafka broker at {entry} refused the AWS_MSK_IAM token for region "
                f"{settings.security.aws_region}: check the AWS credentials cidwatch "
                "runs with, their kafka-cluster:Connect permission, and the region")
    return _explain(exc, settings, entry)


def _explain(exc: BaseException, settings: Settings, entry: str) -> str:
    from aiokafka.errors import AuthenticationFailedError, SaslAuthenticationFailed, UnsupportedSaslMechanismError

    security = settings.security
    if isinstance(exc, ssl.SSLCertVerificationError):
        trusted = security.ssl_cafile or "the system's CA store"
        return (f"the TLS certificate of the Kafka broker at {entry} is not trusted ({exc.verify_message}; "
                f"CA: {trusted}); set CIDWATCH_KAFKA_SSL_CAFILE to the CA that signed it")
    if isinstance(exc, ssl.SSLError):
        return (f"TLS with the Kafka broker at {entry} failed ({exc.reason or exc}); is the listener "
                f"{security.protocol}? (CIDWATCH_KAFKA_SECURITY_PROTOCOL)")
    refused = isinstance(exc, SaslAuthenticationFailed | AuthenticationFailedError)
    if refused and security.sasl_mechanism == "AWS_MSK_IAM":
        return (f"the Kafka broker at {entry} refused the AWS_MSK_IAM token for region {security.aws_region}: "
                "check the AWS credentials cidwatch runs with, their kafka-cluster:Connect permission, and the region")
    if refused:
        return (f"the Kafka broker at {entry} refused {security.sasl_mechanism} authentication as "
                f"{security.sasl_username!r}: check CIDWATCH_KAFKA_SASL_USERNAME and the password "
                "(CIDWATCH_KAFKA_SASL_PASSWORD or CIDWATCH_KAFKA_SASL_PASSWORD_FILE)")
    if isinstance(exc, UnsupportedSaslMechanismError):
        return (f"the Kafka broker at {entry} does not accept SASL mechanism {security.sasl_mechanism} "
                "(CIDWATCH_KAFKA_SASL_MECHANISM)")
    if isinstance(exc, ConnectionResetError) and security.uses_tls:
        return (f"the Kafka broker at {entry} closed the connection during the TLS handshake: is its listener "
                f"{security.protocol}? (CIDWATCH_KAFKA_SECURITY_PROTOCOL)")
    if isinstance(exc, ConnectionError | OSError) and not isinstance(exc, ConnectionRefusedError):
        return _cannot_reach(settings, f"{type(exc).__name__}: {exc}")
    text = str(exc)
    if "closed" in text.lower() and security.protocol in ("PLAINTEXT", "SASL_PLAINTEXT"):
        return (f"the Kafka broker at {entry} closed the connection: its listener may need TLS "
                f"(CIDWATCH_KAFKA_SECURITY_PROTOCOL is {security.protocol})")
    if "closed" in text.lower() and security.protocol == "SSL" and security.ssl_certfile is None:
        # TLS 1.3: the server checks the client's certificate after the handshake and just hangs up.
        return (f"the Kafka broker at {entry} closed the connection after the TLS handshake: it may require a "
                "client certificate (CIDWATCH_KAFKA_SSL_CERTFILE, CIDWATCH_KAFKA_SSL_KEYFILE), or SASL "
                "(CIDWATCH_KAFKA_SECURITY_PROTOCOL=SASL_SSL)")
    return _cannot_reach(settings, text or type(exc).__name__)


def _cannot_reach(settings: Settings, why: str) -> str:
    return (f"cannot reach the Kafka broker at {settings.bootstrap_servers} ({why}); start one with "
            "`cidwatch broker start` or set CIDWATCH_BROKER")


def unavailable(exc: BaseException, settings: Settings) -> BrokerUnavailable:
    """The user-facing error for a client failure after the check passed (raise it `from exc`)."""
    return BrokerUnavailable(f"the Kafka broker at {settings.bootstrap_servers} failed a request "
                             f"({type(exc).__name__}: {exc})")


# --- kafka-python clients, checked first ------------------------------------------------------


def kafka_producer(settings: Settings, client_id: str, **options: Any) -> Any:
    """A KafkaProducer that waits for every in-sync replica (`acks=all`) and at most
    `settings.timeout_s` for metadata: a record acknowledged by one replica is lost with it."""
    from kafka import KafkaProducer

    return _client(settings, KafkaProducer, client_id=client_id, acks="all",
                   max_block_ms=int(settings.timeout_s * 1000), **options)


def kafka_consumer(settings: Settings, client_id: str, **options: Any) -> Any:
    """A KafkaConsumer; without `group_id` it joins no group and commits nothing."""
    from kafka import KafkaConsumer

    return _client(settings, KafkaConsumer, client_id=client_id, **options)


def kafka_admin(settings: Settings, client_id: str) -> Any:
    from kafka.admin import KafkaAdminClient

    return _client(settings, KafkaAdminClient, client_id=client_id)


def _client(settings: Settings, factory: Any, **options: Any) -> Any:
    from kafka.errors import KafkaError

    check_broker(settings)
    try:
        return factory(**kafka_python_options(settings), **options)
    except KafkaError as exc:
        raise unavailable(exc, settings) from exc
