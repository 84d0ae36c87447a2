"""`cidwatch replay --report`: one self-contained HTML page a compliance officer can open and mail.

Why one file with the PNGs embedded (base64): a replay's output directory gets zipped, attached and
archived; a page that loads its images from beside it breaks as soon as it is moved. Plots are drawn
with matplotlib's Agg backend (no display, no GUI toolkit) through the object API, never pyplot's
global state, so the report can be written from any thread or server.

Four plots: daily volume per caller ID against its cap, decisions over time by rule, the
distribution of spam-label risk scores, answer rate by caller country.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from cidwatch.replay import SUMMARY_ZONE, ReplayResult, daily_frame
from rules.numbers import classify
from rules.pack import PackFile, pack_files
from rules.risk import DEFAULT_CONFIG, FACTORS, RiskConfig, RiskScore
from rules.threshold import spec_of

REPORT_NAME = "report.html"
TOP_CLIS = 8  # small multiples in the daily-volume plot
TOP_COUNTRIES = 15
TOP_RISK_ROWS = 10
TIMELINE_MAX = 300  # decisions drawn one marker each; more are counted per time bin
COUNT_BINS = ("1h", "3h", "6h", "1D", "7D")
MAX_BINS = 120
KIND_STYLE = {"alert": ("o", "#e69f00"), "block": ("s", "#d55e00"), "unblock": ("^", "#009e73"),
              "resolve": ("v", "#56b4e9")}
OVER_COLOUR, UNDER_COLOUR, CAP_COLOUR = "#d55e00", "#0072b2", "#cc0000"
FULL_RISK_NOTE = "Each caller ID's highest score during the replay, as the rule engine computed it (all factors)."
NO_RISK_NOTE = "The spam-label risk rule is not enabled in the rule packs of this replay: no score to show."


# --- public entry point ----------------------------------------------------------------------


def write_report(
    result: ReplayResult,
    out: Path,
    summary: pd.DataFrame,
    *,
    inputs: Sequence[str | Path] = (),
    generated_at: datetime | None = None,
    zone: str = SUMMARY_ZONE,
    rules_dir: Path | None = None,
) -> Path:
    """Write `out`/report.html from a replay's result and its per-CLI summary (and a section per enabled
    jurisdiction pack of `rules_dir`, default the shipped packs); returns the path."""
    out.mkdir(parents=True, exist_ok=True)
    calls = calls_frame(result)
    decisions = decisions_frame(result)
    peaks, risk_note = risk_peaks(result)
    figures = [
        ("Daily volume per caller ID against its cap", daily_volume_note(zone), plot_daily_volume(calls)),
        ("Decisions over time by rule", decisions_note(len(decisions)),
         plot_decisions(decisions)),
        ("Spam-label risk score distribution", risk_note, plot_risk(peaks)),
        ("Answer rate by caller country", "Caller country from the caller ID's numbering plan (invalid: "
         "not a valid E.164 number); bars labelled with the number of judged outbound calls.", plot_answer_rate(calls)),
    ]
    page = render_page(
        result=result, summary=summary, decisions=decisions, peaks=peaks, inputs=[str(p) for p in inputs],
        generated_at=generated_at or datetime.now(UTC), images=[(t, n, png_base64(f)) for t, n, f in figures],
        packs=[pack for pack in pack_files(rules_dir) if pack.rules],
    )
    path = out / REPORT_NAME
    path.write_text(page, encoding="utf-8")
    return path


# --- data ----------------------------------------------------------------------------------------


def calls_frame(result: ReplayResult) -> pd.DataFrame:
    """Judged outbound calls per caller ID and local day, with the caller's country and the cap the
    engine held that caller ID's day to (the French operators' cap, else the spam-label guidance)."""
    frame = daily_frame(result)
    countries = {cli: _country(cli) for cli in frame["caller_id"].unique()}
    return frame.assign(country=frame["caller_id"].map(countries))


def decisions_frame(result: ReplayResult) -> pd.DataFrame:
    columns = ["rule", "kind", "severity", "caller_id", "at"]
    frame = pd.DataFrame([{c: getattr(d, c) for c in columns} for d in result.decisions], columns=columns)
    if not frame.empty:
        frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def risk_peaks(result: ReplayResult) -> tuple[dict[str, RiskScore], str]:
    """Each caller ID's highest score, as the engine computed it during the replay, and a note."""
    if result.risk_peaks:
        return dict(result.risk_peaks), FULL_RISK_NOTE
    return {}, NO_RISK_NOTE


def _country(caller_id: str) -> str:
    info = classify(caller_id)
    return info.region or ("unknown" if info.valid else "invalid")


def decisions_note(count: int) -> str:
    if count <= TIMELINE_MAX:
        return "Each marker is one decision, at its event time (UTC); the count per rule in brackets."
    return (f"{count} decisions: too many to draw one by one, so counted per time bin (event time, UTC), "
            "each rule on its own scale; the count per rule in brackets.")


def daily_volume_note(zone: str) -> str:
    return (f"The {TOP_CLIS} busiest caller IDs; calls per local day ({zone}, the day the French daily cap counts "
            "in). Dashed line: the cap the rule engine held the number to (French non-NPV numbers: the "
            "operators' cap; others: the spam-label guidance of about 100 calls a day). Days over the line are "
            "drawn in red.")


# --- plots -----------------------------------------------------------------------------------------


def _empty(fig: Figure, text: str) -> Figure:
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, color="#666666")
    ax.set_axis_off()
    return fig


def plot_daily_volume(calls: pd.DataFrame, top: int = TOP_CLIS) -> Figure:
    """Small multiples, one per busy caller ID: a bar per local day, the cap as a dashed line."""
    if calls.empty:
        return _empty(Figure(figsize=(11, 3)), "No judged outbound calls")
    totals = calls.groupby("caller_id")["calls"].sum().sort_values(ascending=False, kind="stable")
    busiest = totals.head(top).index.tolist()
    daily = calls.set_index(["caller_id", "day"])["calls"]
    caps = calls.groupby("caller_id")["daily_cap"].first()
    days = sorted(calls["day"].unique())
    cols = min(4, len(busiest))
    rows = math.ceil(len(busiest) / cols)
    fig = Figure(figsize=(11, 2.9 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    for ax, caller_id in zip(axes.flat, busiest, strict=False):
        counts = [int(daily.get((caller_id, day), 0)) for day in days]
        cap, label = cap_label(caps.get(caller_id))
        colours = [OVER_COLOUR if n > cap else UNDER_COLOUR for n in counts]
        bars = ax.bar(range(len(days)), counts, color=colours, width=0.7)
        ax.bar_label(bars, [str(n) if n else "" for n in counts], fontsize=8, padding=2)
        ax.axhline(cap, color=CAP_COLOUR, linestyle="--", linewidth=1.2)
        ax.text(0.02, cap, f" {label}", transform=ax.get_yaxis_transform(), va="bottom", fontsize=8,
                color=CAP_COLOUR)
        ax.set_ylim(0, max(cap, *counts) * 1.2)
        ax.set_title(f"{caller_id} ({_country(caller_id)})", fontsize=10)
        ax.set_xticks(range(len(days)), [d.strftime("%m-%d") for d in days], rotation=45, fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
    for ax in list(axes.flat)[len(busiest):]:
        ax.set_axis_off()
    fig.supylabel("calls per day", fontsize=9)
    return fig


def cap_label(cap: float | None) -> tuple[float, str]:
    """The cap line of a caller ID: what the engine reported, else the spam-label guidance."""
    if cap is None or pd.isna(cap):
        guidance = DEFAULT_CONFIG.daily_calls_guidance
        return guidance, f"guidance {guidance:g}/day"
    return float(cap), f"cap {cap:g}"


def plot_decisions(decisions: pd.DataFrame) -> Figure:
    """One row per rule: every decision as a marker while they are few enough to tell apart, counts
    per time bin once they are not (thousands of markers would only draw a black bar)."""
    if decisions.empty:
        return _empty(Figure(figsize=(11, 3)), "No decisions")
    if len(decisions) <= TIMELINE_MAX:
        return _decision_timeline(decisions)
    return _decision_counts(decisions)


def _decision_timeline(decisions: pd.DataFrame) -> Figure:
    rules = sorted(decisions["rule"].unique(), reverse=True)  # alphabetical from the top
    fig = Figure(figsize=(11, 1.2 + 0.45 * len(rules)), layout="constrained")
    ax = fig.add_subplot()
    row = {rule: i for i, rule in enumerate(rules)}
    for kind, (marker, colour) in KIND_STYLE.items():
        subset = decisions[decisions["kind"] == kind]
        if not subset.empty:
            ax.scatter(subset["at"].dt.tz_localize(None), subset["rule"].map(row), marker=marker, color=colour,
                       s=60, alpha=0.75, edgecolors="black", linewidths=0.4, label=f"{kind} ({len(subset)})")
    totals = decisions["rule"].value_counts()
    ax.set_yticks(range(len(rules)), [f"{rule} ({totals[rule]})" for rule in rules], fontsize=9)
    ax.set_ylim(-0.7, len(rules) - 0.3)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("decision time (UTC)", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return fig


def _decision_counts(decisions: pd.DataFrame) -> Figure:
    """Small multiples sharing the time axis, each rule on its own scale, stacked by kind."""
    rules = sorted(decisions["rule"].unique())
    span = decisions["at"].max() - decisions["at"].min()
    freq = next((f for f in COUNT_BINS if span / pd.Timedelta(f) <= MAX_BINS), COUNT_BINS[-1])
    binned = decisions.assign(bin=decisions["at"].dt.tz_localize(None).dt.floor(freq))
    width = pd.Timedelta(freq) * 0.9
    fig = Figure(figsize=(11, 0.6 + 1.1 * len(rules)), layout="constrained")
    axes = fig.subplots(len(rules), 1, sharex=True, squeeze=False)[:, 0]
    for ax, rule in zip(axes, rules, strict=True):
        counts = binned[binned["rule"] == rule].groupby(["bin", "kind"]).size().unstack(fill_value=0)
        bottom = pd.Series(0, index=counts.index)
        for kind, (_, colour) in KIND_STYLE.items():
            if kind in counts:
                ax.bar(counts.index, counts[kind], width=width, bottom=bottom, color=colour, align="edge",
                       label=kind)
                bottom = bottom + counts[kind]
        ax.set_ylabel(f"{rule}\n({int(counts.to_numpy().sum())})", rotation=0, ha="right", va="center", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    handles = [Patch(color=c, label=k) for k, (_, c) in KIND_STYLE.items()]
    axes[0].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    axes[0].set_title(f"decisions per {freq} bin", fontsize=10)
    axes[-1].set_xlabel("decision time (UTC)", fontsize=9)
    return fig


def plot_risk(peaks: Mapping[str, RiskScore], config: RiskConfig = DEFAULT_CONFIG) -> Figure:
    """Histogram of per-CLI peak scores with the rule's warning and critical thresholds."""
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    if not peaks:
        return _empty(fig, "No caller ID to score")
    ax = fig.add_subplot()
    scores = [s.score for s in peaks.values()]
    ax.hist(scores, bins=range(0, 105, 5), color=UNDER_COLOUR, edgecolor="white")
    for at, name, colour in ((config.warning_at, "warning", "#e69f00"), (config.critical_at, "critical", "#cc0000")):
        ax.axvline(at, color=colour, linestyle="--", linewidth=1.2)
        ax.text(at, 0.98, f"{name} {at:g}", transform=ax.get_xaxis_transform(), ha="center", va="top",
                fontsize=8, color=colour, bbox={"facecolor": "white", "edgecolor": "none", "pad": 1}, zorder=4)
    ax.set_xlim(0, 100)
    ax.set_xlabel("highest spam-label risk score during the replay (0-100)", fontsize=9)
    ax.set_ylabel("caller IDs", fontsize=9)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"{len(scores)} caller IDs, median {pd.Series(scores).median():g}, max {max(scores):g}",
                 fontsize=10)
    return fig


def plot_answer_rate(calls: pd.DataFrame, top: int = TOP_COUNTRIES) -> Figure:
    """Horizontal bars of answer rate per caller country, the busiest countries first."""
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    if calls.empty:
        return _empty(fig, "No judged outbound calls")
    per_cli = calls.drop_duplicates("caller_id")
    grouped = per_cli.groupby("country")[["cli_answered", "cli_calls"]].sum()
    grouped = pd.DataFrame({"mean": grouped["cli_answered"] / grouped["cli_calls"], "size": grouped["cli_calls"]})
    grouped = grouped.sort_values("size", ascending=False, kind="stable").head(top).iloc[::-1]
    fig.set_size_inches(11, 1.2 + 0.45 * len(grouped))
    ax = fig.add_subplot()
    bars = ax.barh(grouped.index, grouped["mean"] * 100, color=UNDER_COLOUR)
    for bar, (rate, n) in zip(bars, grouped.itertuples(index=False), strict=True):
        label = f"{rate:.0%} of {n} call{'' if n == 1 else 's'}"
        ax.text(bar.get_width() + 1, bar.get_y() + bar.get_height() / 2, label, va="center", fontsize=8)
    ax.set_xlim(0, 115)
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("answered calls (%)", fontsize=9)
    ax.tick_params(labelsize=9)
    return fig


def png_base64(fig: Figure) -> str:
    """The figure as a base64 PNG for a data: URI; the figure is not reused."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, facecolor="white")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# --- HTML --------------------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1150px;
       color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.9em; margin-top: 0.3em; }
.grid { display: flex; gap: 2em; flex-wrap: wrap; align-items: flex-start; }
"""


def render_page(
    *,
    result: ReplayResult,
    summary: pd.DataFrame,
    decisions: pd.DataFrame,
    peaks: Mapping[str, RiskScore],
    inputs: list[str],
    generated_at: datetime,
    images: list[tuple[str, str, str]],
    packs: Sequence[PackFile] = (),
) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        "<title>cidwatch replay report</title>", f"<style>{STYLE}</style></head><body>",
        "<h1>cidwatch replay report</h1>",
        f'<p class="meta">Generated at {e(generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))}'
        f"{_period(result)}</p>",
        "<h2>Inputs</h2>", _list(inputs) if inputs else "<p>(not given)</p>",
        '<div class="grid"><div><h2>Counts</h2>', _table(["what", "count"], count_rows(result)), "</div>",
        "<div><h2>Decisions per rule</h2>", decisions_table(decisions), "</div></div>",
    ]
    for title, note, data in images:
        parts.append(f"<h2>{e(title)}</h2><figure>"
                     f'<img alt="{e(title)}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{e(note)}</figcaption></figure>")
        if title.startswith("Spam-label risk"):
            parts.append(risk_table(peaks))
    parts += [jurisdiction_section(pack, result, decisions) for pack in packs]
    parts += ["<h2>Busiest caller IDs</h2>", busiest_table(summary), "</body></html>"]
    return "\n".join(parts)


def jurisdiction_section(pack: PackFile, result: ReplayResult, decisions: pd.DataFrame) -> str:
    """One enabled pack: the judged outbound calls that present a caller ID of its country (all of them
    for a global pack), what its rules decided (kind by rule, and the caller IDs concerned), each rule's
    source, and the records a rule could not judge for lack of a field."""
    e = html.escape
    country = pack.jurisdiction.upper()
    calls = sum(stats.calls for cli, stats in result.callers.items()
                if country == "GLOBAL" or _country(cli) == country)
    who = ("all judged outbound calls" if country == "GLOBAL"
           else f"judged outbound calls presenting a {country} caller ID")
    kinds = list(KIND_STYLE)
    rows = []
    for rule in pack.rules:
        mine = decisions[decisions["rule"] == rule.id] if not decisions.empty else decisions
        counts = Counter(mine["kind"]) if not mine.empty else Counter()
        rows.append([rule.id, *(counts[k] for k in kinds), mine["caller_id"].nunique() if not mine.empty else 0,
                     rule.source])
    lacking = [f"{name}: {result.counts[f'lacking {name}']} of {result.counts['outbound_judged']} outbound calls "
               "lacked it, and these rules did not judge them"
               for name in sorted({need for rule in pack.rules for need in spec_of(rule).needs})
               if result.counts["outbound_judged"]]
    return "\n".join([
        f"<h2>Jurisdiction pack {e(pack.name)} ({e(pack.jurisdiction)})</h2>",
        f"<p>{e(who)}: {calls}.</p>",
        _table(["rule", *kinds, "caller IDs", "source"], rows),
        *(f"<p>{e(line)}</p>" for line in lacking),
    ])


def _period(result: ReplayResult) -> str:
    if result.first_call is None or result.last_call is None:
        return ""
    first, last = result.first_call.astimezone(UTC), result.last_call.astimezone(UTC)
    return f" &middot; calls from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"


def count_rows(result: ReplayResult) -> list[list[Any]]:
    counts = result.counts
    rows: list[list[Any]] = [
        ["records read", counts["read"]], ["rejected", len(result.rejects)],
        ["duplicates ignored", counts["duplicates"]], ["outbound", counts["outbound"]],
        ["inbound", counts["inbound"]], ["internal", counts["internal"]],
        ["unclassified destinations", counts["unclassified_destinations"]],
        ["judged outbound calls", sum(stats.calls for stats in result.callers.values())],
        ["caller IDs", len(result.callers)], ["decisions", len(result.decisions)],
    ]
    rows += [[f"skipped by the adapter: {reason}", n] for reason, n in sorted(result.skipped.items())]
    return rows


def decisions_table(decisions: pd.DataFrame) -> str:
    """Rule by kind, with totals; each rule names its runbook."""
    if decisions.empty:
        return "<p>No decisions.</p>"
    kinds = list(KIND_STYLE)
    by_rule: dict[str, Counter[str]] = {}
    for rule, kind in zip(decisions["rule"], decisions["kind"], strict=True):
        by_rule.setdefault(rule, Counter())[kind] += 1
    rows = [[rule, *(c[k] for k in kinds), sum(c.values()), f"docs/runbooks/{rule}.md"]
            for rule, c in sorted(by_rule.items())]
    rows.append(["total", *(sum(c[k] for c in by_rule.values()) for k in kinds), len(decisions), ""])
    return _table(["rule", *kinds, "total", "runbook"], rows)


def risk_table(peaks: Mapping[str, RiskScore], top: int = TOP_RISK_ROWS) -> str:
    """The riskiest caller IDs with the points each factor gave."""
    if not peaks:
        return ""
    riskiest = sorted(peaks.items(), key=lambda item: (-item[1].score, item[0]))[:top]
    rows = [[cli, score.score, *(score.factors.get(f, 0.0) for f in FACTORS)] for cli, score in riskiest]
    return f"<p>The {len(rows)} riskiest caller IDs (points per factor):</p>" + _table(
        ["caller ID", "score", *(f.replace("_", " ") for f in FACTORS)], rows)


def busiest_table(summary: pd.DataFrame, top: int = 15) -> str:
    """The head of summary.csv: the busiest caller IDs with their answer rate and peak day."""
    if summary.empty or "calls" not in summary:
        return "<p>No calls.</p>"
    columns = [c for c in summary.columns if c in ("caller_id", "calls", "answer_rate", "decisions")
               or c.startswith("peak_day")]
    head = summary.sort_values(["calls", "caller_id"], ascending=[False, True]).head(top)[columns]
    rows = [["" if pd.isna(v) else v for v in row] for row in head.itertuples(index=False)]
    return (f"<p>The {len(rows)} busiest of {len(summary)} caller IDs (all of them are in summary.csv).</p>"
            + _table([c.replace("_", " ") for c in columns], rows))


def _list(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li><code>{html.escape(item)}</code></li>" for item in items) + "</ul>"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(tag: str, value: Any) -> str:
        value = value.item() if hasattr(value, "item") else value  # numpy scalars from pandas
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        text = f"{value:g}" if isinstance(value, float) else str(value)
        return f'<{tag}{" class=n" if numeric else ""}>{html.escape(text)}</{tag}>'

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell("td", v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
