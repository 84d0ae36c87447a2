"""Which records of each owned input partition are judged, and committing exactly those.

Why the worker does not let Faust acknowledge and commit: in faust-streaming 0.15 a rebalance can
leave records fetched before a seek to reach the stream after it. Its drain loop then takes the jump
for a gap, marks the skipped offsets as done although no stream saw them, and drops the re-fetched
records as already read: those records are never judged, and their offsets get committed. When the
order is the other way round, the same offsets sit twice in its list of acknowledged offsets, and
the commit creeps one offset per interval behind a worker that has read everything. Both were seen
when a worker joined a busy one and when a survivor took a dead worker's partitions over.

So the input topics are declared without acks (Faust neither tracks nor commits them), Faust's
read-offset filter is switched off (`ReadOffsets`: it is what drops the re-fetched records), and this
module keeps, per owned input partition, the next offset to judge. It starts at the group's
committed offset, read from the broker once the assignment's recovery is over. An event at that
offset is judged; an earlier one was judged already (a re-delivery) and is skipped; a later one means
records were lost on the way, and the partition is sought back to the offset it needs. A partition
with records waiting and none delivered for a while is sought back too (the re-fetched records may
all have been dropped). After a batch is durable, the next offsets it reached are committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from faust.types import TP, EventT

log = logging.getLogger("cidwatch.worker")


class ReadOffsets(dict):
    """Stands in for Faust's `Consumer._read_offset`: written as Faust likes, read back as "none".

    Faust's drain loop drops a fetched record whose offset is below the last one it read, and records
    a gap when it jumps; both go wrong when records fetched before a seek arrive after it. With every
    read offset unknown it delivers every record; `InputOffsets.admit` skips the re-deliveries."""

    def __getitem__(self, tp: Any) -> None:
        return None


@dataclass
class Position:
    """One owned input partition: the next offset to judge, what the group has committed, when a
    record of it was last judged (or it was last sought), and when it was last sought."""

    next: int
    committed: int
    seen: float
    sought: float = 0.0


class InputOffsets:
    """Per-partition positions of the worker's inputs, over Faust's consumer (`app.consumer`)."""

    def __init__(self, app: Any, timeout: float, quiet_seconds: float = 5.0) -> None:
        self.app = app
        self.timeout = timeout  # seconds a commit may take before it counts as failed
        self.quiet_seconds = quiet_seconds
        self.positions: dict[TP, Position] = {}
        self._pending: dict[TP, int] = {}  # durable but not yet committed (a commit failed)
        self._lock = asyncio.Lock()
        self.epoch = 0  # counts resets: a load that spans one is discarded

    def reset(self) -> None:
        """Partitions are being revoked: every position is read again after the next assignment."""
        self.positions.clear()
        self._pending.clear()
        self.epoch += 1

    async def load(self, tps: Iterable[TP]) -> None:
        """Start the partitions not yet known at the group's committed offsets (the log start where
        nothing is committed, as `auto_offset_reset=earliest` reads)."""
        wanted = [tp for tp in tps if tp not in self.positions]
        if not wanted:
            return
        thread = self.app.consumer._thread

        async def read() -> dict[TP, int]:
            consumer = thread._ensure_consumer()
            found: dict[TP, int] = {}
            for tp in wanted:  # a few milliseconds each
                committed = await consumer.committed(TopicPartition(tp.topic, tp.partition))
                if committed is not None:
                    found[tp] = committed
            fresh = [TopicPartition(tp.topic, tp.partition) for tp in wanted if tp not in found]
            if fresh:  # about half a second a call, whatever the number of partitions: one call
                for atp, offset in (await consumer.beginning_offsets(fresh)).items():
                    found[TP(atp.topic, atp.partition)] = offset
            return found

        epoch = self.epoch
        found = await thread.call_thread(read)
        if epoch != self.epoch:
            return
        now = time.monotonic()
        for tp, offset in found.items():
            self.positions.setdefault(tp, Position(offset, offset, now))

    def admit(self, events: Sequence[EventT]) -> tuple[list[EventT], dict[TP, int], set[TP]]:
        """The events to judge, in order; the next offset each partition reaches once they are
        durable; and the partitions found ahead of their next offset (records lost on the way)."""
        now = time.monotonic()
        judged: list[EventT] = []
        reached: dict[TP, int] = {}
        ahead: set[TP] = set()
        for event in events:
            message = event.message
            tp = message.tp
            position = self.positions.get(tp)
            if position is None:  # not (or no longer) this worker's
                continue
            if message.offset == position.next:
                position.seen = now
                position.next += 1
                reached[tp] = position.next
                ahead.discard(tp)
                judged.append(event)
            elif message.offset > position.next:
                ahead.add(tp)
        return judged, reached, ahead

    async def rewind(self, tps: Iterable[TP], why: str, every: float = 1.0, level: int = logging.WARNING) -> None:
        """Seek partitions back to their next offset, each at most once per `every` seconds (records
        fetched before a seek keep arriving for a moment after it, and each would ask again).

        In the consumer's own thread: aiokafka's fetcher is not thread-safe, and Faust's
        `Consumer.seek` calls it from the app's thread (a fetch in progress then fails)."""
        now = time.monotonic()
        targets = {tp: self.positions[tp].next for tp in tps
                   if tp in self.positions and now - self.positions[tp].sought >= every}
        if not targets:
            return
        thread = self.app.consumer._thread

        async def seek() -> None:
            consumer = thread._ensure_consumer()
            for tp, offset in targets.items():
                consumer.seek(TopicPartition(tp.topic, tp.partition), offset)

        await thread.call_thread(seek)
        now = time.monotonic()
        for tp, offset in targets.items():
            log.log(level, "%s[%d]: %s; reading again from offset %d", tp.topic, tp.partition, why, offset)
            self.positions[tp].seen = self.positions[tp].sought = now

    async def commit(self, reached: dict[TP, int]) -> bool:
        """Commit what durable batches reached (with what an earlier failed commit left). A failure is
        logged, not raised: those records are judged again (same decision ids) if the partition moves
        before a later commit covers them."""
        async with self._lock:
            for tp, offset in reached.items():
                if tp in self.positions:
                    self._pending[tp] = max(offset, self._pending.get(tp, 0))
            offsets = dict(self._pending)
            if not offsets:
                return True
            thread = self.app.consumer._thread

            async def send() -> None:
                consumer = thread._ensure_consumer()
                await consumer.commit({TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(offset, "")
                                       for tp, offset in offsets.items()})

            try:
                await asyncio.wait_for(thread.call_thread(send), self.timeout)
            except (TimeoutError, KafkaError) as exc:
                log.warning("commit of %d partitions failed (%r); their records may be judged again", len(offsets),
                            exc)
                return False
            for tp, offset in offsets.items():
                if self._pending.get(tp) == offset:
                    del self._pending[tp]
                position = self.positions.get(tp)
                if position is not None:
                    position.committed = max(position.committed, offset)
            return True

    def quiet(self, highwater: Any) -> list[TP]:
        """Partitions with records waiting past their next offset and none judged for `quiet_seconds`
        (nor sought): the last records of a partition, dropped by Faust, do not come on their own (a
        later record would show the gap). Longer than a full stream buffer takes to drain."""
        now = time.monotonic()
        stuck = []
        for tp, position in self.positions.items():
            try:
                end = highwater(tp)
            except (KeyError, AssertionError, AttributeError):
                continue
            if end is not None and end > position.next and now - position.seen > self.quiet_seconds:
                stuck.append(tp)
        return stuck
