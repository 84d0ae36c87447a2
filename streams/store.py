"""The worker's in-memory table store: Faust's, plus the changelog offset each partition has reached.

Faust's memory store reports no offsets, so after every rebalance a worker read each partition's
changelog from the start again, the partitions it kept as well as those it was given: a survivor
taking over half the partitions re-read all of them before it judged again. This store remembers,
per changelog partition, the last offset applied (from recovery) or written (the worker's own
changelog sends, acknowledged): recovery reads a kept partition from there, that is, not at all.
A partition revoked loses its offset and its keys, so if it comes back it is read from the start.
A process that dies loses everything, as before: a restarted worker reads every changelog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from faust.stores import memory
from faust.streams import current_event
from faust.types import TP, EventT


class Store(memory.Store):
    def __post_init__(self) -> None:
        super().__post_init__()
        self._offsets: dict[TP, int] = {}

    def persisted_offset(self, tp: TP) -> int | None:
        return self._offsets.get(tp)

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        if offset > self._offsets.get(tp, -1):
            self._offsets[tp] = offset

    def __setitem__(self, key: Any, value: Any) -> None:
        """A write of the worker's own (its changelog record is sent by the caller), tracked by the
        partition of Faust's current event, as RocksDB picks its database (streams/app.py's
        `in_partition_of`), so that the key leaves with its partition like a recovered one."""
        self.data[key] = value
        event = current_event()
        if event is not None:
            self._key_partition[key] = event.message.partition

    def put(self, key: Any, value: Any, partition: int) -> None:
        """`self[key] = value` for a key of `partition`, without making an event of it current first
        (`in_partition_of`: a context variable set and reset for each subject of every batch)."""
        self.data[key] = value
        self._key_partition[key] = partition

    def __delitem__(self, key: Any) -> None:
        """A key the worker tombstones (an expired keyed state): it leaves its partition's keys too, or
        those would grow with every consumer state ever expired."""
        del self.data[key]
        self._key_partition.pop(key, None)

    def apply_changelog_batch(self, batch: Iterable[EventT], to_key: Callable[[Any], Any],
                              to_value: Callable[[Any], Any]) -> None:
        events = list(batch)
        super().apply_changelog_batch(events, to_key, to_value)
        for event in events:
            self.set_persisted_offset(event.message.tp, event.message.offset)

    async def on_rebalance(self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP],
                           generation_id: int = 0) -> None:
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        for tp in revoked:
            self._offsets.pop(tp, None)

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        await super().on_recovery_completed(active_tps, standby_tps)  # drops the keys of other partitions
        for tp in set(self._offsets) - set(active_tps):
            del self._offsets[tp]


def register() -> None:
    """Make `cidwatchmemory://` name this store for Faust (streams/config.py's `--store memory`)."""
    from faust.stores import STORES

    STORES.aliases.setdefault("cidwatchmemory", f"{__name__}:Store")
