"""The inventory on Kafka: `cidwatch inventory push` publishes it, every worker follows it.

The `inventory` topic is compacted with one key: its last record is the inventory in force, so a
worker that starts reads it to the end and knows what numbers the sender may present. A null value
withdraws the inventory (the inventory clauses are then skipped).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from rules.inventory import Inventory, InventoryError, inventory_from_rows, load_inventory
from streams.connection import aiokafka_options, kafka_consumer, kafka_producer, unavailable
from streams.settings import Settings
from streams.topics import require_topics

log = logging.getLogger("cidwatch.inventory")
KEY = b"inventory"


def encode(inventory: Inventory, pushed_at: datetime) -> bytes:
    return json.dumps({"numbers": inventory.to_dicts(), "campaigns": dict(inventory.campaigns),
                       "pushed_at": pushed_at.isoformat()}).encode()


def decode(value: bytes | None, origin: str) -> Inventory | None:
    if value is None:
        return None
    document = json.loads(value)
    return inventory_from_rows(document.get("numbers") or [], origin, campaigns=document.get("campaigns"))


class InventoryFollower:
    """The inventory a worker uses: its --inventory file, replaced by the latest pushed one."""

    def __init__(self, settings: Settings, path: Path | None,
                 on_change: Callable[[datetime], Awaitable[None]]) -> None:
        self.settings = settings
        self.topic = settings.topic("inventory")
        self.current: Inventory | None = load_inventory(path) if path else None
        self.on_change = on_change
        self._end: dict[int, int] = {}

    def load(self) -> None:
        """Read the topic to its end (synchronously, before any CDR is judged)."""
        from kafka import TopicPartition

        consumer = kafka_consumer(self.settings, "cidwatch-inventory", enable_auto_commit=False,
                                  consumer_timeout_ms=2000)
        try:
            partitions = consumer.partitions_for_topic(self.topic) or set()
            assigned = [TopicPartition(self.topic, p) for p in partitions]
            if not assigned:
                log.warning("topic %s does not exist: inventory from file only", self.topic)
                return
            consumer.assign(assigned)
            consumer.seek_to_beginning(*assigned)
            ends = consumer.end_offsets(assigned)
            while any(consumer.position(tp) < ends[tp] for tp in assigned):
                for records in consumer.poll(timeout_ms=1000).values():
                    for record in records:
                        self._apply(record.value, record.offset)
            self._end = {tp.partition: ends[tp] for tp in assigned}
        finally:
            consumer.close()

    def _apply(self, value: bytes | None, offset: int) -> bool:
        try:
            self.current = decode(value, f"{self.topic}@{offset}")
        except (InventoryError, ValueError) as exc:
            log.error("ignoring unusable inventory at %s@%s: %s", self.topic, offset, exc)
            return False
        log.warning("inventory now %s", "withdrawn" if self.current is None else f"{len(self.current)} numbers")
        return True

    async def follow(self) -> None:
        """Apply pushes made after `load`, for as long as the worker runs."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(**aiokafka_options(self.settings), enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = [TopicPartition(self.topic, p) for p in self._end]
            if not partitions:
                return
            consumer.assign(partitions)
            for tp in partitions:
                consumer.seek(tp, self._end[tp.partition])
            async for record in consumer:
                if self._apply(record.value, record.offset):
                    await self.on_change(datetime.now(UTC))
        except asyncio.CancelledError:
            raise
        finally:
            await consumer.stop()


def push(settings: Settings, inventory: Inventory | None) -> None:
    """Publish the inventory (None: withdraw it) and wait for every in-sync replica to have it."""
    from kafka.errors import KafkaError

    topic = settings.topic("inventory")
    require_topics(settings, [topic])
    producer = kafka_producer(settings, "cidwatch-inventory")
    try:
        value = None if inventory is None else encode(inventory, datetime.now(UTC))
        producer.send(topic, key=KEY, value=value).get(timeout=settings.timeout_s)
    except KafkaError as exc:
        raise unavailable(exc, settings) from exc
    finally:
        producer.close()
