"""Plain stand-ins for Faust's messages and events, with the fields the worker, its offsets and its
store read; for unit tests without a broker (the broker tests use the real ones)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faust.types import TP


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    timestamp: float = 0.0
    value: bytes | None = b"{}"  # what the broker holds (None: a tombstone)

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


@dataclass
class Event:
    message: Message
    value: Any = None  # the deserialised value
    key: Any = None
