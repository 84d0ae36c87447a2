"""A real Kafka broker for tests: one KRaft node on a free loopback port, in a temporary directory.

Why a real broker: the stream workers' behaviour (keys, partitions, compaction, dead letters) is
what the tests are about, and in-memory fakes would not show it. `cidwatch.dev.broker` does the work,
so the tests also exercise the same start/stop code that developers use.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cidwatch.dev import broker


def start_test_broker(tmp_dir: Path, heap: str = "512m") -> tuple[str, Callable[[], None]]:
    """Start a broker with its data under `tmp_dir`; return its bootstrap address and a stopper."""
    data_dir = Path(tmp_dir) / "broker"
    info = broker.start(port=broker.free_port(), data_dir=data_dir, heap=heap)

    def stop() -> None:
        broker.stop(data_dir)

    return info.bootstrap, stop
