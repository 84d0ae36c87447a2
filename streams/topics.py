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
    """A KafkaAdminClient for the configured broker, with a user-facing error when it is down."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id="cidwatch-topics",
                                 bootstrap_timeout_ms=10000)
    except KafkaError as exc:
        raise TopicError(f"cannot reach the Kafka broker at {settings.bootstrap_servers} ({exc}); "
                       "start one with `cidwatch broker start` or set CIDWATCH_BROKER") from exc
    try:
        yield admin
    finally:
        admin.close()


def create_topics(settings: Settings, partitions: int = 8, replication: int = 1,
                  extra: tuple[str, ...] = ()) -> CreateResult:
    """Create whichever topics are missing (plus `extra` short names, e.g. raw.asterisk); existing ones
    are reported, not changed."""
    if partitions < 1 or replication < 1:
        raise TopicError("partitions and replication must be at least 1")
    names = {**topic_names(settings), **{name: settings.topic(name) for name in extra}}
    result = CreateResult()
    with admin_client(settings) as admin:
        present = set(admin.list_topics())
        wanted = {full: topic_spec(short, partitions, replication)
                  for short, full in names.items() if full not in present}
        result.existing = [full for full in names.values() if full in present]
        if wanted:
            response = admin.create_topics(wanted, raise_errors=False, wait_for_metadata=True)
            _sort_response(response, result)
    return result


def create_changelogs(settings: Settings, names: list[str], partitions: int, replication: int = 1) -> None:
    """Create a worker's table changelog topics (compacted) before it starts.

    Why: Faust creates them itself at start-up and joins its consumer group a moment later; on a busy
    machine the broker's metadata does not list the new topics yet, the group leader ignores them
    ("Ignoring missing topic"), and every write to such a table then fails with PartitionsMismatch
    (changelog "has 0 partitions"). Topics that exist already are left alone.
    """
    with admin_client(settings) as admin:
        present = set(admin.list_topics())
        specs = {name: {"num_partitions": partitions, "replication_factor": replication,
                        "configs": {"cleanup.policy": "compact"}} for name in names if name not in present}
        if specs:
            response = admin.create_topics(specs, raise_errors=False, wait_for_metadata=True)
            _sort_response(response, CreateResult())


def partition_counts(settings: Settings, names: list[str]) -> dict[str, int]:
    """Partitions of each named topic (0 when it does not exist)."""
    with admin_client(settings) as admin:
        described = admin.describe_topics(names)
    return {topic["name"]: len(topic.get("partitions") or []) for topic in described}


def _sort_response(response: dict[str, Any], result: CreateResult) -> None:
    failures = []
    for topic in response["topics"]:
        code = topic.get("error_code", 0)
        if code == 0:
            result.created.append(topic["name"])
        elif code == ALREADY_EXISTS_ERROR_CODE:
            result.existing.append(topic["name"])
        else:
            failures.append(f"{topic['name']}: error {code} {topic.get('error_message') or ''}".strip())
    if failures:
        raise TopicError("could not create topics: " + "; ".join(failures))
