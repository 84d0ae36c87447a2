"""The Faust app: CDRs in, decisions out, with the same `Engine` that `replay` runs.

Two agents:
- `ingest` reads the `cdr` topic (and `raw.NAME` topics when an input format is configured),
  validates each message, dead-letters what fails, and forwards the canonical record to the internal
  topic `cdr.by-subject`, keyed by the record's subject (the normalised CLI, or for inbound calls the
  number called). The input key is the raw caller ID, which is not always the subject: this is
  the repartition that keeps one CLI's state in one partition.
- `judge` reads `cdr.by-subject` and runs the engine over changelog-backed tables.

Timers and inventory updates never touch tables directly (outside stream iteration Faust cannot know
a write's partition): they send control envelopes (`expire`, `lift`, `clear`) through
`cdr.by-subject`, keyed by the subject, and `judge` applies them in the right partition.

Processing guarantee: at-least-once. faust-streaming's exactly-once has open bugs around kills and
rebalances; instead every decision carries a deterministic id, state writes are applied only after
the record's decisions are handed to the producer, and consumers (the compacted `blocks` topic,
Alertmanager) are idempotent on the id, so a record replayed after a restart re-sends the same ids.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import faust
from faust.sensors.prometheus import setup_prometheus_sensors

from rules.cdr import Cdr, iso_utc, parse_cdr
from rules.decision import Decision, cleared_message
from rules.engine import Engine, Outcome
from rules.pack import load_packs
from rules.state import SubjectState
from streams.alerting import AlertPoster
from streams.config import WorkerConfig
from streams.dlq import Rejected, cdr_from_mapping, dead_letter, validate
from streams.inventory_topic import InventoryFollower
from streams.metrics import Metrics
from streams.protocol import BY_SUBJECT, cdr_envelope, expire_envelope, lift_envelope
from streams.topics import create_changelogs, create_topics

log = logging.getLogger("cidwatch.worker")
TABLE = "subjects"  # one SubjectState per subject


class CidwatchWorker:
    """One worker process: the Faust app, its engine, tables, topics and metrics."""

    def __init__(self, cfg: WorkerConfig) -> None:
        self.cfg = cfg
        self.engine = Engine(load_packs(cfg.rules), None, cfg.default_region,
                             dedup_seconds=int(cfg.dedup_hours * 3600))
        self.metrics = Metrics(cli_limit=cfg.cli_metrics_limit)
        self.inventory = InventoryFollower(cfg.settings, cfg.inventory, self._inventory_changed)
        self.poster = AlertPoster(cfg.alertmanager_url, repo_url=cfg.runbook_base_url,
                                  repost_seconds=cfg.alert_repost_seconds)
        self._blocks_resubmitted = False
        self.app = self._make_app()
        self._expire_sent: set[tuple[str, str, float]] = set()
        self._declare_topics()
        schema = faust.Schema(key_serializer="json", value_serializer="json")
        self.table = self.app.Table(TABLE, default=None, partitions=cfg.partitions, schema=schema)
        self._declare_agents()
        setup_prometheus_sensors(self.app, "/metrics", registry=self.metrics.registry, name_prefix="cidwatch_faust")

    def _make_app(self) -> faust.App:
        cfg = self.cfg
        return faust.App(
            cfg.app_id,
            broker=cfg.settings.broker,
            store=cfg.store_url,
            datadir=str(cfg.workdir),
            web_port=cfg.web_port,
            web_bind=cfg.web_host,
            web_host=cfg.web_host,
            topic_partitions=cfg.partitions,
            topic_replication_factor=1,
            topic_allow_declare=True,
            processing_guarantee="at_least_once",
            table_standby_replicas=0,
            consumer_auto_offset_reset="earliest",
            key_serializer="raw",
            value_serializer="raw",
            producer_max_request_size=max(1_048_576, cfg.max_record_bytes * 2),
            # Batch produce requests: without linger every send is its own request, which caps a
            # worker at a few hundred records a second on loopback.
            producer_linger=0.01,
            producer_max_batch_size=256 * 1024,
            consumer_max_fetch_size=max(4_194_304, cfg.max_record_bytes * 4),
        )

    def _topic(self, name: str, **options: Any) -> faust.TopicT:
        return self.app.topic(self.cfg.settings.topic(name), key_type=bytes, value_type=bytes,
                              key_serializer="raw", value_serializer="raw", **options)

    def _declare_topics(self) -> None:
        self.cdr_topic = self._topic("cdr")
        self.raw_topics = {fmt: self._topic(f"raw.{fmt}") for fmt in self.cfg.input_formats}
        self.by_subject = self._topic(BY_SUBJECT)
        self.decisions_topic = self._topic("decisions")
        self.alerts_topic = self._topic("alerts")
        self.blocks_topic = self._topic("blocks")
        self.dlq_topic = self._topic("dlq")

    def _declare_agents(self) -> None:
        self.app.agent(self.cdr_topic, name="ingest")(self._ingest)
        for fmt, topic in self.raw_topics.items():
            self.app.agent(topic, name=f"ingest-{fmt}")(self._raw_ingest(fmt))
        self.app.agent(self.by_subject, name="judge")(self._judge)
        self.app.timer(self.cfg.tick_seconds)(self._tick)
        self.app.task(self._follow_inventory)
        self.app.task(self._page)
        self.app.on_partitions_assigned.connect(self._on_assigned)

    # -- ingest ----------------------------------------------------------------------------------

    async def _ingest(self, stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            self.metrics.record_processed("cdr")
            try:
                cdr = validate(event.value, self.cfg.max_record_bytes)
            except Rejected as rejected:
                await self._dead_letter(event.value, rejected, message)
                continue
            await self._forward(cdr.to_dict(), self.engine.subject(cdr), message.timestamp)

    def _raw_ingest(self, fmt: str) -> Any:
        from streams import adapters

        profile = adapters.load_profile(self.cfg.profile)

        async def ingest_raw(stream: faust.StreamT) -> None:
            async for event in stream.events():
                message = event.message
                self.metrics.record_processed(f"raw.{fmt}")
                try:
                    items = adapters.convert_raw(fmt, event.value or b"", profile)
                except ValueError as exc:
                    await self._dead_letter(event.value, Rejected("conversion", "record", str(exc)), message)
                    continue
                for item in items:
                    if item.skip is not None:
                        self.metrics.record_skip(fmt)
                        log.info("%s record skipped: %s", fmt, item.skip)
                        continue
                    try:
                        if item.reject is not None:
                            raise Rejected("conversion", "record", f"{item.location}: {item.reject}")
                        cdr = cdr_from_mapping(item.record)
                    except Rejected as rejected:
                        await self._dead_letter(event.value, rejected, message)
                        continue
                    await self._forward(cdr.to_dict(), self.engine.subject(cdr), message.timestamp)

        return ingest_raw

    async def _dead_letter(self, value: bytes | None, rejected: Rejected, message: Any) -> None:
        record = dead_letter(value, rejected, message.topic, message.partition, message.offset, message.key)
        log.warning("dead-lettered %s[%s]@%s: %s", message.topic, message.partition, message.offset,
                    rejected.error_class)
        await self.dlq_topic.send(key=message.key, value=json.dumps(record).encode())
        self.metrics.record_dlq(rejected.error_class)

    async def _forward(self, record: dict[str, Any], subject: str, produced_at: float | None) -> None:
        await self.by_subject.send(key=subject.encode(), value=cdr_envelope(record, produced_at))

    # -- judge -----------------------------------------------------------------------------------

    async def _judge(self, stream: faust.StreamT) -> None:
        async for event in stream.events():
            subject = (event.key or b"").decode()
            stored = self.table.get(subject)
            state = SubjectState() if stored is None else SubjectState.from_dict(stored, self._risk_config)
            body = json.loads(event.value)
            decisions = self._apply(body, subject, state)
            for decision in decisions:
                await self._emit(decision)
            self.table[subject] = state.to_dict()
            # The decisions, then the state that records them, are acknowledged by the broker before
            # this event is acknowledged (and its offset can be committed).
            await self.app.producer.flush()

    @property
    def _risk_config(self) -> Any:
        rule = self.engine.pack.get("spam.label_risk")
        return None if rule is None else rule.config

    def _apply(self, body: dict[str, Any], subject: str, state: SubjectState) -> list[Decision]:
        kind = body["t"]
        if kind == "cdr":
            cdr = parse_cdr(body["cdr"])
            outcome = self.engine.process(cdr, state)
            if outcome.status == "judged":
                self._record_call(cdr, outcome, state)
            elif outcome.status == "duplicate":
                self.metrics.record_duplicate()
            return outcome.decisions
        if kind == "expire":
            now = datetime.fromisoformat(body["now"])
            self._expire_sent = {item for item in self._expire_sent if item[0] != subject}
            return self.engine.expire_subject(state, now)
        if kind == "lift":
            return self.engine.lift(state, body["key"], datetime.fromisoformat(body["at"]), body["reason"])
        if kind == "clear":
            return self._clear(subject, body.get("rule"), datetime.fromisoformat(body["at"]), state)
        log.error("unknown envelope %r on %s", kind, BY_SUBJECT)
        return []

    def _clear(self, subject: str, rule: str | None, at: datetime, state: SubjectState) -> list[Decision]:
        decisions = []
        for key, block in list(state.blocks.items()):
            if block["caller_id"] == subject and rule in (None, block["rule"]):
                decisions.extend(self.engine.lift(state, key, at, cleared_message(subject, block["rule"])))
        return decisions

    def _record_call(self, cdr: Cdr, outcome: Outcome, state: SubjectState) -> None:
        caller = outcome.caller.region if outcome.caller is not None else None
        destination = (outcome.destination or self.engine.destination_info(cdr)).region
        self.metrics.record_call(cdr.direction, caller, destination, cdr.answered, cdr.tenant, cdr.duration_s,
                                 cdr.sip_code)
        if state.risk is not None and outcome.day_count is not None and outcome.caller is not None \
                and outcome.caller.valid and cdr.direction == "outbound":
            risk = state.risk.score_latest()
            self.metrics.set_cli(outcome.caller.e164 or outcome.subject, cdr.tenant, outcome.day_count,
                                 outcome.daily_cap, risk.inputs.get("answer_rate", 0.0),
                                 risk.inputs.get("short_share", 0.0), risk)

    def _publish_lag(self) -> None:
        """Records behind each partition end, for the inputs this worker owns.

        Faust keeps the last offset read only privately (`_read_offset`); its own Prometheus sensor
        exports end and processed offsets separately, and the NOC wants the difference as one gauge.
        """
        consumer = self.app.consumer
        sources = {self.cdr_topic.get_topic_name(), self.by_subject.get_topic_name(),
                   *(topic.get_topic_name() for topic in self.raw_topics.values())}
        for tp in consumer.assignment():
            if tp.topic not in sources:
                continue
            try:
                end = consumer.highwater(tp)
            except (KeyError, AssertionError, AttributeError):
                continue
            if end is None:  # no fetch response for this partition yet
                continue
            read = consumer._read_offset.get(tp)
            position = read + 1 if read is not None else (consumer._committed_offset.get(tp) or 0)
            self.metrics.set_lag(tp.topic, tp.partition, max(0, end - position))

    async def _emit(self, decision: Decision) -> None:
        payload = decision.to_json()
        await self.decisions_topic.send(key=decision.caller_id.encode(), value=payload)
        if decision.kind == "alert":
            await self.alerts_topic.send(key=decision.caller_id.encode(), value=payload)
        else:
            await self.blocks_topic.send(key=decision.block_key.encode(), value=payload)
        self.metrics.record_decision(decision.to_dict())
        self.poster.submit(decision.to_dict())
        if decision.kind != "unblock":
            self.metrics.observe_latency((datetime.now(UTC) - decision.at).total_seconds())
        log.info("%s %s %s %s", decision.kind, decision.rule, decision.caller_id, iso_utc(decision.at))

    # -- timers and control ----------------------------------------------------------------------

    async def _tick(self) -> None:
        """Wall clock: lift what is due and refresh gauges. An error here is logged, never fatal: a
        crashing timer would stop the whole worker."""
        try:
            await self._tick_once()
        except Exception:
            log.exception("wall-clock tick failed; retrying at the next tick")

    async def _tick_once(self) -> None:
        """Ask the owning partition to lift time-boxed blocks whose `until` has passed."""
        now = datetime.now(UTC)
        for subject, key, until in self._due(now):
            self._expire_sent.add((subject, key, until))
            await self.by_subject.send(key=subject.encode(), value=expire_envelope(now))
        counts: dict[str, int] = {}
        for _subject, stored in list(self.table.items()):
            for block in (stored or {}).get("blocks", {}).values():
                counts[block["rule"]] = counts.get(block["rule"], 0) + 1
        for rule in set(counts) | set(self.engine.pack.rules):
            self.metrics.set_active_blocks(rule, counts.get(rule, 0))
        self._publish_lag()
        self._resubmit_blocks()

    def _due(self, now: datetime) -> Iterable[tuple[str, str, float]]:
        ts = now.timestamp()
        for subject, stored in list(self.table.items()):
            for key, until in (stored or {}).get("timed", {}).items():
                if until <= ts and (subject, key, until) not in self._expire_sent:
                    yield subject, key, until

    async def _page(self) -> None:
        """Run the Alertmanager poster for the worker's lifetime (a no-op without a URL)."""
        await self.poster.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.poster.stop()

    def _resubmit_blocks(self) -> None:
        """After start or a rebalance, page again what this worker's partitions hold blocked: the
        poster's rolling endsAt would otherwise let Alertmanager resolve blocks still in force."""
        if self._blocks_resubmitted or self.app.rebalancing or self.app.in_recovery:
            return  # tables are not complete until recovery of the new assignment is done
        for _subject, stored in list(self.table.items()):
            for block in (stored or {}).get("blocks", {}).values():
                self.poster.submit(block)
        self._blocks_resubmitted = True

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
        self.metrics.set_inventory(None if self.inventory.current is None else self.inventory.current.entries)
        for subject, stored in list(self.table.items()):
            if not stored or not stored.get("blocks"):
                continue
            state = SubjectState.from_dict(stored, self._risk_config)
            for key in self.engine.stale_blocks(state):
                block = state.blocks[key]
                reason = (f"Block of {block['caller_id']} by {block['rule']} lifted: the inventory pushed at "
                          f"{iso_utc(at)} removes its cause.")
                await self.by_subject.send(key=subject.encode(),
                                           value=lift_envelope(key, at, reason))

    async def _on_assigned(self, sender: Any, assigned: Any, **_: Any) -> None:
        self.metrics.record_rebalance()
        self._blocks_resubmitted = False
        log.info("assigned %d partitions", len(assigned))

    # -- running ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Make sure the topics exist, load the inventory, then run until SIGINT/SIGTERM (a graceful stop)."""
        create_topics(self.cfg.settings, partitions=self.cfg.partitions,
                      extra=tuple(f"raw.{fmt}" for fmt in self.cfg.input_formats))
        create_changelogs(self.cfg.settings, [self.table.changelog_topic.get_topic_name()],
                          self.cfg.partitions)
        self.inventory.load()
        self.engine.inventory = self.inventory.current
        if self.inventory.current is not None:
            self.metrics.set_inventory(self.inventory.current.entries)
        worker = faust.Worker(self.app, loglevel=self.cfg.loglevel, quiet=True)
        worker.execute_from_commandline()
