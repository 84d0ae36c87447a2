"""The Faust app: CDRs in, decisions out, with the same `Engine` that `replay` runs.

Agents:
- `judge` reads the `cdr` topic and the internal `cdr.by-subject` topic in batches
  (`stream.take_events`). A CDR is validated (what fails goes to the DLQ with its reason); when it
  already sits on the partition of its subject (the normalised CLI, or for inbound calls our number
  called) it is judged there, otherwise it is forwarded to `cdr.by-subject`, keyed by its subject.
  `cidwatch produce` and `simulate` key records by their subject with Kafka's default partitioner,
  so they are judged without that second trip. Both topics have the same partition count, and Faust
  assigns the same partition numbers of both (and of the state table) to the same worker.
- `ingest-NAME` reads `raw.NAME` topics, converts records with the adapter and forwards them.

State: one `SubjectState` per subject in the table `subjects` (its changelog is compacted), held in
memory while the worker owns the partition and written once per batch per subject that changed.

Durability, per batch (streams/batch.py): decisions, forwards and dead letters are sent and their
delivery awaited (`acks=all`); then the changed states are written and their changelog records
awaited; only then are the batch's offsets committed, by the worker itself (streams/offsets.py says
why not by Faust). A worker
killed at any instant re-reads its uncommitted records: decisions come again with the same ids,
nothing decided is lost. At-least-once: faust-streaming's exactly-once has open bugs around kills
and rebalances. The table lives in memory by default (`--store memory`) and is rebuilt from the
changelog when partitions are assigned. With `--store rocksdb` a kill can leave a local write ahead
of the changelog; the records of that batch come again, are duplicates of that state, and every
subject a batch saw is written again, so the changelog catches up before their offsets commit.

Timers and inventory updates never touch state directly: they send control envelopes
(streams/protocol.py) through `cdr.by-subject`, keyed by the subject, and the judge applies them in
order with that subject's records.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import heapq
import json
import logging
import socket
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import faust
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2
from faust import streams as faust_streams
from faust.types import TP, EventT

from rules.cdr import Cdr, iso_utc, parse_cdr
from rules.decision import Decision, cleared_message
from rules.engine import Engine
from rules.pack import load_packs
from rules.risk import RiskConfig
from rules.state import StateError, SubjectState, due_of
from streams import store, web
from streams.alerting import AlertPoster
from streams.batch import Batch, Outgoing
from streams.clears import ClearIndex
from streams.config import WorkerConfig
from streams.connection import faust_credentials
from streams.dlq import Rejected, cdr_from_mapping, dead_letter, internal_error, validate
from streams.inventory_topic import InventoryFollower
from streams.metrics import Metrics, destination_region
from streams.offsets import InputOffsets, ReadOffsets
from streams.parties import MERGED_SKIP, Party, PartyHold, Release
from streams.protocol import BY_SUBJECT, cdr_envelope, expire_envelope, keyed_envelope, lift_envelope
from streams.topics import TopicError, create_changelogs, create_topics, partition_counts

log = logging.getLogger("cidwatch.worker")
TABLE = "subjects"  # one SubjectState per subject
WATCH_SECONDS = 0.5  # how often owned inputs are checked for records Faust dropped (streams/offsets.py)


@contextlib.contextmanager
def in_partition_of(event: EventT) -> Iterator[None]:
    """Make `event` Faust's current event while a table key is written.

    Faust picks a table write's changelog partition (RocksDB its local database, streams/store.py the
    partition its key leaves with) from the current event. A batch spans partitions, and after
    `take_events` the current event is the batch's last, so each subject's state is written under an
    event of that subject's own partition. Faust reads the
    current event from the context variable `faust.streams._current_event` (faust-streaming 0.11 to
    0.15); the stream tests fail if that ever changes.
    """
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


def _json(value: Any) -> bytes:
    """Faust's `json` codec's bytes for a table key or value (compact JSON, UTF-8)."""
    return json.dumps(value, separators=(",", ":")).encode()


@functools.lru_cache(maxsize=32_768)
def partition_of(subject: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a key: where a subject's records and state live.
    Remembered for the busiest subjects: aiokafka's murmur2 is pure Python, and every record asks."""
    return (murmur2(subject.encode()) & 0x7FFFFFFF) % partitions


class CidwatchApp(faust.App):
    """Faust's app, with its consumer's read-offset filter off (streams/offsets.py says why)."""

    def _new_consumer(self) -> Any:
        consumer = super()._new_consumer()
        consumer._read_offset = ReadOffsets()
        return consumer


class CidwatchWorker:
    """One worker process: the Faust app, its engine, state table, topics and metrics."""

    def __init__(self, cfg: WorkerConfig) -> None:
        self.cfg = cfg
        self.engine = Engine(load_packs(cfg.rules), None, cfg.default_region,
                             dedup_seconds=int(cfg.dedup_hours * 3600), hash_key=cfg.hash_key.encode())
        # The spam-risk model's settings, to read its part of a stored state (None: the defaults).
        self._risk_config = next((rule.config for rule in self.engine.pack.rules.values()
                                  if isinstance(rule.config, RiskConfig)), None)
        self.metrics = Metrics(cli_limit=cfg.cli_metrics_limit, tenant_limit=cfg.tenant_metrics_limit)
        self.inventory = InventoryFollower(cfg.settings, cfg.inventory, self._inventory_changed)
        self.poster = AlertPoster(cfg.alertmanager_url, repo_url=cfg.runbook_base_url,
                                  repost_seconds=cfg.alert_repost_seconds,
                                  worker=f"{socket.gethostname()}:{cfg.web_port}")
        self.metrics.set_rules(self.engine.pack.rules.values())
        self.metrics.watch_poster(self.poster.stats)
        self.app = self._make_app()
        self._declare_topics()
        self.table = self.app.Table(TABLE, default=None, partitions=cfg.partitions,
                                    schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"))
        self.changelog_name = self.table.changelog_topic.get_topic_name()
        self._states: dict[str, SubjectState] = {}  # the working copy of the subjects judged since assignment
        self._due: list[tuple[float, str]] = []  # (until, subject): time-boxed blocks for the wall clock
        self._expire_sent: dict[str, float] = {}  # subject -> until already asked to expire
        self.clears = ClearIndex()  # threshold levels in force: when each clears, for event time
        self._judged_at: dict[int, float] = {}  # partition -> when (monotonic) it last judged a record
        self._assigned_at = time.monotonic()
        self._lag: dict[int, int] = {}  # partition -> its inputs' records not yet committed
        self._scanned = False  # blocks in force re-read (gauge, due index, paging) since the last assignment
        self._last_progress = time.monotonic()
        self.offsets = InputOffsets(self.app, timeout=self.cfg.send_timeout)
        self._accepting = False  # judging allowed: the assignment's recovery is over, offsets loaded
        self._joined = False  # an assignment (even of no partition) came; /readyz says which wait it is in
        self._in_flight = 0  # batches between their judging and their commit
        # Asterisk rows of one call that came in separate messages (streams/parties.py); None without
        # a raw.asterisk input. `_durable_next`: per input partition, the offset every earlier record of
        # which is durable, so a release by the wall clock can commit up to the next held row.
        self.parties: PartyHold | None = None
        self._durable_next: dict[TP, int] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._declare_agents()
        if cfg.faust_metrics:
            from faust.sensors.prometheus import setup_prometheus_sensors

            setup_prometheus_sensors(self.app, "/faust-metrics", registry=self.metrics.registry,
                                     name_prefix="cidwatch_faust")
        web.serve(self.app, self.metrics, self.readiness)

    def _make_app(self) -> faust.App:
        cfg = self.cfg
        store.register()
        return CidwatchApp(
            cfg.app_id,
            broker=cfg.settings.faust_broker,
            broker_credentials=faust_credentials(cfg.settings),
            store=cfg.store_url,
            datadir=str(cfg.workdir),
            web_port=cfg.web_port,
            web_bind=cfg.web_host,
            web_host=cfg.web_host,
            topic_partitions=cfg.partitions,
            topic_replication_factor=1,  # set in `start` to the cluster's (streams/topics.py)
            topic_allow_declare=True,
            processing_guarantee="at_least_once",
            table_standby_replicas=0,
            consumer_auto_offset_reset="earliest",
            consumer_group_instance_id=cfg.instance_id,
            broker_session_timeout=cfg.session_timeout,
            broker_heartbeat_interval=cfg.heartbeat_interval,
            broker_commit_interval=cfg.commit_interval,
            key_serializer="raw",
            value_serializer="raw",
            producer_acks=-1,
            producer_max_request_size=max(1_048_576, cfg.max_record_bytes * 2),
            # Batch produce requests: without linger every send is its own request.
            producer_linger=0.005,
            producer_max_batch_size=256 * 1024,
            consumer_max_fetch_size=max(4_194_304, cfg.max_record_bytes * 4),
            stream_buffer_maxsize=max(4096, cfg.batch_size * 4),
            **web.FAUST_VIEWS_OFF,  # /metrics, /healthz, /readyz only (streams/web.py)
        )

    def _topic(self, name: str, acks: bool = True) -> faust.TopicT:
        return self.app.topic(self.cfg.settings.topic(name), key_type=bytes, value_type=bytes,
                              key_serializer="raw", value_serializer="raw", acks=acks)

    def _declare_topics(self) -> None:
        names = self.cfg.settings.topic
        self.cdr_name, self.by_subject_name = names("cdr"), names(BY_SUBJECT)
        # Inputs without acks: the worker tracks and commits their offsets itself (streams/offsets.py).
        self.judged = self.app.topic(self.cdr_name, self.by_subject_name, key_type=bytes, value_type=bytes,
                                     key_serializer="raw", value_serializer="raw", acks=False)
        self.raw_topics = {fmt: self._topic(f"raw.{fmt}", acks=False) for fmt in self.cfg.input_formats}
        self.topics = {name: self._topic(name) for name in ("decisions", "alerts", "blocks", "dlq", BY_SUBJECT)}
        self.topic_names = {name: names(name) for name in self.topics}

    def _declare_agents(self) -> None:
        self.app.agent(self.judged, name="judge")(self._judge)
        for fmt, topic in self.raw_topics.items():
            self.app.agent(topic, name=f"ingest-{fmt}")(self._raw_ingest(fmt))
        self.app.timer(self.cfg.tick_seconds)(self._tick)
        self.app.timer(WATCH_SECONDS)(self._watch)
        self.app.task(self._follow_inventory)
        self.app.task(self._page)
        self.app.on_partitions_assigned.connect(self._on_assigned)
        self.app.on_partitions_revoked.connect(self._on_revoked)

    # -- judge -----------------------------------------------------------------------------------

    async def _judge(self, stream: faust.StreamT) -> None:
        await self._batches(stream, self._one)

    async def _batches(self, stream: faust.StreamT, handle: Any) -> None:
        """Batches of events, each made durable, then committed (streams/offsets.py says why the
        worker commits, not Faust). A batch that cannot be made durable (the broker is away) is
        retried, its decisions re-sent with the same ids.

        Between a revocation and the end of the next assignment's recovery nothing is judged: the
        records read then are read again from the commit once the partitions are settled.
        """
        async for events in stream.noack_take(self.cfg.batch_size, within=self.cfg.batch_wait):
            self._in_flight += 1
            self._idle.clear()
            try:
                batch = await self._run(events, handle)
            finally:
                self._in_flight -= 1
                if not self._in_flight:
                    self._idle.set()
            if batch is not None:
                self._publish(batch)

    async def _run(self, events: list[EventT], handle: Any) -> Batch | None:
        """Judge the events due on owned partitions, make the batch durable, commit what it reached."""
        if not await self._accept():
            return None
        judged, reached, ahead = self.offsets.admit(events)
        if ahead:
            await self.offsets.rewind(ahead, "records skipped on the way to the judge")
        if not judged:
            return None
        batch = Batch()
        for event in judged:
            handle(event, batch)
        await self._durable(batch, len(judged))
        await self.offsets.commit(self._behind_held(reached))
        return batch

    def _behind_held(self, reached: dict[TP, int]) -> dict[TP, int]:
        """What durable records reached, kept behind the oldest row each partition still holds."""
        if self.parties is None:
            return reached
        self._durable_next.update(reached)
        commits = {}
        for tp, offset in reached.items():
            floor = self.parties.floor(tp)
            commits[tp] = offset if floor is None else min(offset, floor)
        return commits

    async def _release_parties(self) -> None:
        """Forward the calls held for the wait with nothing after them (nobody answered), then commit past
        them. Counted as a batch in flight, so a revocation waits for it like for any batch."""
        if self.parties is None or not self._accepting:
            return
        due = self.parties.due()
        if not due:
            return
        self._in_flight += 1
        self._idle.clear()
        try:
            batch = Batch()
            for _, release in due:
                self._forward_release(release, batch)
            await self._durable(batch, len(due))
            await self.offsets.commit(self._behind_held({tp: self._durable_next[tp] for tp, _ in due
                                                         if tp in self._durable_next}))
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _accept(self) -> bool:
        """Judge only partitions settled since the last revocation; load their committed offsets
        the first time (so a partition that never delivers anything is watched too)."""
        if self._accepting:
            return True
        if self.app.rebalancing:
            return False
        epoch = self.offsets.epoch
        await self.offsets.load(tp for tp in self.app.consumer.assignment() if tp.topic in self._sources())
        if epoch != self.offsets.epoch or self.app.rebalancing:
            return False
        # Faust sought these partitions to the commit already, but records it fetched while it did are
        # dropped when it resumes its flow; a partition with no later record would wait for the watch.
        await self.offsets.rewind(list(self.offsets.positions), "assignment recovered", every=0.0,
                                  level=logging.INFO)
        self._accepting = True
        return True

    def _sources(self) -> set[str]:
        return {self.cdr_name, self.by_subject_name, *(t.get_topic_name() for t in self.raw_topics.values())}

    async def _durable(self, batch: Batch, records: int) -> None:
        delay = 0.5
        while True:
            try:
                await self._write(batch)
                return
            except (KafkaError, TimeoutError) as exc:
                log.warning("batch of %d records not yet durable (%r); retrying in %.1f s", records, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _one(self, event: EventT, batch: Batch) -> None:
        """Judge, forward or dead-letter one event. Nothing escapes: a record that makes the engine
        raise is dead-lettered as `internal_error`, and the worker goes on."""
        message = event.message
        try:
            if message.topic == self.by_subject_name:
                self._envelope(json.loads(event.value), (message.key or b"").decode(), event, batch)
                return
            batch.processed["cdr"] += 1
            try:
                cdr = validate(event.value, self.cfg.max_record_bytes)
            except Rejected as rejected:
                self._dead_letter(batch, event.value, rejected, message)
                return
            subject = self.engine.subject(cdr)
            if partition_of(subject, self.cfg.partitions) == message.partition:
                self._judge_cdr(cdr, subject, event, batch)
            else:
                batch.outgoing.append(Outgoing(BY_SUBJECT, subject.encode(),
                                               cdr_envelope(cdr.to_dict(), message.timestamp)))
        except Exception as exc:
            log.exception("record %s[%s]@%s failed", message.topic, message.partition, message.offset)
            self._dead_letter(batch, event.value, internal_error(exc), message)

    def _envelope(self, body: dict[str, Any], subject: str, event: EventT, batch: Batch) -> None:
        kind = body["t"]
        if kind == "cdr":
            self._judge_cdr(parse_cdr(body["cdr"]), subject, event, batch)
        elif kind == "keyed":
            cdr = parse_cdr(body["cdr"])
            self._event_time(event, cdr.started_at, batch)
            self._apply(subject, event, batch, lambda state: self.engine.process_keyed(cdr, subject, state))
        elif kind == "expire":
            self._expire_sent.pop(subject, None)
            now, clears = datetime.fromisoformat(body["now"]), bool(body.get("clears"))
            self._apply(subject, event, batch, lambda state: self.engine.expire_subject(state, now, clears))
        elif kind == "lift":
            at, key, reason = datetime.fromisoformat(body["at"]), body["key"], body["reason"]
            self._apply(subject, event, batch, lambda state: self.engine.lift(state, key, at, reason))
        elif kind == "clear":
            at, rule, by, why = datetime.fromisoformat(body["at"]), body.get("rule"), body.get("by"), body.get("reason")
            self._apply(subject, event, batch, lambda state: self._clear(state, subject, rule, at, by, why))
        else:
            log.error("unknown envelope %r on %s", kind, self.by_subject_name)

    def _clear(self, state: SubjectState, subject: str, rule: str | None, at: datetime, by: str | None = None,
               reason: str | None = None) -> list[Decision]:
        decisions = []
        for key, block in list(state.blocks.items()):
            if block["caller_id"] == subject and rule in (None, block["rule"]):
                message = cleared_message(subject, block["rule"], by, reason)
                decisions.extend(self.engine.lift(state, key, at, message))
        return decisions

    def _event_time(self, event: EventT, at: datetime, batch: Batch) -> None:
        """A record of `event`'s partition is judged at `at`: first clear the levels of that partition's
        subjects due by then (streams/clears.py), in this batch, as replay does before the record. A
        subject whose clear fails is logged and left; the record is judged all the same."""
        partition = event.message.partition
        self._judged_at[partition] = time.monotonic()
        for subject in self.clears.due(partition, at.timestamp()):
            try:
                self._apply(subject, event, batch, lambda state: self.engine.expire_subject(state, at))
            except Exception:
                log.exception("clearing subject %s at %s failed", subject, iso_utc(at))

    def _judge_cdr(self, cdr: Cdr, subject: str, event: EventT, batch: Batch) -> None:
        self._event_time(event, cdr.started_at, batch)
        outcome = self._apply(subject, event, batch, lambda state: self.engine.process(cdr, state))
        if outcome.status == "duplicate":
            batch.duplicates += 1
            return
        if outcome.status != "judged":
            return
        if outcome.follow:  # keyed rules judge the call again, on the partition of each state's key
            record = keyed_envelope(cdr.to_dict())
            batch.outgoing.extend(Outgoing(BY_SUBJECT, key.encode(), record) for key in outcome.follow)
        caller = outcome.caller.region if outcome.caller is not None else None
        destination = (outcome.destination.region if outcome.destination is not None
                       else destination_region(cdr.destination))
        batch.calls.append((cdr.direction, caller, destination, cdr.answered, cdr.tenant, cdr.duration_s,
                            cdr.sip_code, subject if outcome.day_count is not None else None, outcome.day_count,
                            outcome.daily_cap))

    def _apply(self, subject: str, event: EventT, batch: Batch, step: Callable[[SubjectState], Any]) -> Any:
        """Run one step (a record, or a control envelope) on a subject's state and keep its decisions.

        The engine changes a state in place, so a step that raises may leave it half changed: the
        subject's state is then read again from the table and the batch's earlier steps for it are run
        again (their decisions are already kept), and the caller dead-letters the record.
        """
        state = self._state(subject)
        batch.touch(subject, state, event)
        try:
            result = step(state)
        except Exception:
            self._states.pop(subject, None)
            state = self._state(subject)
            for earlier in batch.steps.get(subject, []):
                earlier(state)
            batch.touched[subject] = state
            raise
        batch.steps.setdefault(subject, []).append(step)
        batch.decisions.extend(result if isinstance(result, list) else result.decisions)
        if state.clears:
            self.clears.note(event.message.partition, subject, min(state.clears.values()))
        return result

    def _state(self, subject: str) -> SubjectState:
        state = self._states.get(subject)
        if state is None:
            stored = self.table.get(subject)
            try:
                state = (SubjectState() if stored is None
                         else SubjectState.from_dict(stored, self._risk_config, self.engine.hash_key))
            except StateError as exc:
                # A state another version wrote (or a damaged record): start this subject afresh.
                log.error("subject %s: %s; its state starts afresh", subject, exc)
                state = SubjectState()
            self._states[subject] = state
        return state

    async def _write(self, batch: Batch) -> None:
        """Make the batch durable in order: outputs acknowledged, then state; the caller then commits
        the batch's offsets.

        Every send is awaited explicitly, with a bound: the changelog records too, written here rather
        than through the table's buffered `send_soon`. Why: when partitions are revoked, Faust stops
        its tables, and the revocation then waits for the batch in flight (`_on_revoked`); a batch
        waiting on a flush of that buffer would never finish, and the worker would hang there with
        records waiting (the crawl seen when a partner died). The partitions stay this worker's until
        the revocation returns, so writing their state then is safe.
        """
        send = self.app.producer.send  # aiokafka's send: Faust's Topic.send adds per-message futures and sensors
        names = self.topic_names
        pending = []
        for decision in batch.decisions:
            pending.extend(await self._send_decision(decision))
        for item in batch.outgoing:
            pending.append(await send(names[item.topic], item.key, item.value, None, None, None))
        if pending:
            await asyncio.wait_for(asyncio.gather(*pending), self.cfg.send_timeout)
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = {}
        for subject, state in batch.touched.items():
            event = batch.events[subject]
            if state.is_empty():  # an expired keyed state (or nothing yet): a tombstone, compaction drops it
                self.table.data.pop(subject, None)
                self._states.pop(subject, None)
                by_partition.setdefault(event.message.partition, []).append((_json(subject), None))
                continue
            # The value and the bytes the table's serializers would write (JSON), so that recovery reads them.
            value, record = state.to_record()
            self._store(subject, value, event)
            by_partition.setdefault(event.message.partition, []).append((_json(subject), record))
            due = state.due(clears=False)  # the wall clock's; event time clears (`_event_time`)
            if due is not None:
                heapq.heappush(self._due, (due, subject))
        pending = []
        for partition, records in by_partition.items():
            pending.extend(await self._write_changelog(partition, records))
        if pending:
            await asyncio.wait_for(asyncio.gather(*pending), self.cfg.send_timeout)

    def _store(self, subject: str, value: dict[str, Any], event: EventT) -> None:
        """A subject's state into the local store, without Faust's own changelog send (`_write` sends it).
        The memory store is told the key's partition; another (RocksDB) reads it from the current event."""
        data = self.table.data
        if isinstance(data, store.Store):
            data.put(subject, value, event.message.partition)
        else:
            with in_partition_of(event):
                data[subject] = value

    async def _write_changelog(self, partition: int, records: list[tuple[bytes, bytes | None]]) -> list[asyncio.Future]:
        """One partition's changelog records as whole record batches: one future per batch, not one
        coroutine and one future per record (the changelog carries most of what a worker sends).

        aiokafka's batch API (`create_batch`, `send_batch`) on the producer Faust started; a record too
        large for an empty batch is sent alone, as aiokafka's `send` would.
        """
        producer = self.app.producer._ensure_producer()
        futures = []
        batch, count = producer.create_batch(), 0
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is not None:
                count += 1
                continue
            if count:
                futures.append(await self._send_changelog_batch(producer, batch, partition, count))
                batch, count = producer.create_batch(), 0
                if batch.append(key=key, value=value, timestamp=None) is not None:
                    count = 1
                    continue
            alone = await self.app.producer.send(self.changelog_name, key, value, partition, None, None)
            alone.add_done_callback(self._persisted(1))
            futures.append(alone)
        if count:
            futures.append(await self._send_changelog_batch(producer, batch, partition, count))
        return futures

    async def _send_changelog_batch(self, producer: Any, batch: Any, partition: int, count: int) -> asyncio.Future:
        future = await producer.send_batch(batch, self.changelog_name, partition=partition)
        future.add_done_callback(self._persisted(count))
        return future

    def _persisted(self, count: int) -> Callable[[asyncio.Future], None]:
        """Faust's bookkeeping of a changelog write (`Table._on_changelog_sent`): with RocksDB the store
        keeps the offset it holds data up to, here the last of the `count` records a future delivered."""

        def persisted(done: asyncio.Future) -> None:
            if not done.cancelled() and done.exception() is None:
                result = done.result()
                self.table.data.set_persisted_offset(result.topic_partition, result.offset + count - 1)

        return persisted

    async def _send_decision(self, decision: Decision) -> list[Any]:
        send, names = self.app.producer.send, self.topic_names
        payload = decision.to_json()
        key = decision.caller_id.encode()
        futures = [await send(names["decisions"], key, payload, None, None, None)]
        if decision.kind in ("alert", "resolve"):  # a resolve ends an alert: no block key to touch
            futures.append(await send(names["alerts"], key, payload, None, None, None))
        else:
            futures.append(await send(names["blocks"], decision.block_key.encode(), payload, None, None, None))
        return futures

    def _dead_letter(self, batch: Batch, value: bytes | None, rejected: Rejected, message: Any) -> None:
        record = dead_letter(value, rejected, message.topic, message.partition, message.offset, message.key)
        log.warning("dead-lettered %s[%s]@%s: %s", message.topic, message.partition, message.offset,
                    rejected.error_class)
        batch.outgoing.append(Outgoing("dlq", message.key, json.dumps(record).encode()))
        batch.dead[rejected.error_class] += 1

    def _publish(self, batch: Batch) -> None:
        """Metrics and paging, once per batch, after everything in it is durable."""
        metrics = self.metrics
        now = datetime.now(UTC)
        for decision in batch.decisions:
            as_dict = decision.to_dict()
            metrics.record_decision(as_dict)
            self.poster.submit(as_dict)
            if decision.kind != "unblock":
                metrics.observe_latency((now - decision.at).total_seconds())
            log.info("%s %s %s %s", decision.kind, decision.rule, decision.caller_id, iso_utc(decision.at))
        for subject, state in batch.touched.items():
            metrics.set_blocks(subject, state.blocks.values())
        for source, n in batch.processed.items():
            metrics.record_processed(source, n)
        for reason, n in batch.dead.items():
            metrics.record_dlq(reason, n)
        if batch.duplicates:
            metrics.record_duplicate(batch.duplicates)
        metrics.record_calls(batch.calls, self._risk_of)
        if batch.processed or batch.touched:
            self._last_progress = time.monotonic()

    def _risk_of(self, subject: str) -> Any:
        state = self._states.get(subject)
        return None if state is None or state.risk is None else (state.risk.latest_inputs(), state.risk.config)

    # -- raw formats -------------------------------------------------------------------------------

    def _raw_ingest(self, fmt: str) -> Any:
        from streams import adapters

        profile = adapters.load_profile(self.cfg.profile)
        if fmt == "asterisk":
            self.parties = PartyHold(profile.asterisk.merge_wait_seconds)

        async def ingest_raw(stream: faust.StreamT) -> None:
            await self._batches(stream, lambda event, batch: self._convert(fmt, profile, event, batch))

        return ingest_raw

    def _convert(self, fmt: str, profile: Any, event: EventT, batch: Batch) -> None:
        from streams import adapters

        message = event.message
        batch.processed[f"raw.{fmt}"] += 1
        try:
            items = adapters.convert_raw(fmt, event.value or b"", profile)
        except ValueError as exc:
            self._dead_letter(batch, event.value, Rejected("conversion", "record", str(exc)), message)
            return
        except Exception as exc:
            self._dead_letter(batch, event.value, internal_error(exc), message)
            return
        for item in items:
            if item.skip is None and item.call is not None and self.parties is not None \
                    and self.parties.seen(message.tp, item.call):
                item = replace(item, record=None, skip=MERGED_SKIP)
            if item.skip is not None:
                self.metrics.record_skip(fmt)
                log.info("%s record skipped: %s", fmt, item.skip)
                continue
            if item.reject is not None:
                self._dead_letter(batch, event.value,
                                  Rejected("conversion", "record", f"{item.location}: {item.reject}"), message)
                continue
            try:
                cdr, timestamp = cdr_from_mapping(item.record), message.timestamp
            except Rejected as rejected:
                self._dead_letter(batch, event.value, rejected, message)
                continue
            if self.parties is not None:
                for release in self.parties.before(message.tp, item.call):  # the held call is complete
                    self._forward_release(release, batch)
                if item.call is not None:
                    release = self.parties.add(message.tp, item.call,
                                               Party(cdr.to_dict(), message.offset, timestamp))
                    if release is None:
                        continue  # unanswered so far: held until a party answers or the call is complete
                    self._forward_release(release, batch)
                    continue
            self._forward(cdr, timestamp, batch)

    def _forward(self, cdr: Cdr, timestamp: float | None, batch: Batch) -> None:
        """A valid record to its subject's judge."""
        subject = self.engine.subject(cdr)
        batch.outgoing.append(Outgoing(BY_SUBJECT, subject.encode(), cdr_envelope(cdr.to_dict(), timestamp)))

    def _forward_release(self, release: Release, batch: Batch) -> None:
        """A call's parties merged (as valid as each of them, which were validated when held)."""
        self._forward(cdr_from_mapping(release.record), release.timestamp, batch)

    # -- timers and control ----------------------------------------------------------------------

    async def _tick(self) -> None:
        """Wall clock: lift what is due, refresh gauges, notice a stall. An error here is logged,
        never fatal: a crashing timer would stop the whole worker."""
        try:
            await self._tick_once()
        except Exception:
            log.exception("wall-clock tick failed; retrying at the next tick")

    async def _tick_once(self) -> None:
        if self.app.rebalancing or self.app.in_recovery:
            return
        await self._release_parties()
        if not self._scanned:
            self._scan()
        now = datetime.now(UTC)
        ts = now.timestamp()
        while self._due and self._due[0][0] <= ts:
            until, subject = heapq.heappop(self._due)
            if self._expire_sent.get(subject) == until:
                continue
            self._expire_sent[subject] = until
            await self.topics[BY_SUBJECT].send(key=subject.encode(), value=expire_envelope(now))
        lag = self._publish_lag()
        await self._idle_clears(now)
        stalled = lag > 0 and time.monotonic() - self._last_progress > self.cfg.stall_seconds
        self.metrics.set_stalled(stalled)
        if stalled:
            log.warning("stalled: %d records behind and nothing judged for %.0f s", lag,
                        time.monotonic() - self._last_progress)

    async def _watch(self) -> None:
        """Open judging once an assignment is recovered; retry a failed commit; seek back a partition
        whose records Faust dropped (streams/offsets.py). Never fatal, like the tick."""
        try:
            if not self._accepting:
                await self._accept()
                return
            await self.offsets.commit({})
            stuck = self.offsets.quiet(self.app.consumer.highwater)
            if stuck:
                await self.offsets.rewind(stuck, "records waiting and none delivered")
        except Exception:
            log.exception("input offsets check failed; retrying")

    def _scan(self) -> None:
        """After an assignment's recovery: the blocks in force on this worker's partitions set the
        gauges and table, the wall clock's due index and Alertmanager's view (a block this process
        never posted would otherwise lapse at the end time posted before the restart)."""
        self._due = []
        self.clears.reset()
        self.metrics.clear_blocks()
        for subject, stored in list(self.table.items()):
            if not stored:
                continue
            blocks = stored.get("blocks", {}).values()
            self.metrics.set_blocks(subject, blocks)
            for block in blocks:
                self.poster.submit(block)
            clears = (stored.get("clears") or {}).values()
            if clears:
                self.clears.note(partition_of(subject, self.cfg.partitions), subject, min(clears))
            due = due_of((stored.get("timed") or {}).values(), stored.get("expires"), clears, with_clears=False)
            if due is not None:
                self._due.append((due, subject))
        heapq.heapify(self._due)
        self._scanned = True
        # What exists now (Faust, aiokafka, the recovered table) lives as long as the worker: out of the
        # cyclic collector, so its full collections stop rescanning it all while the judge allocates.
        gc.collect()
        gc.freeze()

    async def _idle_clears(self, now: datetime) -> None:
        """A partition with nothing to read that judged nothing for `idle_seconds`: the clock stands in
        for its event time, and clears the levels due by now (streams/clears.py), through its subjects'
        envelopes. Per partition, so a quiet partition of a busy worker is not left waiting."""
        quiet = time.monotonic() - self.cfg.idle_seconds
        ts = now.timestamp()
        for partition in self.clears.partitions():
            if self._lag.get(partition, 1) or self._judged_at.get(partition, self._assigned_at) > quiet:
                continue
            for subject in self.clears.due(partition, ts):
                await self.topics[BY_SUBJECT].send(key=subject.encode(), value=expire_envelope(now, clears=True))

    def _publish_lag(self) -> int:
        """Records not yet committed behind each partition end, for the inputs this worker owns (what a
        crash would make it read again); returns their sum."""
        consumer = self.app.consumer
        total = 0
        self._lag = lags = {}  # per partition, over its input topics; unknown counts as behind
        for tp, position in self.offsets.positions.items():
            try:
                end = consumer.highwater(tp)
            except (KeyError, AssertionError, AttributeError):
                end = None
            if end is None:  # no fetch response for this partition yet
                lags[tp.partition] = lags.get(tp.partition, 0) + 1
                continue
            lag = max(0, end - position.committed)
            lags[tp.partition] = lags.get(tp.partition, 0) + lag
            total += lag
            self.metrics.set_lag(tp.topic, tp.partition, lag)
        return total

    async def _page(self) -> None:
        """Run the Alertmanager poster for the worker's lifetime (a no-op without a URL)."""
        await self.poster.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.poster.stop()

    async def _follow_inventory(self) -> None:
        self._quiet_libraries()
        await self.inventory.follow()

    def _quiet_libraries(self) -> None:
        """Hold the client libraries to the worker's log level: left at their default, aiokafka and
        Faust build a debug record for every message sent (several percent of a worker's CPU)."""
        level = logging.getLevelName(self.cfg.loglevel.upper())
        floor = max(level, logging.INFO) if isinstance(level, int) else logging.WARNING
        for name in ("aiokafka", "faust", "mode", "kafka"):
            logging.getLogger(name).setLevel(floor)

    async def _inventory_changed(self, at: datetime) -> None:
        """A new inventory: later calls see it at once; blocks it no longer justifies are lifted."""
        self.engine.inventory = self.inventory.current
        current = self.inventory.current
        self.metrics.set_inventory(None if current is None else current.entries,
                                   () if current is None else (entry.tenant for entry in current.entries.values()))
        for subject, stored in list(self.table.items()):
            if not stored or not stored.get("blocks"):
                continue
            state = self._states.get(subject) or SubjectState.from_dict(stored, self._risk_config)
            for key in self.engine.stale_blocks(state):
                block = state.blocks[key]
                reason = (f"Block of {block['caller_id']} by {block['rule']} lifted: the inventory pushed at "
                          f"{iso_utc(at)} removes its cause.")
                await self.topics[BY_SUBJECT].send(key=subject.encode(), value=lift_envelope(key, at, reason))

    async def _on_revoked(self, sender: Any, revoked: Any, **_: Any) -> None:
        """Partitions may move. The batch in flight finishes first (its partitions are this worker's
        until this returns, so its state and commit land before another worker reads them); then
        nothing is judged until the next assignment is recovered, and the working copies are dropped
        and read again from the table."""
        self._accepting = False
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=self.cfg.session_timeout)
        except TimeoutError:
            log.warning("a batch is still not durable after %.0f s; its records will be judged again",
                        self.cfg.session_timeout)
        self.offsets.reset()
        self._states.clear()
        self.metrics.clear_blocks()  # these partitions' blocks may now be another worker's to show
        self._scanned = False
        if self.parties is not None:  # read again from the commit, which is behind them
            self.parties.clear()
            self._durable_next.clear()

    async def _on_assigned(self, sender: Any, assigned: Any, **_: Any) -> None:
        self._joined = True
        self.metrics.record_rebalance()
        self._states.clear()
        self._scanned = False
        self._judged_at.clear()
        self._assigned_at = time.monotonic()
        self._last_progress = time.monotonic()
        log.info("assigned %d partitions", len(assigned))

    def readiness(self) -> web.Readiness:
        """Ready while judging is open: from the end of an assignment's recovery (its state read back,
        its offsets loaded; `_watch` opens it without waiting for a record) to the next revocation."""
        if self._accepting:
            return web.Readiness(True, "judging")
        if not self._joined:
            return web.Readiness(False, "joining the consumer group")
        if self.app.rebalancing:
            return web.Readiness(False, "rebalancing")
        if self.app.in_recovery:
            return web.Readiness(False, "reading its state back from the changelog")
        return web.Readiness(False, "loading its committed offsets")

    # -- running ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Make sure the topics exist, load the inventory, then run until SIGINT/SIGTERM (a graceful stop)."""
        settings = self.cfg.settings
        created = create_topics(settings, partitions=self.cfg.partitions,
                                extra=tuple(f"raw.{fmt}" for fmt in self.cfg.input_formats))
        # Whatever Faust creates itself (its assignor's leader topic) gets the same replicas as ours.
        self.app.conf.topic_replication_factor = created.replication
        changelog = self.table.changelog_topic.get_topic_name()
        create_changelogs(settings, [changelog], self.cfg.partitions)
        counts = partition_counts(settings, [self.cdr_name, self.by_subject_name, changelog])
        wrong = {name: n for name, n in counts.items() if n != self.cfg.partitions}
        if wrong:
            raise TopicError(f"topics {', '.join(f'{k} ({v})' for k, v in sorted(wrong.items()))} do not have "
                             f"--partitions {self.cfg.partitions} partitions: records and state would be judged "
                             "on the wrong partition; start the worker with their partition count")
        if self.cfg.alertmanager_url and not self.cfg.runbook_base_url:
            log.warning("paging without --runbook-base-url: the runbook_url of pages is a repository path "
                        "(docs/runbooks/...), not a link; set it to the repository's web URL")
        self.inventory.load()
        self.engine.inventory = self.inventory.current
        current = self.inventory.current
        if current is not None:
            self.metrics.set_inventory(current.entries, (entry.tenant for entry in current.entries.values()))
        worker = faust.Worker(self.app, loglevel=self.cfg.loglevel, quiet=True)
        worker.execute_from_commandline()
