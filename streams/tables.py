"""The engine's StateStore over Faust changelog-backed tables, with writes held until decisions are out.

Writes are buffered and applied after the record's decisions have been handed to the producer: a
crash in between makes the record be processed again and its decisions re-sent with the same ids
(allowed), never a state change whose decision was lost. Every write is a reassignment, so the
changelog always sees it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

_DELETED = object()


class TableState:
    def __init__(self, tables: Mapping[str, Any]) -> None:
        self.tables = tables
        self.pending: dict[tuple[str, str], Any] = {}

    def get(self, table: str, key: str) -> Any:
        value = self.pending.get((table, key))
        if value is _DELETED:
            return None
        if value is not None:
            return value
        return self.tables[table].get(key)

    def set(self, table: str, key: str, value: Any) -> None:
        self.pending[(table, key)] = value

    def delete(self, table: str, key: str) -> None:
        self.pending[(table, key)] = _DELETED

    def items(self, table: str) -> Iterator[tuple[str, Any]]:
        merged = dict(self.tables[table].items())
        for (name, key), value in self.pending.items():
            if name != table:
                continue
            if value is _DELETED:
                merged.pop(key, None)
            else:
                merged[key] = value
        return iter(list(merged.items()))

    def flush(self) -> None:
        """Apply the buffered writes (inside the record's stream iteration, so the partition is right)."""
        for (table, key), value in self.pending.items():
            store = self.tables[table]
            if value is _DELETED:
                if key in store:
                    del store[key]
            else:
                store[key] = value.to_dict() if hasattr(value, "to_dict") else value
        self.pending.clear()

    def discard(self) -> None:
        self.pending.clear()
