"""The worker's settings: one frozen object, every field a CLI flag with an environment fallback."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from streams.settings import DEFAULT_PREFIX, Settings

STORES = {"memory": "memory://", "rocksdb": "rocksdb://"}


@dataclass(frozen=True)
class WorkerConfig:
    settings: Settings = field(default_factory=Settings)
    inventory: Path | None = None
    rules: Path | None = None
    workdir: Path = Path(".cache/worker")
    web_port: int = 6066
    web_host: str = "127.0.0.1"
    store: str = "rocksdb"
    partitions: int = 8
    default_region: str | None = None
    max_record_bytes: int = 256 * 1024
    dedup_hours: float = 48.0
    tick_seconds: float = 1.0
    input_formats: tuple[str, ...] = ()
    profile: Path | None = None
    cli_metrics_limit: int = 500
    alertmanager_url: str | None = None
    alert_repost_seconds: float = 60.0
    runbook_base_url: str = ""
    loglevel: str = "warning"

    @property
    def app_id(self) -> str:
        """`cidwatch`, namespaced by a non-default topic prefix so deployments never share state."""
        prefix = self.settings.topic_prefix
        return "cidwatch" if prefix == DEFAULT_PREFIX else f"{prefix}cidwatch"

    @property
    def store_url(self) -> str:
        return STORES[self.store]
