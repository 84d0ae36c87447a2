"""The worker's settings: one frozen object, every field a CLI flag with an environment fallback.

Every default is written here once; cidwatch/worker_cmd.py reads them from this class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from streams.settings import DEFAULT_PREFIX, Settings

# "memory" is Faust's memory store with changelog offsets kept across rebalances (streams/store.py).
STORES = {"memory": "cidwatchmemory://", "rocksdb": "rocksdb://"}


@dataclass(frozen=True)
class WorkerConfig:
    settings: Settings = field(default_factory=Settings)
    inventory: Path | None = None
    rules: Path | None = None
    workdir: Path = Path(".cache/worker")
    web_port: int = 6066
    web_host: str = "127.0.0.1"
    store: str = "memory"  # the table is rebuilt from its changelog on assignment: never ahead of the broker
    partitions: int = 8
    default_region: str | None = None
    max_record_bytes: int = 256 * 1024
    dedup_hours: float = 48.0
    hash_key: str = field(default="", repr=False)  # keys destination hashes in state (a secret: not in repr)
    tick_seconds: float = 1.0
    input_formats: tuple[str, ...] = ()
    profile: Path | None = None
    cli_metrics_limit: int = 500
    tenant_metrics_limit: int = 200  # tenants with their own label values; later ones are "other"
    alertmanager_url: str | None = None
    alert_repost_seconds: float = 60.0
    runbook_base_url: str = ""
    loglevel: str = "warning"
    # Group membership. A dead worker's partitions move after `session_timeout`: 6 s is the broker's
    # smallest allowed (group.min.session.timeout.ms), heartbeats every 2 s leave room for two lost
    # ones. `instance_id` turns on static membership: a worker restarted under the same id takes its
    # partitions back at once, without a rebalance (but a graceful stop then does not leave the group:
    # its partitions wait `session_timeout` for it, see README).
    instance_id: str | None = None
    session_timeout: float = 6.0
    heartbeat_interval: float = 2.0
    commit_interval: float = 1.0
    batch_size: int = 2000  # records judged per batch (one state write per subject per batch)
    batch_wait: float = 0.02  # seconds a batch waits to fill
    send_timeout: float = 30.0  # seconds a batch waits for the broker's acknowledgements before retrying
    stall_seconds: float = 30.0  # records waiting and nothing judged this long: cidwatch_stalled = 1
    # A partition with nothing waiting that judged nothing this long: the clock stands in for its event time, to
    # clear the threshold levels of caller IDs that stopped calling (streams/clears.py).
    idle_seconds: float = 10.0
    faust_metrics: bool = False  # Faust's own Prometheus sensor, at /faust-metrics (costs CPU per event)

    @property
    def app_id(self) -> str:
        """`cidwatch`, namespaced by a non-default topic prefix so deployments never share state."""
        prefix = self.settings.topic_prefix
        return "cidwatch" if prefix == DEFAULT_PREFIX else f"{prefix}cidwatch"

    @property
    def store_url(self) -> str:
        return STORES[self.store]
