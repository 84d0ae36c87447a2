"""When the threshold levels in force on a worker's partitions clear if no call comes, for event time
to act on.

A sliding-window level clears once its measure has been back past `clear_at` for `clear_after`
(rules/threshold.py `clear_plan`); a caller ID that stops calling has no call of its own to say so.
Replay clears it before the first record at or after that instant, whoever's it is. The worker does the
same per partition: before judging a record, the subjects of its partition whose clear is due by the
record's time are cleared in the same batch (streams/app.py `_event_time`), so the stream decides what
replay decides, at the same instant, with no clock in it. Only when a partition has nothing to read and
judged nothing for a while (`WorkerConfig.idle_seconds`) does the wall clock stand in for its event time,
as replay's end of input does with its clock (a quiet partition of a busy worker too).

This index holds one entry per subject (its earliest clear), per partition; a clear planned later than
the one noted is found when the earlier entry comes due, and noted again then.
"""

from __future__ import annotations

import heapq


class ClearIndex:
    """Per partition, (instant, subject) of the earliest clear each subject has planned."""

    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[float, str]]] = {}
        self._noted: dict[str, float] = {}

    def note(self, partition: int, subject: str, at: float) -> None:
        """A subject's earliest clear is at `at` (epoch seconds)."""
        noted = self._noted.get(subject)
        if noted is not None and noted <= at:
            return
        self._noted[subject] = at
        heapq.heappush(self._heaps.setdefault(partition, []), (at, subject))

    def due(self, partition: int, now: float) -> list[str]:
        """The subjects of `partition` whose clear is due by `now`, earliest first; taken off the index."""
        heap = self._heaps.get(partition)
        subjects: list[str] = []
        while heap and heap[0][0] <= now:
            at, subject = heapq.heappop(heap)
            if self._noted.get(subject) == at:
                del self._noted[subject]
                subjects.append(subject)
        return subjects

    def partitions(self) -> list[int]:
        """The partitions with a clear planned."""
        return [partition for partition, heap in self._heaps.items() if heap]

    def reset(self) -> None:
        self._heaps.clear()
        self._noted.clear()
