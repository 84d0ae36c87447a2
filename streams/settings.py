"""Settings shared by every command: each has an environment variable and a documented default."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_BROKER = "kafka://127.0.0.1:9092"
DEFAULT_PREFIX = "cidwatch."
# The six public topics, then the workers' repartition topic (CDRs keyed by their subject). The
# latter is created here, not by Faust on first start: a consumer group that forms before a topic
# exists never gets its partitions assigned.
TOPIC_NAMES = ("cdr", "decisions", "alerts", "blocks", "dlq", "inventory", "cdr.by-subject")
COMPACTED_TOPICS = frozenset({"blocks", "inventory"})


@dataclass(frozen=True)
class Settings:
    broker: str = DEFAULT_BROKER
    topic_prefix: str = DEFAULT_PREFIX

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            broker=os.environ.get("CIDWATCH_BROKER", DEFAULT_BROKER),
            topic_prefix=os.environ.get("CIDWATCH_TOPIC_PREFIX", DEFAULT_PREFIX),
        )

    @property
    def bootstrap_servers(self) -> str:
        """The broker URL without Faust's `kafka://` scheme, for kafka-python and aiokafka."""
        return ",".join(part.removeprefix("kafka://") for part in self.broker.split(";"))

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"
