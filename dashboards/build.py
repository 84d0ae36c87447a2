"""The NOC's four Grafana dashboards, as code (grafana-foundation-sdk builders).

Why code: the PromQL lives next to the metric names it depends on (streams/metrics.py), reviews see
query changes as diffs, and tests can run every panel's query against a real Prometheus
(`panel_queries`). The generated JSON is committed under dashboards/generated/ for Grafana's file
provisioning (and ships in the wheel, for `cidwatch dashboards push`); tests/test_dashboards.py fails when it
is stale. Regenerate: `cidwatch dashboards build --out dashboards/generated`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    DataTransformerConfig,
    Threshold,
    ThresholdsMode,
    VariableOption,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from rules.pack import Rule, load_packs
from rules.packs.fr import daily_limit
from rules.packs.spam import label_risk
from rules.registry import Check, registry
from rules.risk import FACTORS

GENERATED = Path(__file__).resolve().parent / "generated"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["cidwatch"]
TENANT = 'tenant=~"$tenant"'
CLI = 'caller_id=~"$caller_id"'
RATE = "[$__rate_interval]"

PanelBuilder = Any  # the SDK's per-type panel builders share no base class beyond Builder[Panel]


# --- building blocks ----------------------------------------------------------------------------


def query(expr: str, legend: str = "", ref: str = "A", instant: bool = False, table_format: bool = False
          ) -> prom.Dataquery:
    """One PromQL target; instant + table format for tables and bar gauges of current values."""
    target = prom.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        target = target.legend_format(legend)
    if instant:
        target = target.instant()
    if table_format:
        target = target.format(PromQueryFormat.TABLE)
    return target


def datasource_variable() -> db.DatasourceVariable:
    """Every dashboard picks its Prometheus through this variable, never a hard-coded uid."""
    return db.DatasourceVariable("datasource").label("Data source").type("prometheus")


def label_variable(name: str, label: str, source: str) -> db.QueryVariable:
    """A multi-select filter filled by `label_values(source, name)`, defaulting to All."""
    return (
        db.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(f"label_values({source}, {name})")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def thresholds(steps: list[Threshold]) -> db.ThresholdsConfig:
    return db.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps)


def legend_table(calcs: list[str]) -> cb.VizLegendOptions:
    return (cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.TABLE)
            .placement(cm.LegendPlacement.BOTTOM).show_legend(True).calcs(calcs))


def graph(title: str, description: str, targets: Sequence[prom.Dataquery], unit: str,
          width: int = 12, height: int = 8) -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).description(description).datasource(DATASOURCE)
             .unit(unit).span(width).height(height)
             .legend(legend_table(["mean", "lastNotNull", "max"]))
             .tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING)))
    for target in targets:
        panel = panel.with_target(target)
    return panel


def with_ids(panels: Iterable[PanelBuilder]) -> list[PanelBuilder]:
    """Stable panel ids in reading order: Grafana links and tests refer to them."""
    return [panel.id(index) for index, panel in enumerate(panels, start=1)]


def dashboard(uid: str, title: str, description: str, variables: Sequence[Any],
              panels: Iterable[PanelBuilder]) -> db.Dashboard:
    builder = (db.Dashboard(title).uid(uid).description(description).tags(TAGS)
               .time("now-6h", "now").timezone("browser").refresh("30s")
               .tooltip(DashboardCursorSync.CROSSHAIR).editable())
    for variable in [datasource_variable(), *variables]:
        builder = builder.with_variable(variable)
    for panel in with_ids(panels):
        builder = builder.with_panel(panel)
    return builder


# --- Delivery -----------------------------------------------------------------------------------


def delivery() -> db.Dashboard:
    calls = f"cidwatch_calls_total{{{TENANT}}}"
    answered = f'cidwatch_calls_total{{{TENANT}, outcome="answered"}}'
    panels = [
        graph("Call rate", "Call attempts per second by direction.",
              [query(f"sum by (direction) (rate({calls}{RATE}))", "{{direction}}")], "cps"),
        graph("Answer rate by destination country", "Answered share of call attempts, per destination country.",
              [query(f"sum by (destination_country) (rate({answered}{RATE}))"
                     f" / sum by (destination_country) (rate({calls}{RATE}))", "{{destination_country}}")],
              "percentunit"),
        graph("Answer rate by CLI (lowest 20)",
              "Answered share of each caller ID's calls over its rolling 24 h; a low answer rate raises "
              "spam-label risk.",
              [query(f"bottomk(20, max by (caller_id) (cidwatch_cli_answer_ratio{{{CLI}}}))", "{{caller_id}}")],
              "percentunit"),
        graph("Average talk time", "Mean talk time of answered calls.",
              [query(f"sum by (direction) (rate(cidwatch_call_talk_time_seconds_sum{{{TENANT}}}{RATE}))"
                     f" / sum by (direction) (rate(cidwatch_call_talk_time_seconds_count{{{TENANT}}}{RATE}))",
                     "{{direction}}")], "s"),
        graph("SIP failure mix", "Calls per second ending with a 3xx-6xx final response, by class.",
              [query(f'sum by (sip_class) (rate(cidwatch_call_sip_final_total{{{TENANT}, sip_class=~"[3-6]xx"}}'
                     f"{RATE}))", "{{sip_class}}")], "cps")
        .stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL)),
        graph("Analytics-blocked rate", "Share of call attempts rejected with 603 Decline, 607 Unwanted or "
              "608 Rejected: analytics engines or callees blocking the caller ID.",
              [query(f"sum by (sip_code) (rate(cidwatch_call_analytics_rejections_total{{{TENANT}}}{RATE}))"
                     f" / scalar(sum(rate({calls}{RATE})))", "{{sip_code}}")], "percentunit"),
    ]
    return dashboard(
        "cidwatch-delivery", "cidwatch / Delivery", "Is outbound traffic getting through?",
        [label_variable("tenant", "Tenant", "cidwatch_calls_total"),
         label_variable("caller_id", "Caller ID", f"cidwatch_cli_calls_today{{{TENANT}}}")],
        panels,
    )


# --- the rules the panels quote: their shipped pack rows, never copies of their numbers ----------


def shipped_rule(check: Check) -> Rule:
    """The shipped pack row of the rule whose check is `check` (its id and thresholds)."""
    rule_id = next(spec.id for spec in registry().values() if spec.check is check)
    rule = load_packs().get(rule_id)
    if rule is None:
        raise ValueError(f"rule {rule_id} is not enabled in the shipped packs: the dashboards quote it")
    return rule


def threshold_at(rule: Rule, kind: str, severity: str) -> float:
    """Where `rule` first emits a decision of `kind` and `severity`."""
    return next(t.at for t in rule.thresholds if t.kind == kind and t.severity == severity)


def risk_steps() -> list[Threshold]:
    """Green, then orange from the spam-label risk rule's warning, red from its critical alert (a page)."""
    rule = shipped_rule(label_risk)
    return [Threshold(None, "green"), Threshold(threshold_at(rule, "alert", "warning"), "orange"),
            Threshold(threshold_at(rule, "alert", "critical"), "red")]


# --- Spam-label risk ----------------------------------------------------------------------------


def riskiest_table() -> table.Panel:
    """Top 20 by score, one column per factor: queries merged on caller_id, renamed by `organize`."""
    top = f"topk(20, max by (caller_id) (cidwatch_cli_spam_risk_score{{{CLI}}}))"
    panel = (table.Panel().title("Riskiest CLIs").datasource(DATASOURCE).span(24).height(10)
             .description("Spam-label risk score (0-100) and the points each factor adds; a heuristic from "
                          "public guidance, not the analytics engines' model (docs/spam-risk.md).")
             .thresholds(thresholds(risk_steps()))
             .sort_by([cb.TableSortByFieldState().display_name("score").desc(True)])
             .with_target(query(top, ref="score", instant=True, table_format=True)))
    renames = {"Value #score": "score"}
    for factor in FACTORS:
        expr = (f'max by (caller_id) (cidwatch_cli_spam_risk_factor{{{CLI}, factor="{factor}"}})'
                f" and on (caller_id) {top}")
        panel = panel.with_target(query(expr, ref=factor, instant=True, table_format=True))
        renames[f"Value #{factor}"] = factor
    return (panel.with_transformation(DataTransformerConfig(id_val="merge", options={}))
            .with_transformation(DataTransformerConfig(id_val="organize", options={
                "excludeByName": {"Time": True}, "renameByName": renames,
                "indexByName": {"caller_id": 0, "Value #score": 1}})))


def spam_risk() -> db.Dashboard:
    rule = shipped_rule(label_risk)
    warns, pages = threshold_at(rule, "alert", "warning"), threshold_at(rule, "alert", "critical")
    panels = [
        riskiest_table(),
        graph("Risk over time (top 10)", f"Spam-label risk score; rule {rule.id} warns at {warns:g} and pages at "
              f"{pages:g}.",
              [query(f"topk(10, max by (caller_id) (cidwatch_cli_spam_risk_score{{{CLI}}}))", "{{caller_id}}")],
              "none")
        .min(0).max(100).thresholds(thresholds(risk_steps()))
        .thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphTresholdsStyleMode.DASHED)),
        graph("Short-call share (top 10)", "Share of answered calls under 6 s, rolling 24 h.",
              [query(f"topk(10, max by (caller_id) (cidwatch_cli_short_call_ratio{{{CLI}}}))", "{{caller_id}}")],
              "percentunit"),
        graph("Volume against 100/day (top 10)",
              "Calls in the caller ID's current day; vendor guidance: more than about 100 a day raises risk.",
              [query(f"topk(10, max by (caller_id) (cidwatch_cli_calls_today{{{TENANT}, {CLI}}}))",
                     "{{caller_id}}")], "none", width=24)
        .thresholds(thresholds([Threshold(None, "green"), Threshold(100, "red")]))
        .thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphTresholdsStyleMode.DASHED)),
    ]
    return dashboard(
        "cidwatch-spam-risk", "cidwatch / Spam-label risk", "Which caller IDs are heading for a spam label?",
        [label_variable("tenant", "Tenant", "cidwatch_cli_calls_today"),
         label_variable("caller_id", "Caller ID", f"cidwatch_cli_calls_today{{{TENANT}}}")],
        panels,
    )


# --- Compliance ---------------------------------------------------------------------------------


def french_quota() -> bargauge.Panel:
    """Calls today of caller IDs under the French daily cap (French, not NPV), against that cap: the
    French daily limit's block threshold, which the worker exports as the caller ID's daily cap."""
    rule = shipped_rule(daily_limit)
    warns, cap = threshold_at(rule, "alert", "warning"), threshold_at(rule, "block", "critical")
    expr = (f"max by (caller_id) (cidwatch_cli_calls_today{{{TENANT}, {CLI}}})"
            f" and on (caller_id) (cidwatch_cli_daily_cap == {cap:g})")
    return (bargauge.Panel().title("French daily quota use per CLI").datasource(DATASOURCE).span(12).height(10)
            .description(f"Calls in the {rule.timezone} day of French non-NPV caller IDs against the operators' "
                         f"{cap:g}-a-day cap (rule {rule.id}: warning at {warns:g}, block at {cap:g}).")
            .with_target(query(expr, "{{caller_id}}", instant=True))
            .min(0).max(cap).unit("none")
            .thresholds(thresholds([Threshold(None, "green"), Threshold(warns, "orange"), Threshold(cap, "red")]))
            .display_mode(cm.BarGaugeDisplayMode.GRADIENT).orientation(cm.VizOrientation.HORIZONTAL)
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))


def compliance() -> db.Dashboard:
    rule = 'rule=~"$rule"'
    panels = [
        graph("Decisions by rule", "Alerts, blocks and unblocks emitted per second, by rule and kind.",
              [query(f"sum by (rule, kind) (rate(cidwatch_decisions_total{{{rule}}}{RATE}))", "{{rule}} {{kind}}")],
              "ops"),
        stat.Panel().title("Active blocks").datasource(DATASOURCE).span(12).height(8)
        .description("Blocks in force now, by rule: dialers must not present these caller IDs.")
        .with_target(query(f"sum by (rule) (cidwatch_active_blocks{{{rule}}})", "{{rule}}", instant=True))
        .thresholds(thresholds([Threshold(None, "green"), Threshold(1, "red")]))
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)),
        french_quota(),
        graph("DLQ rate", "Records per second sent to the dead-letter topic, by reason.",
              [query(f"sum by (reason) (rate(cidwatch_dlq_records_total{RATE}))", "{{reason}}")], "ops"),
    ]
    return dashboard(
        "cidwatch-compliance", "cidwatch / Compliance", "What has cidwatch decided, and what is blocked now?",
        [label_variable("rule", "Rule", "cidwatch_decisions_total"),
         label_variable("tenant", "Tenant", "cidwatch_cli_calls_today"),
         label_variable("caller_id", "Caller ID", f"cidwatch_cli_calls_today{{{TENANT}}}")],
        panels,
    )


# --- Pipeline -----------------------------------------------------------------------------------


def pipeline() -> db.Dashboard:
    inst = 'instance=~"$instance"'
    latency = f"sum by (le) (rate(cidwatch_decision_latency_seconds_bucket{{{inst}}}{RATE}))"
    panels = [
        graph("Throughput", "Records processed per second, by source.",
              [query(f"sum by (source) (rate(cidwatch_records_processed_total{{{inst}}}{RATE}))", "{{source}}")],
              "ops"),
        graph("Consumer lag", "Records behind the end of each partition.",
              [query(f"sum by (topic, partition) (cidwatch_consumer_lag{{{inst}}})", "{{topic}}/{{partition}}")],
              "none"),
        graph("Decision latency percentiles", "Event time of a call to the decision about it.",
              [query(f"histogram_quantile({q}, {latency})", f"p{round(q * 100)}", ref=ref)
               for q, ref in ((0.5, "A"), (0.9, "B"), (0.99, "C"))], "s"),
        graph("Rebalances", "Consumer group rebalances; a steady rate means workers keep leaving.",
              [query(f"sum by (instance) (increase(cidwatch_rebalances_total{{{inst}}}{RATE}))", "{{instance}}")],
              "none"),
        stat.Panel().title("Worker up").datasource(DATASOURCE).span(24).height(5)
        .description("1 when Prometheus scrapes the worker (job cidwatch); alert CidwatchWorkerDown fires on 0.")
        .with_target(query(f'up{{job="cidwatch", {inst}}}', "{{instance}}", instant=True))
        .thresholds(thresholds([Threshold(None, "red"), Threshold(1, "green")]))
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)),
    ]
    return dashboard(
        "cidwatch-pipeline", "cidwatch / Pipeline", "Is the stream keeping up?",
        [label_variable("instance", "Worker", 'up{job="cidwatch"}')],
        panels,
    )


# --- output -------------------------------------------------------------------------------------

BUILDERS: dict[str, Callable[[], db.Dashboard]] = {
    "cidwatch-delivery": delivery,
    "cidwatch-spam-risk": spam_risk,
    "cidwatch-compliance": compliance,
    "cidwatch-pipeline": pipeline,
}


def to_dict(builder: db.Dashboard) -> dict[str, Any]:
    """The dashboard JSON model, through the SDK's own encoder."""
    return json.loads(JSONEncoder(sort_keys=True).encode(builder.build()))


def all_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON model by uid, freshly generated."""
    return {uid: to_dict(make()) for uid, make in BUILDERS.items()}


def render(model: dict[str, Any]) -> str:
    """The committed text form: stable key order and indentation, so diffs show real changes."""
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build(out_dir: str | Path) -> list[Path]:
    """Write `<uid>.json` for each dashboard; remove stale cidwatch-*.json left by renamed ones."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for uid, model in all_dashboards().items():
        path = out / f"{uid}.json"
        path.write_text(render(model), encoding="utf-8")
        written.append(path)
    for stale in set(out.glob("cidwatch-*.json")) - set(written):
        stale.unlink()
    return written


def iter_panels(model: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Panels, including those nested in collapsed rows."""
    for panel in model.get("panels") or []:
        yield panel
        yield from panel.get("panels") or []


def panel_queries(dashboards: dict[str, dict[str, Any]] | None = None) -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, PromQL) for every target of every panel, template variables
    left in: the caller fills them (from label_values) before running the query."""
    dashboards = all_dashboards() if dashboards is None else dashboards
    return [
        (uid, panel.get("title", ""), target["expr"])
        for uid, model in dashboards.items()
        for panel in iter_panels(model)
        for target in panel.get("targets") or []
        if target.get("expr")
    ]


def variable_queries(dashboards: dict[str, dict[str, Any]] | None = None) -> list[tuple[str, str, str]]:
    """(dashboard uid, variable name, label_values query) of every query variable."""
    dashboards = all_dashboards() if dashboards is None else dashboards
    return [
        (uid, variable["name"], variable["query"])
        for uid, model in dashboards.items()
        for variable in model.get("templating", {}).get("list", [])
        if variable.get("type") == "query"
    ]
