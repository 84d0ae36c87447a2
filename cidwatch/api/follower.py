"""The check API's reader of the compacted `blocks` and `inventory` topics (aiokafka).

Why a plain assigned consumer and no group: every API process must hold every caller ID's blocks,
whatever partition owns it, and must never steal partitions or commit offsets. It reads both
topics from their beginning; the API is ready once its positions reach the end offsets taken when
it started reading (`Readiness`), and until then it refuses to answer rather than say "allowed" on
a partial read. After that every new record is applied as it is fetched (a long poll that returns as
soon as a record arrives, so a block is visible well within a second of reaching the broker).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from cidwatch.api.book import Book
from rules.errors import CidwatchError
from streams.connection import aiokafka_options
from streams.settings import Settings
from streams.topics import partition_counts

log = logging.getLogger("cidwatch.api")
RETRY_S = 2.0  # between attempts while the broker or the topics are missing
FETCH_WAIT_MS = 100  # a fetch's long poll: an idle follower asks again this often


@dataclass
class Readiness:
    """Whether the book holds everything the topics held when the API started reading them."""

    ready: bool = False
    reason: str = "starting: the blocks and inventory topics are not read yet"
    records: int = 0  # records applied so far
    ends: dict[str, int] = field(default_factory=dict)  # "topic/partition" -> end offset to reach


class Follower:
    """Keeps a `Book` in step with the topics, for as long as the API runs."""

    def __init__(self, settings: Settings, book: Book) -> None:
        self.settings = settings
        self.book = book
        self.blocks_topic = settings.topic("blocks")
        self.inventory_topic = settings.topic("inventory")
        self.readiness = Readiness()
        self._next: dict[tuple[str, int], int] = {}  # (topic, partition) -> next offset to apply

    async def run(self) -> None:
        """Follow the topics; reconnect after a broker error (the book keeps what it read)."""
        from aiokafka.errors import KafkaError

        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except (KafkaError, CidwatchError) as exc:  # the broker is down, refuses us, or lacks a topic
                if not self.readiness.ready:
                    self.readiness.reason = f"cannot read the topics at {self.settings.bootstrap_servers}: {exc}"
                log.warning("reading the topics failed (%s); retrying in %.0f s", exc, RETRY_S)
                await asyncio.sleep(RETRY_S)

    async def _follow(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(**aiokafka_options(self.settings), enable_auto_commit=False,
                                    group_id=None, fetch_max_wait_ms=FETCH_WAIT_MS)
        await consumer.start()
        try:
            topics = [self.blocks_topic, self.inventory_topic]
            while True:
                counts = await asyncio.to_thread(partition_counts, self.settings, topics)
                missing = [topic for topic in topics if not counts.get(topic)]
                if not missing:
                    break
                self.readiness.reason = f"waiting for topic(s) {', '.join(missing)} (cidwatch topics create)"
                await asyncio.sleep(RETRY_S)
            partitions = [TopicPartition(topic, p) for topic in topics for p in range(counts[topic])]
            consumer.assign(partitions)
            # After a reconnection, go on from where the book is: reading a key's older records again
            # would show, for a moment, states that are over.
            fresh = [tp for tp in partitions if (tp.topic, tp.partition) not in self._next]
            if fresh:
                await consumer.seek_to_beginning(*fresh)
            for tp in partitions:
                if (tp.topic, tp.partition) in self._next:
                    consumer.seek(tp, self._next[(tp.topic, tp.partition)])
            if not self.readiness.ready:
                ends = await consumer.end_offsets(partitions)
                self.readiness.ends = {f"{tp.topic}/{tp.partition}": offset for tp, offset in ends.items()}
                self.readiness.reason = "reading the blocks and inventory topics to their end"
                await self._mark_if_caught_up(consumer, ends)
            while True:
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, records in batches.items():
                    for record in records:
                        if tp.topic == self.blocks_topic:
                            self.book.apply_block(record.key, record.value)
                        else:
                            self.book.apply_inventory(record.value, f"{tp.topic}@{record.offset}")
                    if records:
                        self._next[(tp.topic, tp.partition)] = records[-1].offset + 1
                        self.readiness.records += len(records)
                if not self.readiness.ready:
                    await self._mark_if_caught_up(consumer, ends)
        finally:
            await consumer.stop()

    async def _mark_if_caught_up(self, consumer: Any, ends: dict[Any, int]) -> None:
        """Ready once every partition's position reached its end offset of the start (positions, not
        record offsets: compaction and transaction markers leave gaps)."""
        for tp, end in ends.items():
            if await consumer.position(tp) < end:
                return
        self.readiness.ready = True
        self.readiness.reason = "ready"
        log.warning("ready: %d block(s) in force, inventory %s", len(self.book.table.blocks),
                    "absent" if self.book.inventory is None else f"of {len(self.book.inventory)} numbers")
