"""The Kafka topics of cidwatch, created explicitly with their partition counts and cleanup policy.

Why explicit: the broker does not auto-create topics, so a typo in a prefix fails loudly instead
of silently creating an empty topic, and compaction is set where the data is a table (blocks,
inventory) rather than an event stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rules.errors import CidwatchError
from streams.connection import kafka_admin
from streams.settings import COMPACTED_TOPICS, TOPIC_NAMES, Settings


class TopicError(CidwatchError):
    """The broker is unreachable, or refused to create a topic."""

# `inventory` holds configuration (which numbers a tenant owns) that every worker needs whole:
# each worker reads all of it, so partitions would buy no parallelism, and one partition keeps
# one total order of updates. Every other topic is keyed by caller ID and spread over the
# configured count so that workers can share the load.
SINGLE_PARTITION_TOPICS = frozenset({"inventory"})
ALREADY_EXISTS_ERROR_CODE = 36  # TopicAlreadyExistsError: another creator got there first


@dataclass
class CreateResult:
    """Full topic names that this call created, and those that were there already."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    replication: int = 0  # replicas of each created topic


def topic_names(settings: Settings) -> dict[str, str]:
    """Short name (cdr, decisions, ...) to full topic name with the configured prefix."""
    return {name: settings.topic(name) for name in TOPIC_NAMES}


def topic_spec(name: str, partitions: int, replication: int) -> dict[str, Any]:
    """kafka-python's create_topics entry for one short topic name."""
    return {
        "num_partitions": 1 if name in SINGLE_PARTITION_TOPICS else partitions,
        "replication_factor": replication,
        "configs": {"cleanup.policy": "compact" if name in COMPACTED_TOPICS else "delete"},
    }


@contextmanager
def admin_client(settings: Settings) -> Iterator[Any]:
    """A KafkaAdminClient for the configured broker (BrokerUnavailable, one line, when it cannot be used)."""
    admin = kafka_admin(settings, "cidwatch-topics")
    try:
        yield admin
    finally:
        admin.close()


def replication_factor(settings: Settings, admin: Any) -> int:
    """Replicas of every topic cidwatch creates: `--replication-factor` when given, else the broker's
    own `default.replication.factor` (1 on the local development broker, 3 on a managed cluster), so
    that a worker's changelogs are as durable as the cluster makes any topic by default."""
    if settings.replication_factor is not None:
        return settings.replication_factor
    from kafka.admin import ConfigResource
    from kafka.errors import KafkaError

    try:
        brokers = admin.describe_cluster()["brokers"]
        resource = ConfigResource("BROKER", str(brokers[0]["broker_id"]), ["default.replication.factor"])
        described = admin.describe_configs([resource], config_filter="all")
        return int(next(iter(described["broker"].values()))["default.replication.factor"]["value"])
    except (KafkaError, KeyError, IndexError, StopIteration, TypeError, ValueError) as exc:
        raise TopicError(f"cannot read the broker's default.replication.factor at {settings.bootstrap_servers} "
                         f"({type(exc).__name__}: {exc}); pass --replication-factor N "
                         "(or CIDWATCH_KAFKA_REPLICATION_FACTOR)") from exc


def create_topics(settings: Settings, partitions: int = 8, extra: tuple[str, ...] = ()) -> CreateResult:
    """Create whichever topics are missing (plus `extra` short names, e.g. raw.asterisk) with
    `replication_factor(settings)` replicas; existing ones are reported, not changed."""
    if partitions < 1:
        raise TopicError("--partitions must be at least 1")
    names = {**topic_names(settings), **{name: settings.topic(name) for name in extra}}
    result = CreateResult()
    with admin_client(settings) as admin:
        replication = replication_factor(settings, admin)
        result.replication = replication
        present = set(admin.list_topics())
        wanted = {full: topic_spec(short, partitions, replication)
                  for short, full in names.items() if full not in present}
        result.existing = [full for full in names.values() if full in present]
        if wanted:
            _create(admin, wanted, result)
    return result


def create_changelogs(settings: Settings, names: list[str], partitions: int) -> None:
    """Create a worker's table changelog topics (compacted) before it starts.

    Why: Faust creates them itself at start-up and joins its consumer group a moment later; on a busy
    machine the broker's metadata does not list the new topics yet, the group leader ignores them
    ("Ignoring missing topic"), and every write to such a table then fails with PartitionsMismatch
    (changelog "has 0 partitions"). Topics that exist already are left alone. Replicas: as every topic
    (`replication_factor`): a changelog with one replica loses the workers' state with its broker.
    """
    with admin_client(settings) as admin:
        replication = replication_factor(settings, admin)
        present = set(admin.list_topics())
        specs = {name: {"num_partitions": partitions, "replication_factor": replication,
                        "configs": {"cleanup.policy": "compact"}} for name in names if name not in present}
        if specs:
            _create(admin, specs, CreateResult())


def require_topics(settings: Settings, names: list[str]) -> None:
    """Raise TopicError naming the first of `names` the broker does not have (the broker does not
    create topics on first use, and a producer would wait for one in vain)."""
    with admin_client(settings) as admin:
        present = set(admin.list_topics())
    missing = [name for name in names if name not in present]
    if missing:
        raise TopicError(f"topic {missing[0]} does not exist on the Kafka broker at {settings.bootstrap_servers}; "
                         "create the topics with `cidwatch topics create` (check CIDWATCH_TOPIC_PREFIX)")


def partition_counts(settings: Settings, names: list[str]) -> dict[str, int]:
    """Partitions of each named topic (0 when it does not exist)."""
    with admin_client(settings) as admin:
        described = admin.describe_topics(names)
    return {topic["name"]: len(topic.get("partitions") or []) for topic in described}


def _create(admin: Any, specs: dict[str, Any], result: CreateResult) -> None:
    """Create `specs`, raise TopicError naming what the broker refused and why, then wait until the
    created topics have leaders (kafka-python's wait_for_metadata would wait for refused ones too)."""
    created_before = len(result.created)
    _sort_response(admin.create_topics(specs, raise_errors=False), result)
    if result.created[created_before:]:
        admin.wait_for_topics(result.created[created_before:])


def _sort_response(response: dict[str, Any], result: CreateResult) -> None:
    failures: dict[str, list[str]] = {}  # the broker's reason -> the topics it refused for it
    for topic in response["topics"]:
        code = topic.get("error_code", 0)
        if code == 0:
            result.created.append(topic["name"])
        elif code == ALREADY_EXISTS_ERROR_CODE:
            result.existing.append(topic["name"])
        else:
            reason = f"error {code} {topic.get('error_message') or ''}".strip()
            failures.setdefault(reason, []).append(topic["name"])
    if failures:
        raise TopicError("could not create topics: " + "; ".join(f"{', '.join(names)}: {reason}"
                                                                 for reason, names in failures.items()))
