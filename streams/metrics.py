"""The worker's Prometheus metrics: one registry per worker, names shared with dashboards and alerts.

Names and labels are a contract (dashboards/build.py, deploy/prometheus-rules.yml and the worker read
them). Every label has a bounded set of values: countries are ISO regions, per-caller-ID series are
capped (the inventory's numbers, or the busiest N), free-text reasons and sources are capped too.
No destination number, in clear or hashed, is ever a label value: no method here accepts one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from importlib import metadata
from typing import Any, NamedTuple

import phonenumbers
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rules.risk import FACTORS, RiskConfig, RiskScore, score_inputs

TALK_TIME_BUCKETS = (1, 3, 6, 10, 30, 60, 120, 300, 600, 1800, 3600)
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
ANALYTICS_REJECTIONS = (603, 607, 608)
SIP_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "none")
DLQ_REASONS = ("not_json", "missing_field", "bad_type", "bad_value", "oversized", "bad_utf8", "too_deep",
               "conversion",
               "internal_error")
DIRECTIONS = frozenset({"outbound", "inbound", "internal"})
DECISION_KINDS = frozenset({"alert", "block", "unblock", "resolve"})
SEVERITIES = frozenset({"info", "warning", "critical"})
DEFAULT_CLI_LIMIT = 500
DEFAULT_TENANT_LIMIT = 200
MAX_FREE_LABELS = 32  # distinct DLQ reasons / record sources before the rest become "other"
SHORT_LABEL = re.compile(r"[a-z0-9][a-z0-9_.]{0,39}")
REGION = re.compile(r"[A-Z]{2}")
CONTENT_TYPE = CONTENT_TYPE_LATEST


def package_version() -> str:
    """cidwatch's installed version, for cidwatch_worker_info; "unknown" when run from a bare tree."""
    try:
        return metadata.version("cidwatch")
    except metadata.PackageNotFoundError:
        return "unknown"


def tenant_label(tenant: str | None) -> str:
    """Calls without a tenant still need a label value: "none"."""
    return tenant.strip() if tenant and tenant.strip() else "none"


def country_label(region: str | None) -> str:
    """An ISO 3166 region code, or "unknown": never free text, so the label stays bounded."""
    code = (region or "").strip().upper()
    return code if REGION.fullmatch(code) else "unknown"


def destination_region(number: str) -> str | None:
    """The main region of a number's calling code (`+1…` is US), read from its leading digits alone:
    a label for the destination-country metric that costs no parse of the (mostly unique) number."""
    digits = number[1:] if number.startswith("+") else ""
    for length in (1, 2, 3):
        code = digits[:length]
        if len(code) == length and code.isdigit():
            region = phonenumbers.region_code_for_country_code(int(code))
            if region != phonenumbers.UNKNOWN_REGION:
                return None if region == "001" else region
    return None


def sip_class(code: int | None) -> str:
    """Final SIP response class "1xx".."6xx", or "none" when no (valid) code was reported."""
    if code is None or not 100 <= code <= 699:
        return "none"
    return f"{code // 100}xx"


RiskInputs = tuple[tuple[int, int, int], RiskConfig]  # `RiskState.latest_inputs()` and the model's config


class _CliRow(NamedTuple):
    """What the per-CLI gauges show for one caller ID. The spam risk is kept as the inputs it is scored
    from (`pending`) and scored only when /metrics is read: a batch sets hundreds of rows, a scrape
    every 15 s reads them."""

    tenant: str
    calls_today: float
    daily_cap: float | None
    answer_ratio: float
    short_call_ratio: float
    risk: RiskScore | None
    pending: RiskInputs | None = None

    def scored(self) -> _CliRow:
        if self.pending is None:
            return self
        risk = score_inputs(*self.pending)
        return self._replace(risk=risk, pending=None, answer_ratio=risk.inputs.get("answer_rate", 0.0),
                             short_call_ratio=risk.inputs.get("short_share", 0.0))


class _CliCollector(Collector):
    """The per-caller-ID gauges, made from the rows when the registry is collected.

    Gauges with one child per caller ID cost a label lookup (and often a new child) per series per
    update, several per call; rows in a dict cost one assignment. `collect` runs in /metrics' thread:
    it reads a copy of the rows (one C-level step under the GIL, so the event loop may go on changing them).
    """

    def __init__(self, rows: dict[str, _CliRow]) -> None:
        self.rows = rows

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        families = self._families()
        calls, cap, answer, short, score, factor = families
        for caller_id, row in list(self.rows.items()):
            row = row.scored()
            labels = [caller_id, row.tenant]
            calls.add_metric(labels, row.calls_today)
            if row.daily_cap is not None:
                cap.add_metric(labels, row.daily_cap)
            answer.add_metric(labels, row.answer_ratio)
            short.add_metric(labels, row.short_call_ratio)
            if row.risk is not None:
                score.add_metric(labels, row.risk.score)
                for name in FACTORS:
                    factor.add_metric([*labels, name], row.risk.factors.get(name, 0.0))
        return families

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily("cidwatch_cli_calls_today", "Calls by this caller ID in its current local day.",
                              labels=("caller_id", "tenant")),
            GaugeMetricFamily("cidwatch_cli_daily_cap", "Daily call cap or guidance applying to this caller ID.",
                              labels=("caller_id", "tenant")),
            GaugeMetricFamily("cidwatch_cli_answer_ratio", "Answered share of this caller ID's calls over 24 h.",
                              labels=("caller_id", "tenant")),
            GaugeMetricFamily("cidwatch_cli_short_call_ratio", "Share of answered calls shorter than 6 s over 24 h.",
                              labels=("caller_id", "tenant")),
            GaugeMetricFamily("cidwatch_cli_spam_risk_score",
                              "Spam-label risk score, 0-100 (heuristic, docs/spam-risk.md).",
                              labels=("caller_id", "tenant")),
            GaugeMetricFamily("cidwatch_cli_spam_risk_factor", "Points each factor adds to the spam-label risk score.",
                              labels=("caller_id", "tenant", "factor")),
        ]


class _BlockRow(NamedTuple):
    """One block in force, as the blocks-in-force table shows it."""

    rule: str
    caller_id: str
    tenant: str
    scope: str
    since: float  # Unix seconds
    until: float | None

    @classmethod
    def of(cls, block: Mapping[str, Any], tenant: Callable[[str | None], str]) -> _BlockRow:
        until = block.get("until")
        return cls(str(block.get("rule") or "unknown"), str(block.get("caller_id") or ""), tenant(block.get("tenant")),
                   scope_label(block.get("scope")), _epoch(block.get("at")), None if not until else _epoch(until))


def _epoch(value: Any) -> float:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.timestamp()


def scope_label(scope: Mapping[str, Any] | None) -> str:
    """A block's scope as a short label value (`destination_country=AU`), "" when it has none. Only
    countries and purposes are written: a scope keyed by a consumer (a destination's hash) never is."""
    parts = []
    for key, value in sorted((scope or {}).items()):
        shown = value if key == "purpose" or key.endswith("_country") else "…"
        parts.append(f"{key}={shown}")
    return ",".join(parts)


class _BlockCollector(Collector):
    """Blocks in force, made from the worker's per-subject rows when the registry is collected: a count
    per rule and tenant (every pair ever blocked stays, at 0 once lifted, so `increase` and stat panels
    see it drop), and one series per block for the NOC's table (the newest `limit`; the rest counted)."""

    def __init__(self, rows: dict[str, tuple[_BlockRow, ...]], pairs: set[tuple[str, str]],
                 limit: Callable[[], int]) -> None:
        self.rows = rows
        self.pairs = pairs
        self.limit = limit

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        families = self._families()
        active, since, until, unlisted = families
        blocks = [row for rows in list(self.rows.values()) for row in rows]
        counts: dict[tuple[str, str], int] = dict.fromkeys(list(self.pairs), 0)
        for row in blocks:
            counts[(row.rule, row.tenant)] = counts.get((row.rule, row.tenant), 0) + 1
        for (rule, tenant), n in sorted(counts.items()):
            active.add_metric([rule, tenant], n)
        blocks.sort(key=lambda row: (-row.since, row.caller_id, row.rule, row.scope))
        shown = blocks[:max(0, self.limit())]
        for row in shown:
            labels = [row.caller_id, row.tenant, row.rule, row.scope]
            since.add_metric(labels, row.since)
            if row.until is not None:
                until.add_metric(labels, row.until)
        unlisted.add_metric([], len(blocks) - len(shown))
        return families

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        block = ("caller_id", "tenant", "rule", "scope")
        return [
            GaugeMetricFamily("cidwatch_active_blocks", "Blocks currently in force, by rule and tenant.",
                              labels=("rule", "tenant")),
            GaugeMetricFamily("cidwatch_block_since_timestamp_seconds",
                              "When each block in force was decided (Unix time); one series per block.",
                              labels=block),
            GaugeMetricFamily("cidwatch_block_until_timestamp_seconds",
                              "When each time-boxed block in force ends (Unix time); absent for blocks "
                              "that last until cleared.", labels=block),
            GaugeMetricFamily("cidwatch_blocks_unlisted",
                              "Blocks in force left out of the per-block series (past the per-CLI limit)."),
        ]


class _PosterCollector(Collector):
    """The Alertmanager poster's own counters (streams/alerting.py), read at each scrape: a page that
    could not be delivered must show on the worker's /metrics, where Prometheus alerts on it."""

    def __init__(self, stats: Callable[[], Mapping[str, int]]) -> None:
        self.stats = stats

    def describe(self) -> Iterable[Metric]:
        return self._families({})

    def collect(self) -> Iterable[Metric]:
        return self._families(self.stats())

    @staticmethod
    def _families(stats: Mapping[str, int]) -> list[Metric]:
        posts = CounterMetricFamily(
            "cidwatch_alertmanager_posts", "POSTs of alerts to Alertmanager, by outcome: ok, failed (unreachable, "
            "timeout, 5xx or 429: retried with back-off) or refused (4xx: not retried).", labels=("outcome",))
        for outcome in ("ok", "failed", "refused"):
            posts.add_metric([outcome], stats.get(f"posts_{outcome}", 0))
        dropped = CounterMetricFamily(
            "cidwatch_alertmanager_dropped_decisions", "Decisions never posted: the poster's queue was full.",
            value=stats.get("dropped", 0))
        firing = GaugeMetricFamily("cidwatch_alertmanager_firing",
                                   "Alerts and blocks the worker keeps firing in Alertmanager (re-posted).",
                                   value=stats.get("firing", 0))
        return [posts, dropped, firing]


class _BoundedLabel:
    """Accepts short identifier-like values up to a cap; anything else becomes "other"."""

    def __init__(self, known: Iterable[str], cap: int = MAX_FREE_LABELS) -> None:
        self.values = set(known)
        self.cap = cap

    def __call__(self, value: str | None) -> str:
        text = (value or "").strip().lower()
        if text in self.values:
            return text
        if SHORT_LABEL.fullmatch(text) and len(self.values) < self.cap:
            self.values.add(text)
            return text
        return "other"


class Metrics:
    """All of one worker's metrics on its own CollectorRegistry (never the global one, so tests and
    several workers in one process do not collide)."""

    def __init__(
        self,
        version: str | None = None,
        cli_limit: int = DEFAULT_CLI_LIMIT,
        inventory: Iterable[str] | None = None,
        registry: CollectorRegistry | None = None,
        tenant_limit: int = DEFAULT_TENANT_LIMIT,
    ) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.cli_limit = cli_limit
        self.tenant_limit = tenant_limit
        self.inventory: frozenset[str] | None = None if inventory is None else frozenset(inventory)
        self._clis: dict[str, _CliRow] = {}
        self.block_list_limit = cli_limit
        self._blocks: dict[str, tuple[_BlockRow, ...]] = {}  # subject -> its blocks in force
        self._block_pairs: set[tuple[str, str]] = set()  # (rule, tenant) ever blocked: their gauge stays, at 0
        self._tenants: set[str] = set()
        self._decision_kinds: list[tuple[str, str, str]] = []  # (rule, kind, severity) the packs can emit
        self._talk_time: dict[tuple[str, str], Any] = {}  # (direction, tenant) -> its histogram child
        self._dlq_reason = _BoundedLabel(DLQ_REASONS)
        self._source = _BoundedLabel(("cdr",))
        self._define_call_metrics()
        self._define_decision_metrics()
        self._define_cli_metrics()
        self._define_pipeline_metrics()
        self.worker_info.labels(version=version or package_version()).set(1)
        for reason in DLQ_REASONS:  # present from the start, so rate() and the DLQ panel have series
            self.dlq_records.labels(reason=reason)
        self.records_processed.labels(source="cdr")

    def _define_call_metrics(self) -> None:
        r = self.registry
        self.calls = Counter(
            "cidwatch_calls", "Call attempts seen, by direction, countries, outcome and tenant.",
            ("direction", "caller_country", "destination_country", "outcome", "tenant"), registry=r,
        )
        self.talk_time = Histogram(
            "cidwatch_call_talk_time_seconds", "Talk time of answered calls.",
            ("direction", "tenant"), buckets=TALK_TIME_BUCKETS, registry=r,
        )
        self.sip_final = Counter(
            "cidwatch_call_sip_final", "Calls by final SIP response class (none when unreported).",
            ("sip_class", "tenant"), registry=r,
        )
        self.analytics_rejections = Counter(
            "cidwatch_call_analytics_rejections",
            "Calls rejected with 603 Decline, 607 Unwanted or 608 Rejected (analytics blocking).",
            ("sip_code", "tenant"), registry=r,
        )

    def _define_decision_metrics(self) -> None:
        r = self.registry
        self.decisions = Counter(
            "cidwatch_decisions", "Compliance decisions emitted, by rule, kind, severity and tenant.",
            ("rule", "kind", "severity", "tenant"), registry=r,
        )
        self.tenant_overflow = Counter(
            "cidwatch_tenant_overflow", "Calls and decisions counted under tenant=\"other\": their tenant came "
            "after the first --tenant-metrics-limit tenants (inventory's first, then the records').", registry=r,
        )
        r.register(_BlockCollector(self._blocks, self._block_pairs, lambda: self.block_list_limit))
        self.rule_threshold = Gauge(
            "cidwatch_rule_threshold", "Where each enabled rule of the worker's packs emits a decision (the "
            "configured cap or limit: dashboards draw it instead of copying the number).",
            ("rule", "kind", "severity"), registry=r,
        )

    def _define_cli_metrics(self) -> None:
        self.registry.register(_CliCollector(self._clis))

    def _define_pipeline_metrics(self) -> None:
        r = self.registry
        self.records_processed = Counter(
            "cidwatch_records_processed", "Records processed, by source (cdr or raw.<format>).",
            ("source",), registry=r,
        )
        self.dlq_records = Counter(
            "cidwatch_dlq_records", "Records sent to the dead-letter topic, by reason class.",
            ("reason",), registry=r,
        )
        self.decision_latency = Histogram(
            "cidwatch_decision_latency_seconds", "From a call's event time to the decision about it.",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.consumer_lag = Gauge(
            "cidwatch_consumer_lag", "Records behind the end of each partition.", ("topic", "partition"),
            registry=r,
        )
        self.rebalances = Counter("cidwatch_rebalances", "Consumer group rebalances.", registry=r)
        self.duplicates = Counter(
            "cidwatch_duplicate_records", "Records whose call_id was already judged (a re-delivery, or an "
            "updated Connect contact): ignored, never counted twice.", registry=r,
        )
        self.adapter_skips = Counter(
            "cidwatch_adapter_skipped", "Source records an adapter deliberately did not turn into a call attempt "
            "(a Connect update already judged, a non-voice contact, ...), by format.", ("format",), registry=r,
        )
        self.worker_info = Gauge("cidwatch_worker_info", "Constant 1, labelled with the worker version.",
                                 ("version",), registry=r)
        self.stalled = Gauge(
            "cidwatch_stalled", "1 while this worker has records to judge on its partitions but judged nothing "
            "for longer than --stall-seconds.", registry=r,
        )

    # calls -----------------------------------------------------------------------------------------

    def record_call(
        self,
        direction: str,
        caller_country: str | None,
        destination_country: str | None,
        answered: bool,
        tenant: str | None,
        duration_s: float,
        sip_code: int | None,
    ) -> None:
        """Count one call attempt; talk time is observed for answered calls only."""
        tenant = self._counted_tenant(tenant)
        outcome = "answered" if answered else "unanswered"
        direction = direction if direction in DIRECTIONS else "other"
        self.calls.labels(direction, country_label(caller_country), country_label(destination_country),
                          outcome, tenant).inc()
        if answered:
            self._talk(direction, tenant).observe(max(0.0, float(duration_s)))
        self.sip_final.labels(sip_class(sip_code), tenant).inc()
        if sip_code in ANALYTICS_REJECTIONS:
            self.analytics_rejections.labels(str(sip_code), tenant).inc()

    def record_calls(self, rows: Iterable[tuple[Any, ...]], risk_of: Callable[[str], RiskInputs | None]) -> None:
        """A batch of judged calls: rows of (direction, caller country, destination country, answered,
        tenant, talk time, SIP code, subject or None, calls today, daily cap). Counters move once per
        label set; each caller ID's row is set once, from its last row (`risk_of` gives what its spam
        risk is scored from, scored only when /metrics is read)."""
        counts: dict[tuple[str, ...], int] = {}
        sip: dict[tuple[str, str], int] = {}
        rejections: dict[tuple[str, str], int] = {}
        last: dict[str, tuple[Any, ...]] = {}
        for direction, caller, destination, answered, tenant, duration, code, subject, today, cap in rows:
            tenant = self._counted_tenant(tenant)
            direction = direction if direction in DIRECTIONS else "other"
            key = (direction, country_label(caller), country_label(destination),
                   "answered" if answered else "unanswered", tenant)
            counts[key] = counts.get(key, 0) + 1
            if answered:
                self._talk(direction, tenant).observe(max(0.0, float(duration)))
            sip_key = (sip_class(code), tenant)
            sip[sip_key] = sip.get(sip_key, 0) + 1
            if code in ANALYTICS_REJECTIONS:
                rejection = (str(code), tenant)
                rejections[rejection] = rejections.get(rejection, 0) + 1
            if subject is not None:
                last[subject] = (tenant, today, cap)
        for key, n in counts.items():
            self.calls.labels(*key).inc(n)
        for key, n in sip.items():
            self.sip_final.labels(*key).inc(n)
        for key, n in rejections.items():
            self.analytics_rejections.labels(*key).inc(n)
        for subject, (tenant, today, cap) in last.items():
            if self._admit(subject, today):
                self._clis[subject] = _CliRow(tenant, today, cap, 0.0, 0.0, None, risk_of(subject))

    def tenant(self, tenant: str | None) -> str:
        """A tenant's label value: the inventory's tenants, then the first tenants the records name,
        keep their name up to `tenant_limit`; later ones are "other" (a stream of made-up tenants must
        not grow the registry without bound)."""
        label = tenant_label(tenant)
        if label in self._tenants:
            return label
        if len(self._tenants) >= self.tenant_limit:
            return "other"
        self._tenants.add(label)
        for cls in SIP_CLASSES:  # a tenant's SIP series start at 0, so a first rejection shows in rate()
            self.sip_final.labels(cls, label)
        for code in ANALYTICS_REJECTIONS:
            self.analytics_rejections.labels(str(code), label)
        self._start_decisions(label)
        return label

    def _counted_tenant(self, tenant: str | None) -> str:
        """`tenant()`, counting the calls and decisions that overflow into "other"."""
        label = self.tenant(tenant)
        if label == "other" and tenant_label(tenant) != "other":
            self.tenant_overflow.inc()
        return label

    def add_tenants(self, tenants: Iterable[str | None]) -> None:
        """Tenants known in advance (the inventory's): they get their label before any record's."""
        for tenant in sorted({tenant_label(t) for t in tenants if t}):
            self.tenant(tenant)

    def _talk(self, direction: str, tenant: str) -> Any:
        child = self._talk_time.get((direction, tenant))
        if child is None:
            child = self._talk_time[(direction, tenant)] = self.talk_time.labels(direction, tenant)
        return child

    # decisions -------------------------------------------------------------------------------------

    def record_decision(self, decision: Mapping[str, Any]) -> None:
        """Count a decision (its JSON form). Blocks in force are not counted from decisions (a
        re-delivered or pre-restart decision would count twice) but set from state: `set_blocks`."""
        rule = str(decision.get("rule") or "unknown")
        kind = str(decision.get("kind") or "")
        severity = str(decision.get("severity") or "")
        self.decisions.labels(
            rule, kind if kind in DECISION_KINDS else "other", severity if severity in SEVERITIES else "other",
            self._counted_tenant(decision.get("tenant")),
        ).inc()

    def set_blocks(self, subject: str, blocks: Iterable[Mapping[str, Any]]) -> None:
        """The blocks in force on one subject now (its state's `blocks` values), replacing what it had:
        the active-blocks gauge and the blocks-in-force table are made from these at each scrape."""
        rows = []
        for block in blocks:
            try:
                rows.append(_BlockRow.of(block, self.tenant))
            except (TypeError, ValueError):  # a metric must never stop the judge: the block is just not shown
                continue
        if rows:
            self._blocks[subject] = tuple(rows)
            self._block_pairs.update((row.rule, row.tenant) for row in rows)
        else:
            self._blocks.pop(subject, None)

    def clear_blocks(self) -> None:
        """Forget every subject's blocks (partitions moved: the next scan sets them again)."""
        self._blocks.clear()

    def set_rules(self, rules: Iterable[Any]) -> None:
        """The worker's enabled rules (`rules.pack.Rule`s, as its packs load them): their thresholds are
        published, and the decision series each can emit start at 0 for every tenant. Why at 0: a
        counter's first sample is not an increase to Prometheus, so a tenant's first block would
        otherwise be missing from `increase()` panels and annotations."""
        kinds: set[tuple[str, str, str]] = set()
        for rule in rules:
            clears = getattr(rule.config, "sliding", False)  # a sliding threshold rule's alerts resolve
            for threshold in rule.thresholds:
                self.rule_threshold.labels(rule.id, threshold.kind, threshold.severity).set(threshold.at)
                kinds.add((rule.id, threshold.kind, threshold.severity))
                if clears and threshold.kind == "alert":
                    kinds.add((rule.id, "resolve", threshold.severity))
            if rule.kind in DECISION_KINDS and rule.severity:
                kinds.add((rule.id, rule.kind, rule.severity))
        kinds |= {(rule, "unblock", severity) for rule, kind, severity in kinds if kind == "block"}
        self._decision_kinds = sorted(kinds)
        for tenant in sorted(self._tenants):
            self._start_decisions(tenant)

    def _start_decisions(self, tenant: str) -> None:
        for rule, kind, severity in self._decision_kinds:
            self.decisions.labels(rule, kind, severity, tenant)

    # per caller ID ---------------------------------------------------------------------------------

    def set_inventory(self, numbers: Iterable[str] | None, tenants: Iterable[str | None] = ()) -> None:
        """Restrict per-CLI series to these numbers (None: the busiest `cli_limit` instead); the
        inventory's `tenants` get their label values first."""
        self.add_tenants(tenants)
        self.inventory = None if numbers is None else frozenset(numbers)
        if self.inventory is not None:
            for caller_id in [c for c in self._clis if c not in self.inventory]:
                self._remove_cli(caller_id)

    def set_cli(
        self,
        caller_id: str,
        tenant: str | None,
        calls_today: float,
        daily_cap: float | None,
        answer_ratio: float,
        short_call_ratio: float,
        risk: RiskScore | None,
    ) -> None:
        """Publish one caller ID's gauges, if it is within the bound; may evict the least busy CLI."""
        if self._admit(caller_id, calls_today):
            self._clis[caller_id] = _CliRow(self.tenant(tenant), calls_today, daily_cap, answer_ratio,
                                            short_call_ratio, risk)

    def _admit(self, caller_id: str, calls_today: float) -> bool:
        """Inventory numbers only when an inventory is set; otherwise keep the busiest `cli_limit`.

        Ranking only runs when a new CLI knocks at a full table, not on every update.
        """
        if self.inventory is not None:
            return caller_id in self.inventory
        if caller_id in self._clis or len(self._clis) < self.cli_limit:
            return True
        quietest = min(self._clis, key=lambda c: (self._clis[c].calls_today, c))
        if (self._clis[quietest].calls_today, quietest) >= (calls_today, caller_id):
            return False
        self._remove_cli(quietest)
        return True

    def _remove_cli(self, caller_id: str) -> None:
        """Drop a CLI that left the bound: its series are gone from the next scrape."""
        self._clis.pop(caller_id, None)

    @property
    def tracked_clis(self) -> list[str]:
        return sorted(self._clis)

    def watch_poster(self, stats: Callable[[], Mapping[str, int]]) -> None:
        """Export the Alertmanager poster's counters (`AlertPoster.stats`)."""
        self.registry.register(_PosterCollector(stats))

    # pipeline --------------------------------------------------------------------------------------

    def record_processed(self, source: str, n: int = 1) -> None:
        """`source` is "cdr" or "raw.<format>"; formats are capped like DLQ reasons."""
        self.records_processed.labels(self._source(source)).inc(n)

    def record_dlq(self, reason: str, n: int = 1) -> None:
        """`reason` is a short class (not_json, missing_field, ...), never a record's content."""
        self.dlq_records.labels(self._dlq_reason(reason)).inc(n)

    def observe_latency(self, seconds: float) -> None:
        """Event time to decision; clock skew can make it negative, which counts as 0."""
        self.decision_latency.observe(max(0.0, float(seconds)))

    def set_lag(self, topic: str, partition: int, lag: float) -> None:
        self.consumer_lag.labels(topic, str(partition)).set(max(0.0, float(lag)))

    def record_rebalance(self) -> None:
        self.rebalances.inc()

    def record_duplicate(self, n: int = 1) -> None:
        self.duplicates.inc(n)

    def set_stalled(self, stalled: bool) -> None:
        self.stalled.set(1 if stalled else 0)

    def record_skip(self, fmt: str) -> None:
        """One source record skipped by the `fmt` adapter; the reason goes to the log, not a label."""
        self.adapter_skips.labels(self._source(fmt)).inc()

    content_type = CONTENT_TYPE_LATEST

    def exposition(self) -> bytes:
        """The Prometheus text format of this registry, for the worker's /metrics."""
        return generate_latest(self.registry)
