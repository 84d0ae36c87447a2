"""One batch of the judge: what it decided, forwarded and dead-lettered, and which subjects it changed.

The worker fills a `Batch` while it runs the engine over a `stream.noack_take()` batch, then makes
it durable in this order (see streams/app.py): the decisions, forwards and dead letters first, each
acknowledged by the broker; then the state of every subject the batch changed, one changelog record
per subject, acknowledged too; only then are the batch's offsets committed (streams/offsets.py).
A crash anywhere in between makes the whole batch be read again: its decisions are
re-sent with the same ids (the state that would have said "already decided" was never written), and
records whose state was written are recognised as duplicates by that state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rules.decision import Decision
from rules.state import SubjectState


@dataclass
class Outgoing:
    """A message to send: topic short name, key and value."""

    topic: str
    key: bytes | None
    value: bytes


@dataclass
class Batch:
    decisions: list[Decision] = field(default_factory=list)
    outgoing: list[Outgoing] = field(default_factory=list)  # forwards to cdr.by-subject, dead letters
    touched: dict[str, SubjectState] = field(default_factory=dict)  # subjects judged in this batch
    events: dict[str, Any] = field(default_factory=dict)  # subject -> an event of its partition
    steps: dict[str, list[Callable[[SubjectState], Any]]] = field(default_factory=dict)  # what each subject saw
    calls: list[tuple[Any, ...]] = field(default_factory=list)  # metric rows of judged calls
    dead: Counter[str] = field(default_factory=Counter)  # dead letters by reason class
    duplicates: int = 0
    processed: Counter[str] = field(default_factory=Counter)  # records read by source

    def touch(self, subject: str, state: SubjectState, event: Any) -> None:
        """Note a subject judged (its state is written at the end, even for a duplicate: a state a
        crash left only in a local store reaches the changelog that way) and an event of its partition."""
        self.events[subject] = event
        if subject not in self.touched:
            self.touched[subject] = state
