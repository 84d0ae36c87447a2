"""Where the engine keeps what it remembers between records.

The engine never holds per-caller state itself: it reads and writes named tables through this
interface. `replay` passes plain dicts; the stream passes Faust changelog-backed tables, keyed so that
every key of one record starts with that record's subject (its partition key).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

TABLES = ("seen", "counts", "fired", "blocks", "timed", "episodes", "risk")


class StateStore(Protocol):
    def get(self, table: str, key: str) -> Any: ...

    def set(self, table: str, key: str, value: Any) -> None: ...

    def delete(self, table: str, key: str) -> None: ...

    def items(self, table: str) -> Iterator[tuple[str, Any]]: ...


class DictState:
    """In-memory state for `replay` and unit tests."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, Any]] = {name: {} for name in TABLES}

    def get(self, table: str, key: str) -> Any:
        return self.tables[table].get(key)

    def set(self, table: str, key: str, value: Any) -> None:
        self.tables[table][key] = value

    def delete(self, table: str, key: str) -> None:
        self.tables[table].pop(key, None)

    def items(self, table: str) -> Iterator[tuple[str, Any]]:
        return iter(list(self.tables[table].items()))
