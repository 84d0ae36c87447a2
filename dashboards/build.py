"""The NOC's four Grafana dashboards, as code (grafana-foundation-sdk builders).

Why code: the PromQL lives next to the metric names it depends on (streams/metrics.py), reviews see
query changes as diffs, and tests can run every panel's query against a real Prometheus
(`panel_queries`). The generated JSON is committed under dashboards/generated/ for Grafana's file
provisioning (and ships in the wheel, for `cidwatch dashboards push`); tests/test_dashboards.py fails when it
is stale. Regenerate: `cidwatch dashboards build --out dashboards/generated`.

Tenants: every panel of Delivery, Spam-label risk and Compliance selects `tenant=~"$tenant"` on every
metric it reads (tests/test_obs_harness.py runs each with one tenant selected against a real
Prometheus). Pipeline is the workers' dashboard: records before they are parsed, partitions, group
rebalances and scrape targets belong to no tenant, so it has no Tenant filter.
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
    DashboardLinkType,
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
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
RULE = 'rule=~"$rule"'
RATE = "[$__rate_interval]"
RANGE = "[$__range]"
RUNBOOK = "${runbook_base}/docs/runbooks/"  # + rule id + ".md"

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


def runbook_variable() -> db.TextBoxVariable:
    """Where runbooks are read: the repository's web URL (as `--runbook-base-url` for the worker), set
    once per Grafana; runbook links are `<it>/docs/runbooks/<rule>.md`."""
    return (db.TextBoxVariable("runbook_base").label("Runbook base URL")
            .description("The repository's web URL, e.g. https://git.example.com/org/cidwatch/blob/main "
                         "(the worker's --runbook-base-url): runbook links are <it>/docs/runbooks/<rule>.md.")
            .default_value(""))


def runbook_link(title: str, rule: str) -> db.DashboardLink:
    """A link to a rule's runbook; `rule` may be a Grafana field reference like `${__field.labels.rule}`."""
    return (db.DashboardLink(title).type(DashboardLinkType.LINK).url(f"{RUNBOOK}{rule}.md")
            .target_blank(True).tooltip("What this rule means and what to do"))


def runbooks_index() -> db.DashboardLink:
    return (db.DashboardLink("Runbooks").type(DashboardLinkType.LINK).url("${runbook_base}/docs/runbooks/")
            .target_blank(True).icon("doc"))


def dashboard_links() -> db.DashboardLink:
    """The other cidwatch dashboards (by tag), keeping the time range and the filters."""
    return (db.DashboardLink("cidwatch").type(DashboardLinkType.DASHBOARDS).tags(TAGS).as_dropdown(False)
            .include_vars(True).keep_time(True))


# Grafana's Prometheus annotation fields the SDK's AnnotationQuery does not model; added in `to_dict`.
ANNOTATION_OPTIONS = {"step": "1m", "titleFormat": "{{rule}} {{kind}}", "tagKeys": "rule,kind,tenant",
                      "textFormat": "{{rule}} {{kind}} for tenant {{tenant}}", "useValueForTime": False}
ANNOTATION_COLORS = {"block": "red", "unblock": "green"}


def decision_annotations(selector: str) -> list[db.AnnotationQuery]:
    """Block and unblock decisions as annotations: each step where some were decided, by rule and tenant."""
    return [
        db.AnnotationQuery().name(f"{kind.capitalize()}s").datasource(DATASOURCE).enable(True)
        .icon_color(color).expr(f'sum by (rule, kind, tenant) (increase(cidwatch_decisions_total'
                                f'{{kind="{kind}", {selector}}}[1m])) > 0')
        for kind, color in ANNOTATION_COLORS.items()
    ]


def with_ids(panels: Iterable[PanelBuilder]) -> list[PanelBuilder]:
    """Stable panel ids in reading order: Grafana links and tests refer to them."""
    return [panel.id(index) for index, panel in enumerate(panels, start=1)]


def dashboard(uid: str, title: str, description: str, variables: Sequence[Any],
              panels: Iterable[PanelBuilder], annotations: Sequence[db.AnnotationQuery] = ()) -> db.Dashboard:
    builder = (db.Dashboard(title).uid(uid).description(description).tags(TAGS)
               .time("now-6h", "now").timezone("browser").refresh("30s")
               .tooltip(DashboardCursorSync.CROSSHAIR).editable()
               .links([dashboard_links(), runbooks_index()]))
    for annotation in annotations:
        builder = builder.annotation(annotation)
    for variable in [datasource_variable(), *variables, runbook_variable()]:
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
              [query(f"bottomk(20, max by (caller_id) (cidwatch_cli_answer_ratio{{{TENANT}, {CLI}}}))",
                     "{{caller_id}}")],
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
        tenant_variables(),
        panels, decision_annotations(TENANT),
    )


def tenant_variables() -> list[db.QueryVariable]:
    """Tenant (every tenant that called), then the caller IDs of the chosen tenants."""
    return [label_variable("tenant", "Tenant", "cidwatch_calls_total"),
            label_variable("caller_id", "Caller ID", f"cidwatch_cli_calls_today{{{TENANT}}}")]


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
    top = f"topk(20, max by (caller_id) (cidwatch_cli_spam_risk_score{{{TENANT}, {CLI}}}))"
    panel = (table.Panel().title("Riskiest CLIs").datasource(DATASOURCE).span(24).height(10)
             .description("Spam-label risk score (0-100) and the points each factor adds; a heuristic from "
                          "public guidance, not the analytics engines' model (docs/spam-risk.md).")
             .thresholds(thresholds(risk_steps()))
             .sort_by([cb.TableSortByFieldState().display_name("score").desc(True)])
             .with_target(query(top, ref="score", instant=True, table_format=True)))
    renames = {"Value #score": "score"}
    for factor in FACTORS:
        expr = (f'max by (caller_id) (cidwatch_cli_spam_risk_factor{{{TENANT}, {CLI}, factor="{factor}"}})'
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
              [query(f"topk(10, max by (caller_id) (cidwatch_cli_spam_risk_score{{{TENANT}, {CLI}}}))",
                     "{{caller_id}}")],
              "none")
        .min(0).max(100).thresholds(thresholds(risk_steps()))
        .thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphTresholdsStyleMode.DASHED)),
        graph("Short-call share (top 10)", "Share of answered calls under 6 s, rolling 24 h.",
              [query(f"topk(10, max by (caller_id) (cidwatch_cli_short_call_ratio{{{TENANT}, {CLI}}}))",
                     "{{caller_id}}")],
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
        tenant_variables(),
        panels, decision_annotations(TENANT),
    )


# --- Compliance ---------------------------------------------------------------------------------


def french_quota() -> bargauge.Panel:
    """Calls today of caller IDs under the French daily cap (French, not NPV: the only ones the worker
    gives a daily cap), drawn against the cap the worker runs with: `cidwatch_rule_threshold` of the
    rule's block, turned into the gauge's maximum by Grafana's "Config from query results"
    (configFromData), so a changed pack draws without rebuilding the dashboard. Red from 100 % of it."""
    rule = shipped_rule(daily_limit)
    cap = f'max(cidwatch_rule_threshold{{rule="{rule.id}", kind="block"}})'
    used = (f"max by (caller_id) (cidwatch_cli_calls_today{{{TENANT}, {CLI}}}"
            f" and on (caller_id, tenant) cidwatch_cli_daily_cap{{{TENANT}, {CLI}}})")
    return (bargauge.Panel().title("French daily quota use per CLI").datasource(DATASOURCE).span(12).height(10)
            .description(f"Calls in the {rule.timezone} day of French non-NPV caller IDs against the operators' "
                         f"daily cap, read from the worker's rule pack (rule {rule.id}: its warning and block "
                         "thresholds are cidwatch_rule_threshold).")
            .with_target(query(used, "{{caller_id}}", instant=True))
            .with_target(query(cap, "cap", ref="cap", instant=True))
            .with_transformation(DataTransformerConfig(id_val="configFromData", options={
                "configRefId": "cap", "mappings": [{"fieldName": "cap", "handlerKey": "max"}]}))
            .min(0).unit("none")
            .thresholds(db.ThresholdsConfig().mode(ThresholdsMode.PERCENTAGE).steps(
                [Threshold(None, "green"), Threshold(100, "red")]))
            .links([runbook_link(f"Runbook: {rule.id}", rule.id)])
            .display_mode(cm.BarGaugeDisplayMode.GRADIENT).orientation(cm.VizOrientation.HORIZONTAL)
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))


def blocks_table() -> table.Panel:
    """One row per block in force: the caller ID, its tenant, the rule, the scope, since and until
    (empty: until cleared). Two instant queries merged on their labels; a row links to its runbook."""
    selector = f"{TENANT}, {RULE}, {CLI}"
    by = "max by (caller_id, tenant, rule, scope)"
    since = f"{by} (cidwatch_block_since_timestamp_seconds{{{selector}}}) * 1000"
    until = f"{by} (cidwatch_block_until_timestamp_seconds{{{selector}}}) * 1000"
    return (table.Panel().title("Blocks in force").datasource(DATASOURCE).span(24).height(10)
            .description("Every block in force now (the newest, up to the worker's per-CLI limit: "
                         "cidwatch_blocks_unlisted counts the rest). Dialers must not present these caller IDs "
                         "(for the scope shown); `cidwatch blocks list` and the check API give the same list.")
            .with_target(query(since, ref="since", instant=True, table_format=True))
            .with_target(query(until, ref="until", instant=True, table_format=True))
            .with_transformation(DataTransformerConfig(id_val="merge", options={}))
            .with_transformation(DataTransformerConfig(id_val="organize", options={
                "excludeByName": {"Time": True},
                "renameByName": {"caller_id": "CLI", "Value #since": "since", "Value #until": "until"},
                "indexByName": {"caller_id": 0, "tenant": 1, "rule": 2, "scope": 3, "Value #since": 4,
                                "Value #until": 5}}))
            .override_by_name("since", [DynamicConfigValue(id_val="unit", value="dateTimeAsIso")])
            .override_by_name("until", [DynamicConfigValue(id_val="unit", value="dateTimeAsIso"),
                                        DynamicConfigValue(id_val="noValue", value="until cleared")])
            .override_by_name("rule", [DynamicConfigValue(id_val="links", value=[{
                "title": "Runbook: ${__value.text}", "url": f"{RUNBOOK}${{__value.text}}.md",
                "targetBlank": True}])])
            .sort_by([cb.TableSortByFieldState().display_name("since").desc(True)]))


def compliance() -> db.Dashboard:
    selector = f"{RULE}, {TENANT}"
    decisions = f"sum by (rule, kind) (increase(cidwatch_decisions_total{{{selector}}}"
    rule_runbook = runbook_link("Runbook: ${__field.labels.rule}", "${__field.labels.rule}")
    panels = [
        bargauge.Panel().title("Decisions in range").datasource(DATASOURCE).span(12).height(8)
        .description("Alerts, blocks and unblocks decided over the dashboard's time range, by rule and kind.")
        .with_target(query(f"{decisions}{RANGE}))", "{{rule}} {{kind}}", instant=True))
        .unit("none").decimals(0).data_links([rule_runbook])
        .display_mode(cm.BarGaugeDisplayMode.BASIC).orientation(cm.VizOrientation.HORIZONTAL)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)),
        graph("Decisions by rule", "Alerts, blocks and unblocks decided in each interval, by rule and kind "
              "(the legend's total is the range's).",
              [query(f"{decisions}[$__interval]))", "{{rule}} {{kind}}")], "none")
        .draw_style(cm.GraphDrawStyle.BARS).fill_opacity(80).interval("1m").decimals(0)
        .legend(legend_table(["sum", "max"])).data_links([rule_runbook]),
        stat.Panel().title("Active blocks").datasource(DATASOURCE).span(12).height(8)
        .description("Blocks in force now, by rule: dialers must not present these caller IDs.")
        .with_target(query(f"sum by (rule) (cidwatch_active_blocks{{{selector}}})", "{{rule}}", instant=True))
        .thresholds(thresholds([Threshold(None, "green"), Threshold(1, "red")])).no_value("0")
        .data_links([rule_runbook])
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)),
        french_quota(),
        blocks_table(),
    ]
    return dashboard(
        "cidwatch-compliance", "cidwatch / Compliance", "What has cidwatch decided, and what is blocked now?",
        [label_variable("rule", "Rule", "cidwatch_decisions_total"), *tenant_variables()],
        panels, decision_annotations(selector),
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
        graph("DLQ rate", "Records per second sent to the dead-letter topic, by reason (a record that cannot be "
              "read has no tenant yet).",
              [query(f"sum by (reason) (rate(cidwatch_dlq_records_total{{{inst}}}{RATE}))", "{{reason}}")], "ops"),
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
        "cidwatch-pipeline", "cidwatch / Pipeline", "Is the stream keeping up? (per worker: no tenant filter)",
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
    """The dashboard JSON model, through the SDK's own encoder; Prometheus annotations get the fields
    Grafana's Prometheus data source reads for them (`ANNOTATION_OPTIONS`)."""
    model = json.loads(JSONEncoder(sort_keys=True).encode(builder.build()))
    for annotation in model.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            annotation.update(ANNOTATION_OPTIONS)
    return model


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


def annotation_queries(dashboards: dict[str, dict[str, Any]] | None = None) -> list[tuple[str, str, str]]:
    """(dashboard uid, annotation name, PromQL) of every Prometheus annotation."""
    dashboards = all_dashboards() if dashboards is None else dashboards
    return [
        (uid, annotation["name"], annotation["expr"])
        for uid, model in dashboards.items()
        for annotation in model.get("annotations", {}).get("list", [])
        if annotation.get("expr")
    ]
