"""The run report: one self-contained HTML page (plots as inline SVG, no script, no external asset) of what a
pipeline run left in the lakehouse, written to <paths.reports>/run-report.html (local disk or object storage).

    location = write_run_report(lake, settings, run_id)    # the latest run when run_id is None

Every section reads its tables through the registry and aggregates in Spark: what reaches the driver is bounded
(histogram bins, the top paths, one row per step, size, rule, score cell, cohort cell, month, band or action),
never one row per customer or event. A section whose table is missing or empty says so in one line (a user may
run some steps only). The sections' data is fetched first (Spark jobs, several at a time: they are small and
latency-bound), then plotted with matplotlib's object API (no pyplot state), and
cdp/templates/run_report.html.j2 lays the page out, escaping every text.
"""

from __future__ import annotations

import base64
import contextlib
import io
import re
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import matplotlib
import numpy as np
from markupsafe import Markup
from matplotlib.colors import LinearSegmentedColormap, to_hex
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch, Rectangle
from matplotlib.path import Path as BezierPath
from matplotlib.ticker import MaxNLocator, PercentFormatter
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from cdp.config import Settings
from cdp.io import Lakehouse
from cdp.reports.storage import join, write_text
from cdp.reports.templating import render
from cdp.tables import (
    CHURN_SCORES,
    CUSTOMER_PROFILE,
    CUSTOMER_VALUE,
    FUNNELS,
    IDENTITY_CLUSTER_SIZES,
    IDENTITY_LINKS,
    JOURNEY_PATHS,
    KPI_COHORT_RETENTION,
    KPI_SATISFACTION,
    LAYERS,
    NEXT_BEST_ACTION,
    PIPELINE_RUNS,
    QUALITY_RESULTS,
    Table,
)

TEMPLATE = "run_report.html.j2"
FILE_NAME = "run-report.html"
SECTION_IDS = ("run-summary", "identity", "data-quality", "funnel", "journey-paths", "rfm-segments",
               "cohort-retention", "satisfaction", "churn-model", "churn-risk", "customer-value", "next-best-action")
TOP_PATHS = 10            # paths per outcome in the Sankey diagram
SIZE_CAP = 20             # customers with this many identity records or more share one bar
PROBABILITY_BINS = 20
VALUE_BINS = 20
MAX_COHORTS = 24
MAX_MONTHS = 36
MAX_FAILURES = 50
MAX_SVG_CHARS = 400_000   # a bigger plot is embedded as a PNG instead
FETCH_THREADS = 4

PRIMARY, ACCENT, MUTED, INK = "#3b6ea8", "#e07b39", "#9aa5b1", "#1f2933"
PALETTE = ["#3b6ea8", "#e07b39", "#5aa469", "#c44e52", "#8172b2", "#937860", "#d684bd", "#7f7f7f", "#bcbd22",
           "#17becf", "#9ec5e8", "#f5b97f", "#a4d49b", "#f09c9e", "#c5b3e0", "#c9a995", "#f4c2e2", "#c7c7c7",
           "#dbdb8d", "#9edae5"]   # ten colours, then ten lighter ones
RISK = LinearSegmentedColormap.from_list("risk", ["#c62828", "#c77c02", "#2f8132"])   # highest band first
STYLE = {
    "svg.fonttype": "none",            # text stays text: small, searchable, escaped by matplotlib
    "svg.hashsalt": "cdp-run-report",  # the same ids every time: the same data gives the same page
    "font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 11, "axes.titleweight": "bold",
    "axes.titlelocation": "left", "axes.labelsize": 9, "axes.labelcolor": "#3e4c59", "axes.edgecolor": MUTED,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "axes.axisbelow": True,
    "grid.color": "#e4e7eb", "grid.linewidth": 0.8, "xtick.color": "#52606d", "ytick.color": "#52606d",
    "legend.frameon": False, "legend.fontsize": 8, "figure.facecolor": "white",
}


# ---------------------------------------------------------------- page data laid out by the template

@dataclass(frozen=True)
class Cell:
    text: str
    numeric: bool = False
    status: str = ""          # a status class of base.html.j2 (ok, warn, bad): the text is shown as a label


@dataclass(frozen=True)
class Grid:
    columns: list[str]
    rows: list[list[Cell]]
    title: str = ""


@dataclass(frozen=True)
class Plot:
    markup: Markup            # an inline <svg> or an <img> with a data: URI, built here from escaped text only
    caption: str


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    source: str               # what the section reads
    absent: str = ""          # one line instead of the content when there is nothing to show
    facts: list[tuple[str, str]] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    grids: list[Grid] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunReportPage:
    lakehouse: str
    run_id: str
    when: str
    generated: str
    sections: list[Section]


@dataclass(frozen=True)
class Absent:
    """Why a section has nothing to show (its table is missing or empty)."""
    line: str


def _n(value) -> Cell:
    return Cell("" if value is None else f"{value:,}", numeric=True)


def _f(value, digits: int = 1) -> Cell:
    return Cell("" if value is None else f"{value:,.{digits}f}", numeric=True)


def _pct(value) -> Cell:
    return Cell("" if value is None else f"{value:.1%}", numeric=True)


def _status(status: str | None) -> str:
    """The status class of a run or step status (cdp.runs: succeeded, failed, interrupted, skipped, running)."""
    return {"succeeded": "ok", "failed": "bad", "interrupted": "bad"}.get(status or "", "warn")


def _time(when: datetime | None) -> str:
    return "unknown" if when is None else f"{when:%Y-%m-%d %H:%M:%S}"


def _fetch(lake: Lakehouse, table: Table, step: str, query: Callable[[], object]) -> object:
    """query()'s result, or Absent when the table is missing or the result empty."""
    if not lake.exists(table):
        return Absent(f"{table} is not in the lakehouse: run the {step} step to fill it.")
    found = query()
    return found if found else Absent(f"{table} is empty.")


class Colours:
    """One colour per name across a page's plots: a channel has the same colour in the funnel and the paths."""

    def __init__(self) -> None:
        self._given: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        return self._given.setdefault(name, PALETTE[len(self._given) % len(PALETTE)])


def band_colours(bands: list[str]) -> dict[str, str]:
    """Risk bands, highest first, from red to green."""
    return {b: to_hex(RISK(i / max(len(bands) - 1, 1))) for i, b in enumerate(bands)}


def band_order(configured: list[str], found: set[str | None]) -> list[str]:
    """The bands found, in the configured order (highest first), unknown ones after it."""
    names = {f or "(none)" for f in found}
    return [b for b in configured if b in names] + sorted(names - set(configured))


# ---------------------------------------------------------------- plots: matplotlib figures to inline markup

def _text(value: object) -> str:
    """Customer text for matplotlib: a '$' would start mathtext (and fail on an odd count)."""
    return str(value).replace("$", r"\$")


def _figure(width: float, height: float) -> Figure:
    """A figure outside pyplot; draw it inside matplotlib.rc_context(STYLE) (run_report_page does)."""
    return Figure(figsize=(width, height), layout="constrained")


_TAG = re.compile(r"<[^>]*>")          # matplotlib escapes every < of a text, so each match is a real tag
_ID_REF = re.compile(r'(\bid="|url\(#|href="#)')
_ACTIVE = re.compile(r"^<(script|foreignobject)\b|\son\w+\s*=", re.I)   # a script or an event handler in a tag


def svg_markup(fig: Figure, name: str) -> Markup:
    """The figure as an inline <svg> whose ids are prefixed by name (several plots share one page), or as a PNG
    when the SVG is too big."""
    with matplotlib.rc_context(STYLE):
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = re.sub(r"<!--.*?-->", "", svg[svg.index("<svg"):], flags=re.S)
    svg = _TAG.sub(lambda tag: _ID_REF.sub(lambda m: f"{m.group(1)}{name}-", tag.group(0)), svg)
    if any(_ACTIVE.search(tag) for tag in _TAG.findall(svg)):   # never from matplotlib: refuse rather than embed
        raise ValueError(f"plot {name}: active content in the SVG")
    if len(svg) <= MAX_SVG_CHARS:
        return Markup(svg.replace("<svg ", f'<svg role="img" aria-label="{name}" ', 1))
    with matplotlib.rc_context(STYLE):
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=110, metadata={"Software": None})
    return png_markup(png.getvalue(), name)


def png_markup(data: bytes, name: str) -> Markup:
    return Markup(f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">')


def _bars(ax, labels: list[str], values: list[float], horizontal: bool = False) -> None:
    positions = list(range(len(labels)))
    if horizontal:
        ax.barh(positions, values, color=PRIMARY, height=0.7)
        ax.set_yticks(positions, [_text(v) for v in labels])
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for p, v in zip(positions, values, strict=True):
            ax.annotate(f"{v:,.0f}", (v, p), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    else:
        ax.bar(positions, values, color=PRIMARY)
        ax.set_xticks(positions, [_text(v) for v in labels])
        ax.grid(axis="x", visible=False)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))


# ---------------------------------------------------------------- run summary

@dataclass(frozen=True)
class StepRun:
    step: str
    status: str | None
    seconds: float | None
    rows_in: int | None
    rows_out: int | None
    error: str | None


@dataclass(frozen=True)
class RunInfo:
    run_id: str | None
    started_at: datetime | None
    status: str | None
    seconds: float | None
    steps: list[StepRun] | None   # None: no run log in the lakehouse


def run_info(lake: Lakehouse, run_id: str | None = None) -> RunInfo:
    """The run (the latest when run_id is None) and its steps, in the order they ended, from the run log (the
    latest event of each wins: cdp.runs); without a run log, the run of the latest quality verdicts."""
    from cdp.runs import latest_events, run_steps

    if lake.exists(PIPELINE_RUNS):
        runs = latest_events(lake.read(PIPELINE_RUNS)).where(F.col("level") == "run")
        run = (runs if run_id is None else runs.where(F.col("run_id") == run_id)).orderBy(
            F.desc("started_at"), F.desc("recorded_at")).first()
        run_id = run_id or (run["run_id"] if run else None)
        if run_id is not None:
            steps = [StepRun(e["step"], e["status"], e["seconds"], e["rows_in"], e["rows_out"], e["error"])
                     for e in run_steps(lake, run_id)]
            return RunInfo(run_id, run["started_at"] if run else None, run["status"] if run else None,
                           run["seconds"] if run else None, steps)
    if not lake.exists(QUALITY_RESULTS):
        return RunInfo(run_id, None, None, None, None)
    quality = lake.read(QUALITY_RESULTS)
    chosen = quality if run_id is None else quality.where(F.col("run_id") == run_id)
    latest = chosen.groupBy("run_id").agg(F.min("validated_at").alias("t")).orderBy(F.desc("t")).first()
    return RunInfo(latest["run_id"] if latest else run_id, latest["t"] if latest else None, None, None, None)


def _summary_section(lake: Lakehouse, info: RunInfo) -> Section:
    facts = [("lakehouse", lake.root), ("run", info.run_id or "no run recorded"), ("started", _time(info.started_at))]
    if info.status:
        facts.append(("status", info.status))
    if info.seconds is not None:
        facts.append(("duration", f"{info.seconds:,.1f} s"))
    if info.steps is None:
        return Section("run-summary", "Run summary", f"{PIPELINE_RUNS}, {QUALITY_RESULTS}", facts=facts,
                       notes=[f"{PIPELINE_RUNS} is not in the lakehouse: no step timings to show."])
    rows = [[Cell(s.step), Cell(s.status or "", status=_status(s.status)), _f(s.seconds), _n(s.rows_in),
             _n(s.rows_out), Cell((s.error or "")[:300])] for s in info.steps]
    grid = Grid(["step", "status", "seconds", "rows in", "rows out", "error"], rows, "Steps of this run")
    return Section("run-summary", "Run summary", str(PIPELINE_RUNS), facts=facts, grids=[grid])


# ---------------------------------------------------------------- identity

def cluster_size_counts(lake: Lakehouse, cap: int = SIZE_CAP) -> list[tuple[int, int]]:
    """(records per customer, customers), sizes of cap or more summed under cap."""
    sizes = lake.read(IDENTITY_CLUSTER_SIZES)
    capped = sizes.groupBy(F.least(F.col("size"), F.lit(cap)).alias("size")).agg(F.sum("clusters").alias("n"))
    return [(r["size"], r["n"]) for r in capped.orderBy("size").collect()]


def rule_contributions(lake: Lakehouse) -> list[tuple[str, int, int]]:
    """(rule, links kept, customers it links), most links first."""
    links = lake.read(IDENTITY_LINKS).groupBy("rule").agg(
        F.count(F.lit(1)).alias("links"), F.countDistinct("customer_id").alias("customers"))
    return [(r["rule"], r["links"], r["customers"]) for r in links.orderBy(F.desc("links"), "rule").collect()]


def _identity_data(lake: Lakehouse) -> object:
    sizes = _fetch(lake, IDENTITY_CLUSTER_SIZES, "identity", lambda: cluster_size_counts(lake))
    return sizes if isinstance(sizes, Absent) else (sizes, _fetch(lake, IDENTITY_LINKS, "identity",
                                                                  lambda: rule_contributions(lake)))


def _identity_section(data: tuple[list[tuple[int, int]], list | Absent]) -> Section:
    sizes, rules = data
    customers = sum(n for _, n in sizes)
    fig = _figure(9.5, 3.2)
    ax = fig.add_subplot()
    counts = dict(sizes)
    shown = range(1, max(counts) + 1)                      # every size up to the largest, empty ones included
    _bars(ax, [f"{s}+" if s == SIZE_CAP else str(s) for s in shown], [counts.get(s, 0) for s in shown])
    ax.set(title="Customers by number of identity records", xlabel="identity records per customer",
           ylabel="customers")
    plots = [Plot(svg_markup(fig, "cluster-sizes"), f"How many source records were resolved into each customer "
                  f"(from {IDENTITY_CLUSTER_SIZES}); 1 is a customer seen in one record only.")]
    facts = [("customers", f"{customers:,}"), ("single-record customers", f"{dict(sizes).get(1, 0) / customers:.1%}")]
    if isinstance(rules, Absent):
        return Section("identity", "Identity resolution", str(IDENTITY_CLUSTER_SIZES), facts=facts, plots=plots,
                       notes=[rules.line])
    fig = _figure(9.5, 0.9 + 0.32 * len(rules))
    ax = fig.add_subplot()
    _bars(ax, [r for r, _, _ in rules], [n for _, n, _ in rules], horizontal=True)
    ax.set(title="Links kept per match rule", xlabel="links between two identity records")
    plots.append(Plot(svg_markup(fig, "match-rules"), (
        f"Which rule linked records into customers (from {IDENTITY_LINKS}; 'probabilistic' is a Splink match). "
        "A deterministic rule links each record of a block to one of them, so links count records joined.")))
    grid = Grid(["rule", "links", "customers linked"], [[Cell(r), _n(n), _n(c)] for r, n, c in rules])
    return Section("identity", "Identity resolution", f"{IDENTITY_CLUSTER_SIZES}, {IDENTITY_LINKS}", facts=facts,
                   plots=plots, grids=[grid])


# ---------------------------------------------------------------- data quality

@dataclass(frozen=True)
class TableVerdict:
    layer: str
    table: str
    expectations: int
    passed: int
    failed_critical: int
    failed_row: int


@dataclass(frozen=True)
class FailedExpectation:
    table: str
    expectation: str
    column: str | None
    level: str
    unexpected: int | None
    unexpected_percent: float | None


@dataclass(frozen=True)
class QualityVerdicts:
    run_id: str
    tables: list[TableVerdict]        # bronze, silver, gold, then by name
    failures: list[FailedExpectation]  # critical first, at most MAX_FAILURES
    failed: int                       # failures in all


def quality_verdicts(lake: Lakehouse, run_id: str) -> QualityVerdicts:
    """The run's verdicts per table and its failed expectations."""
    results = lake.read(QUALITY_RESULTS).where(F.col("run_id") == run_id)
    failed = ~F.coalesce(F.col("success"), F.lit(False))
    tables = results.groupBy("table_name").agg(
        F.count(F.lit(1)).alias("n"), F.sum(F.col("success").cast("int")).alias("passed"),
        F.sum((failed & (F.col("level") == "critical")).cast("int")).alias("critical"),
        F.sum((failed & (F.col("level") != "critical")).cast("int")).alias("row")).collect()
    verdicts = sorted((TableVerdict(t["table_name"].partition(".")[0], t["table_name"], t["n"], t["passed"] or 0,
                                    t["critical"] or 0, t["row"] or 0) for t in tables),
                      key=lambda v: (LAYERS.index(v.layer) if v.layer in LAYERS else len(LAYERS), v.table))
    failures = (results.where(failed).orderBy(F.col("level") != "critical", "table_name", "expectation")
                .limit(MAX_FAILURES).collect()) if any(v.failed_critical + v.failed_row for v in verdicts) else []
    listed = [FailedExpectation(f["table_name"], f["expectation"], f["column"], f["level"], f["unexpected_count"],
                                f["unexpected_percent"]) for f in failures]
    return QualityVerdicts(run_id, verdicts, listed, sum(v.failed_critical + v.failed_row for v in verdicts))


def _quality_data(lake: Lakehouse, run_id: str | None) -> object:
    if run_id is None:
        return Absent("No run recorded: nothing was validated.")
    found = _fetch(lake, QUALITY_RESULTS, "silver", lambda: quality_verdicts(lake, run_id))
    return found if isinstance(found, Absent) or found.tables else Absent(
        f"{QUALITY_RESULTS} holds no verdict of run {run_id}.")


def _quality_section(q: QualityVerdicts) -> Section:
    layers: dict[str, list[int]] = {}
    for v in q.tables:
        counts = layers.setdefault(v.layer, [0, 0, 0])
        counts[0] += 1
        counts[1] += v.expectations
        counts[2] += v.failed_critical + v.failed_row
    facts = [(f"{layer} tables", f"{t} validated, {e:,} expectations, {f:,} failed") for layer, (t, e, f) in
             layers.items()]
    rows = [[Cell(v.layer), Cell(v.table.partition(".")[2] or v.table), _n(v.expectations), _n(v.passed),
             _n(v.failed_critical), _n(v.failed_row),
             Cell("gate failed" if v.failed_critical else "passed", status="bad" if v.failed_critical else "ok")]
            for v in q.tables]
    grids = [Grid(["layer", "table", "expectations", "passed", "critical failed", "row-level failed", "verdict"],
                  rows, f"Tables validated in run {q.run_id}")]
    notes = [] if q.failures else ["Every expectation of this run passed."]
    if q.failures:
        grids.append(Grid(["table", "expectation", "column", "level", "unexpected rows", "unexpected %"],
                          [[Cell(f.table), Cell(f.expectation), Cell(f.column or ""),
                            Cell(f.level, status="bad" if f.level == "critical" else "warn"), _n(f.unexpected),
                            _f(f.unexpected_percent, 2)] for f in q.failures], "Failed expectations"))
        if q.failed > len(q.failures):
            notes.append(f"{len(q.failures)} of {q.failed:,} failed expectations listed, critical ones first.")
    return Section("data-quality", "Data quality verdicts", str(QUALITY_RESULTS), facts=facts, grids=grids,
                   notes=notes)


# ---------------------------------------------------------------- funnel

@dataclass(frozen=True)
class FunnelStep:
    number: int
    step: str
    entrants: int
    by_channel: dict[str, int]


@dataclass(frozen=True)
class Funnel:
    steps: list[FunnelStep]
    first_period: date | None
    last_period: date | None


def funnel_steps(lake: Lakehouse) -> Funnel | None:
    """The funnel summed over all periods: sessions reaching each step, per entry channel."""
    cells = (lake.read(FUNNELS).groupBy("step_number", "step", "channel")
             .agg(F.sum("entrants").alias("n"), F.min("period").alias("first"), F.max("period").alias("last"))
             .orderBy("step_number", "channel").collect())
    if not cells:
        return None
    steps: dict[tuple[int, str], dict[str, int]] = {}
    for c in cells:
        steps.setdefault((c["step_number"], c["step"]), {})[c["channel"] or "(unknown)"] = c["n"] or 0
    return Funnel([FunnelStep(n, s, sum(ch.values()), ch) for (n, s), ch in sorted(steps.items())],
                  min(c["first"] for c in cells), max(c["last"] for c in cells))


def _funnel_section(funnel: Funnel, colours: Colours) -> Section:
    steps = funnel.steps
    channels = sorted({c for s in steps for c in s.by_channel}, key=lambda c: (-sum(s.by_channel.get(c, 0)
                                                                                    for s in steps), c))
    fig = _figure(9.5, 1.2 + 0.45 * len(steps))
    ax = fig.add_subplot()
    positions = list(range(len(steps)))
    left = [0] * len(steps)
    for channel in channels:
        values = [s.by_channel.get(channel, 0) for s in steps]
        ax.barh(positions, values, left=left, color=colours(channel), label=_text(channel))
        left = [a + b for a, b in zip(left, values, strict=True)]
    top = steps[0].entrants or 1
    for p, s in zip(positions, steps, strict=True):
        ax.annotate(f"{s.entrants:,} ({s.entrants / top:.0%})", (s.entrants, p), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=8)
    ax.set_yticks(positions, [_text(s.step) for s in steps])
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    ax.set_xlim(0, max(s.entrants for s in steps) * 1.15 or 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title="Sessions reaching each funnel step, by entry channel", xlabel="sessions")
    ax.legend(title="entry channel", title_fontsize=8, loc="lower right", ncols=min(len(channels), 4))
    rows = [[Cell(s.step), _n(s.entrants), _pct(s.entrants / prev.entrants if prev and prev.entrants else None),
             _pct(s.entrants / top)] for prev, s in zip([None, *steps[:-1]], steps, strict=True)]
    return Section("funnel", "Purchase funnel", str(FUNNELS), plots=[Plot(svg_markup(fig, "funnel"), (
        f"Sessions that reached each step in order, summed over the periods {funnel.first_period} to "
        f"{funnel.last_period} (from {FUNNELS}); the percentage is conversion from the first step. A session "
        "counts under the channel of its first touchpoint."))],
        grids=[Grid(["step", "sessions", "from the previous step", "from the first step"], rows)])


# ---------------------------------------------------------------- journey paths (Sankey)

@dataclass(frozen=True)
class JourneyPath:
    outcome: str
    elements: list[str]
    journeys: int
    share: float


def top_paths(lake: Lakehouse, n: int = TOP_PATHS) -> list[JourneyPath]:
    """The n most frequent paths of each outcome, by outcome then rank."""
    rows = (lake.read(JOURNEY_PATHS).where(F.col("rank") <= n).orderBy("outcome", "rank")
            .select("outcome", "path", "journeys", "share").collect())
    return [JourneyPath(r["outcome"], r["path"].split(" > "), r["journeys"] or 0, r["share"] or 0.0) for r in rows]


Node = tuple[int, str]   # (column, path element)


def sankey_flows(paths: list[JourneyPath], outcome: str) -> tuple[dict[Node, int], dict[tuple[Node, Node], int]]:
    """Nodes with the journeys through them and the links between consecutive columns; paths are right-aligned,
    so every last touchpoint sits in the column before the outcome's."""
    columns = max((len(p.elements) for p in paths), default=0)
    nodes: dict[Node, int] = {}
    links: dict[tuple[Node, Node], int] = {}
    for p in paths:
        keys = [(columns - len(p.elements) + i, e) for i, e in enumerate(p.elements)] + [(columns, outcome)]
        for k in keys:
            nodes[k] = nodes.get(k, 0) + p.journeys
        for a, b in zip(keys, keys[1:], strict=False):
            links[(a, b)] = links.get((a, b), 0) + p.journeys
    return nodes, links


def sankey_layout(nodes: dict[Node, int], links: dict[tuple[Node, Node], int], gap: float = 0.025
                  ) -> tuple[dict[Node, tuple[float, float]], float]:
    """(top, height) of every node in [0, 1] (0 = top) and the height of one journey. Columns are centred; the
    last is ordered by size, the others by where their journeys go (fewer crossings)."""
    columns: dict[int, list[Node]] = {}
    for k in nodes:
        columns.setdefault(k[0], []).append(k)
    scale = min((1 - gap * (len(ks) - 1)) / max(sum(nodes[k] for k in ks), 1) for ks in columns.values())
    place: dict[Node, tuple[float, float]] = {}

    def stack(order: list[Node]) -> None:
        y = (1 - sum(nodes[k] for k in order) * scale - gap * (len(order) - 1)) / 2
        for k in order:
            place[k] = (y, nodes[k] * scale)
            y += nodes[k] * scale + gap

    def centre(k: Node) -> float:
        out = [(place[t][0] + place[t][1] / 2, v) for (s, t), v in links.items() if s == k]
        return sum(y * v for y, v in out) / max(sum(v for _, v in out), 1)

    last = max(columns, default=0)
    if columns:
        stack(sorted(columns[last], key=lambda k: (-nodes[k], k[1])))
    for c in range(last - 1, -1, -1):
        stack(sorted(columns.get(c, []), key=lambda k: (centre(k), -nodes[k], k[1])))
    return place, scale


def _sankey_plot(paths: list[JourneyPath], outcome: str, name: str, colours: Colours) -> Markup:
    nodes, links = sankey_flows(paths, outcome)
    place, scale = sankey_layout(nodes, links)
    last, width = max(c for c, _ in nodes), 0.1
    fig = _figure(9.5, 5.2)
    ax = fig.add_subplot()
    out_y = {k: place[k][0] for k in nodes}
    in_y = dict(out_y)
    # sources top to bottom, then targets: a node's bands leave in the order of their targets and arrive in the
    # order of their sources
    for (s, t), v in sorted(links.items(), key=lambda kv: (place[kv[0][0]][0], place[kv[0][1]][0])):
        h, y0, y1 = v * scale, out_y[s], in_y[t]
        out_y[s] += h
        in_y[t] += h
        x0, x1 = s[0] + width, t[0]
        xm = (x0 + x1) / 2
        band = BezierPath([(x0, y0), (xm, y0), (xm, y1), (x1, y1), (x1, y1 + h), (xm, y1 + h), (xm, y0 + h),
                           (x0, y0 + h), (x0, y0)],
                          [BezierPath.MOVETO, *[BezierPath.CURVE4] * 3, BezierPath.LINETO,
                           *[BezierPath.CURVE4] * 3, BezierPath.CLOSEPOLY])
        ax.add_patch(PathPatch(band, facecolor=colours(s[1]), edgecolor="none", alpha=0.35))
    for (c, label), (y, h) in place.items():
        ax.add_patch(Rectangle((c, y), width, h, facecolor=colours(label) if c < last else INK, edgecolor="none"))
        channel, _, event = label.partition(":")
        count = f"{nodes[(c, label)]:,}"
        text = (f"{channel}\n{event} · {count}" if event and h >= 0.045 else
                f"{event or channel} · {count}" if h >= 0.022 else "")
        if text:
            ax.text(c + width + 0.03, y + h / 2, _text(text), va="center", ha="left", fontsize=7, color=INK,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.75})
    for c in range(last + 1):
        heading = "outcome" if c == last else "last touchpoint" if c == last - 1 else f"{last - c} before"
        ax.text(c, -0.03, heading, ha="left", va="bottom", fontsize=8, color="#52606d")
    ax.set_xlim(-0.05, last + 1.0)
    ax.set_ylim(1.02, -0.08)
    ax.axis("off")
    ax.set_title(_text(f"Top {len(paths)} paths before '{outcome}'"))
    return svg_markup(fig, name)


def _paths_section(paths: list[JourneyPath], colours: Colours) -> Section:
    plots, grids = [], []
    for i, outcome in enumerate(sorted({p.outcome for p in paths}, key=lambda o: (o != "purchase", o))):
        chosen = [p for p in paths if p.outcome == outcome]
        plots.append(Plot(_sankey_plot(chosen, outcome, f"paths-{i}", colours), (
            f"The {len(chosen)} most frequent paths before '{outcome}' (from {JOURNEY_PATHS}), "
            f"{sum(p.share for p in chosen):.0%} of its journeys: each column is a touchpoint, paths end at the "
            "outcome, band width is journeys. Small nodes are unlabelled; the table lists every path.")))
        grids.append(Grid(["rank", "path", "journeys", "share"],
                          [[_n(r), Cell(" > ".join(p.elements)), _n(p.journeys), _pct(p.share)]
                           for r, p in enumerate(chosen, 1)], f"Paths before '{outcome}'"))
    return Section("journey-paths", "Top journey paths", str(JOURNEY_PATHS), plots=plots, grids=grids)


# ---------------------------------------------------------------- RFM segments

RfmCell = tuple[int | None, float | None, str, int]   # (r_score, fm_score, rfm_segment, customers)
FM_SCORES = [1 + 0.5 * i for i in range(9)]


def rfm_cells(lake: Lakehouse) -> list[RfmCell]:
    """Customers per score cell and segment (customers without a purchase have no scores)."""
    cells = lake.read(CUSTOMER_PROFILE).groupBy("r_score", "fm_score", "rfm_segment").agg(
        F.count(F.lit(1)).alias("n"))
    return [(c["r_score"], c["fm_score"], c["rfm_segment"] or "(none)", c["n"])
            for c in cells.orderBy("r_score", "fm_score", "rfm_segment").collect()]


def segment_map(settings: Settings) -> dict[tuple[int, float], str]:
    """The segment of every (R, FM) score cell by conf/profile.yaml rfm.segments (the first rule that matches)."""
    from cdp.profile.config import load_profile_config

    rules = load_profile_config(settings).rfm.segments
    return {(r, fm): next(s.name for s in rules if s.matches(r, fm)) for r in range(1, 6) for fm in FM_SCORES}


def _rfm_plot(cells: list[RfmCell], segments: dict[tuple[int, float], str]) -> Markup:
    counts = np.zeros((len(FM_SCORES), 5))
    for r, fm, _, n in cells:
        if (r, fm) in segments:
            counts[FM_SCORES.index(fm), r - 1] += n
    fig = _figure(9.5, 5.6)
    ax = fig.add_subplot()
    image = ax.imshow(counts, origin="lower", cmap="Blues", aspect="auto", extent=(0.5, 5.5, 0.75, 5.25),
                      vmin=0, vmax=max(counts.max(), 1))
    fig.colorbar(image, ax=ax, label="customers", shrink=0.8)
    ax.grid(False)
    dark = counts.max() * 0.6
    for (row, col), n in np.ndenumerate(counts):
        if n:
            ax.text(col + 1, FM_SCORES[row] + 0.07, f"{n:,.0f}", ha="center", va="center", fontsize=8,
                    color="white" if n > dark else INK)
    regions: dict[str, list[tuple[int, float]]] = {}
    for (r, fm), name in segments.items():
        regions.setdefault(name, []).append((r, fm))
        if segments.get((r + 1, fm), name) != name:         # a line between neighbouring cells of two segments
            ax.plot([r + 0.5, r + 0.5], [fm - 0.25, fm + 0.25], color=INK, linewidth=1.4)
        if segments.get((r, fm + 0.5), name) != name:
            ax.plot([r - 0.5, r + 0.5], [fm + 0.25, fm + 0.25], color=INK, linewidth=1.4)
    for name, region in regions.items():                     # the name once, in the cell nearest the middle
        mid_r, mid_fm = sum(c[0] for c in region) / len(region), sum(c[1] for c in region) / len(region)
        r, fm = min(region, key=lambda c: ((c[0] - mid_r) ** 2 + (2 * (c[1] - mid_fm)) ** 2, c))
        shade = counts[FM_SCORES.index(fm), r - 1] > dark
        ax.text(r, fm - 0.1, _text(name), ha="center", va="center", fontsize=6.5, fontweight="bold",
                color="white" if shade else "#52606d")
    ax.set_xticks(range(1, 6))
    ax.set_yticks(FM_SCORES, [f"{v:g}" for v in FM_SCORES])
    ax.set(title="Customers by recency and frequency-monetary score", xlabel="recency score R (5 = most recent)",
           ylabel="FM score = (F + M) / 2 (5 = most purchases, highest spend)")
    return svg_markup(fig, "rfm-map")


def _rfm_section(cells: list[RfmCell], segments: dict[tuple[int, float], str]) -> Section:
    sizes: dict[str, int] = {}
    for _, _, seg, n in cells:
        sizes[seg] = sizes.get(seg, 0) + n
    total = sum(sizes.values())
    rows = [[Cell(s), _n(n), _pct(n / total)] for s, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))]
    return Section("rfm-segments", "RFM segment map", str(CUSTOMER_PROFILE), plots=[Plot(
        _rfm_plot(cells, segments), (
            f"Purchasing customers of {CUSTOMER_PROFILE} by recency score and FM score (quintiles among purchasing "
            "customers); colour and number are customers. Lines and names are the segments of conf/profile.yaml "
            "rfm.segments. The table counts every customer by the segment the profile gives them."))],
        grids=[Grid(["segment", "customers", "share"], rows)])


# ---------------------------------------------------------------- cohort retention

CohortCell = tuple[date, int, int, float]   # (cohort_month, months_since_first, customers, retention_rate)


def cohort_retention(lake: Lakehouse, max_cohorts: int = MAX_COHORTS) -> list[CohortCell]:
    """The latest max_cohorts cohorts over their first max_cohorts months."""
    retention = lake.read(KPI_COHORT_RETENTION)
    latest = F.max("cohort_month").over(Window.partitionBy())   # a mart of months x months: one partition is fine
    rows = (retention.where(F.col("months_since_first") < max_cohorts).withColumn("_latest", latest)
            .where(F.col("cohort_month") > F.add_months("_latest", -max_cohorts))
            .orderBy("cohort_month", "months_since_first").collect())
    return [(r["cohort_month"], r["months_since_first"], r["customers"], r["retention_rate"]) for r in rows]


def _cohort_plot(cells: list[CohortCell]) -> Markup:
    cohorts = sorted({c for c, _, _, _ in cells})
    months = max(m for _, m, _, _ in cells) + 1
    rates = np.full((len(cohorts), months), np.nan)
    sizes: dict[date, int] = {}
    for c, m, n, rate in cells:
        rates[cohorts.index(c), m] = np.nan if rate is None else rate
        sizes[c] = n
    later = rates[:, 1:] if months > 1 else rates
    top = float(np.nanmax(later)) if np.isfinite(later).any() and np.nanmax(later) > 0 else 1.0
    fig = _figure(9.5, 1.3 + 0.26 * len(cohorts))
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap="Blues", aspect="auto", vmin=0, vmax=top)
    fig.colorbar(image, ax=ax, label="retention", shrink=0.8, format=PercentFormatter(1.0, decimals=0))
    ax.grid(False)
    for (row, col), rate in np.ndenumerate(rates):
        if np.isfinite(rate):
            ax.text(col, row, f"{rate:.0%}", ha="center", va="center", fontsize=6,
                    color="white" if rate > top * 0.6 else INK)
    ax.set_yticks(range(len(cohorts)), [f"{c:%Y-%m}  (n={sizes[c]:,})" for c in cohorts])
    ax.set_xticks(range(months))
    ax.tick_params(axis="both", labelsize=7)
    ax.set(title="Purchase retention by first-purchase cohort", xlabel="months since the first purchase",
           ylabel="cohort (first-purchase month)")
    return svg_markup(fig, "cohorts")


def _cohort_section(cells: list[CohortCell]) -> Section:
    return Section("cohort-retention", "Cohort retention", str(KPI_COHORT_RETENTION), plots=[Plot(
        _cohort_plot(cells), (
            f"Share of each first-purchase cohort that purchased N months later (from {KPI_COHORT_RETENTION}; the "
            f"latest {MAX_COHORTS} cohorts). Month 0 is the whole cohort, so the colour scale stops at the highest "
            "later rate; the last month of the data may be incomplete."))])


# ---------------------------------------------------------------- satisfaction

SatisfactionMonth = tuple[date, float | None, int, float | None, int]  # month, nps, answers, csat_avg, answers


def satisfaction_trend(lake: Lakehouse, months: int = MAX_MONTHS) -> list[SatisfactionMonth]:
    """The latest `months` months, oldest first."""
    rows = lake.read(KPI_SATISFACTION).orderBy(F.desc("month")).limit(months).collect()
    return [(r["month"], r["nps"], r["nps_responses"] or 0, r["csat_avg"], r["csat_responses"] or 0)
            for r in reversed(rows)]


def _satisfaction_section(trend: list[SatisfactionMonth]) -> Section:
    fig = _figure(9.5, 5.0)
    nps_ax, csat_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    first = trend[0][0]
    x = [(t[0].year - first.year) * 12 + t[0].month - first.month for t in trend]   # months without answers: gaps
    answers = nps_ax.twinx()
    answers.bar(x, [t[2] for t in trend], color=MUTED, alpha=0.35, width=0.7)
    answers.set_ylabel("NPS answers", color="#7b8794")
    answers.grid(False)
    answers.yaxis.set_major_locator(MaxNLocator(integer=True))
    answers.spines["right"].set_visible(True)
    nps_ax.set_zorder(answers.get_zorder() + 1)
    nps_ax.patch.set_visible(False)
    nps_ax.plot(x, [np.nan if t[1] is None else t[1] for t in trend], color=PRIMARY, marker="o", markersize=3.5,
                linewidth=1.8)
    nps_ax.set_ylim(-105, 105)
    nps_ax.axhline(0, color=MUTED, linewidth=0.8)
    nps_ax.set(title="Net Promoter Score and CSAT by month", ylabel="NPS (-100 to 100)")
    csat_ax.plot(x, [np.nan if t[3] is None else t[3] for t in trend], color=ACCENT, marker="o", markersize=3.5,
                 linewidth=1.8)
    csat_ax.set(ylabel="average CSAT (1-5)", ylim=(1, 5), xlabel="month")
    span = x[-1] + 1
    step = -(-span // 12)                                   # at most 12 month labels
    ticks = list(range(0, span, step))
    csat_ax.set_xticks(ticks, [f"{first.year + (first.month - 1 + k) // 12}-{(first.month - 1 + k) % 12 + 1:02d}"
                               for k in ticks])
    csat_ax.set_xlim(-0.7, span - 0.3)
    latest = trend[-1]
    facts = [("latest month", f"{latest[0]:%Y-%m}"),
             ("NPS that month", "no answer" if latest[1] is None else f"{latest[1]:+.0f}"),
             ("NPS answers shown", f"{sum(t[2] for t in trend):,}")]
    return Section("satisfaction", "Customer satisfaction (NPS)", str(KPI_SATISFACTION), facts=facts, plots=[Plot(
        svg_markup(fig, "satisfaction"), (
            f"Monthly NPS (% promoters - % detractors; grey bars: answers) and average CSAT from {KPI_SATISFACTION}, "
            f"the latest {MAX_MONTHS} months at most. A month with few answers swings widely."))])


# ---------------------------------------------------------------- churn model (MLflow)

@dataclass(frozen=True)
class ChurnModelInfo:
    name: str
    version: str
    aliases: list[str]
    run_id: str
    metrics: dict[str, float]
    roc_png: bytes | None


def churn_model_info(lake: Lakehouse, settings: Settings) -> ChurnModelInfo | Absent:
    """What MLflow holds on the model version that scored gold.churn_scores (the champion when there are no
    scores): its training run's held-out metrics and the ROC curve image that run logged."""
    from cdp.ml.config import load_churn_config
    from cdp.tracking import tracking_uri

    uri = tracking_uri(settings)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return Absent(f"No MLflow store at {uri}: run the churn_model step to train and register a model.")
    scored = (lake.read(CHURN_SCORES).groupBy("model_name", "model_version").count().orderBy(F.desc("count"))
              .first() if lake.exists(CHURN_SCORES) else None)
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=uri)
    name = scored["model_name"] if scored else load_churn_config(settings).model.name
    try:
        version = (client.get_model_version(name, scored["model_version"]) if scored
                   else client.get_model_version_by_alias(name, "champion"))
        run = client.get_run(version.run_id)
    except MlflowException:
        which = f"version {scored['model_version']}" if scored else "with the champion alias"
        return Absent(f"MLflow at {uri} has no model {name} {which}: run the churn_model step.")
    try:   # stderr: MLflow draws a progress bar for every download
        with tempfile.TemporaryDirectory(prefix="cdp-report-") as tmp, contextlib.redirect_stderr(io.StringIO()):
            roc = Path(download_artifacts(run_id=run.info.run_id, artifact_path="evaluation/roc_curve.png",
                                          dst_path=tmp, tracking_uri=uri)).read_bytes()
    except (MlflowException, OSError):
        roc = None
    return ChurnModelInfo(name, str(version.version), sorted(version.aliases or []), run.info.run_id,
                          dict(run.data.metrics), roc)


def _churn_model_section(info: ChurnModelInfo) -> Section:
    m = info.metrics
    aliases = f" ({', '.join(info.aliases)})" if info.aliases else ""
    facts = [("model", f"{info.name} version {info.version}{aliases}"), ("MLflow run", info.run_id)]
    figures = (("ROC-AUC", "roc_auc"), ("PR-AUC", "pr_auc"), ("lift in the top decile", "top_decile_lift"),
               ("churners caught in the top decile", "top_decile_capture"), ("churn rate (base rate)", "base_rate"),
               ("expected calibration error", "calibration_error"))
    rows = [[Cell(label), _f(m[f"best_{key}"], 3), _f(m.get(f"recency_baseline_{key}"), 3)]
            for label, key in figures if f"best_{key}" in m]
    plots = [Plot(png_markup(info.roc_png, "roc-curve"), (
        f"ROC curve on the held-out snapshots as training run {info.run_id} logged it to MLflow "
        "(evaluation/roc_curve.png); the report shows it, it does not recompute it."))] if info.roc_png else []
    notes = [] if info.roc_png else ["The training run logged no ROC curve: only its metrics are shown."]
    return Section("churn-model", "Churn model", f"MLflow: the model version that scored {CHURN_SCORES} and its "
                   "training run", facts=facts, plots=plots, notes=notes,
                   grids=[Grid(["held-out figure", "model", "recency-only baseline"], rows)] if rows else [])


# ---------------------------------------------------------------- churn risk

def binned_counts(frame: DataFrame, column: str, low: float, high: float, bins: int, by: str | None = None
                  ) -> list[tuple[int, str | None, int]]:
    """(bin, group, rows) of column's non-null values in `bins` equal bins over [low, high], counted in Spark;
    values outside go to the first or the last bin."""
    width = (high - low) / bins if high > low else 1.0
    bucket = F.least(F.greatest(F.floor((F.col(column) - F.lit(low)) / F.lit(width)), F.lit(0)), F.lit(bins - 1))
    keys = [bucket.cast("int").alias("bin"), (F.col(by) if by else F.lit(None).cast("string")).alias("group")]
    rows = frame.where(F.col(column).isNotNull()).groupBy(*keys).agg(F.count(F.lit(1)).alias("n"))
    return [(r["bin"], r["group"], r["n"]) for r in rows.orderBy("bin", "group").collect()]


def risk_histogram(lake: Lakehouse) -> list[tuple[int, str | None, int]]:
    """Scored customers per churn-probability bin and risk band."""
    return binned_counts(lake.read(CHURN_SCORES), "churn_probability", 0.0, 1.0, PROBABILITY_BINS, "risk_band")


def _risk_section(counts: list[tuple[int, str | None, int]], configured_bands: list[str]) -> Section:
    bands = band_order(configured_bands, {g for _, g, _ in counts})
    colours = band_colours(configured_bands)
    fig = _figure(9.5, 3.4)
    ax = fig.add_subplot()
    width = 1 / PROBABILITY_BINS
    bottom = [0] * PROBABILITY_BINS
    totals: dict[str, int] = {}
    for band in bands:
        values = [0] * PROBABILITY_BINS
        for b, g, n in counts:
            if (g or "(none)") == band:
                values[b] += n
        totals[band] = sum(values)
        ax.bar([(i + 0.5) * width for i in range(PROBABILITY_BINS)], values, width=width * 0.92, bottom=bottom,
               color=colours.get(band, MUTED), label=_text(f"{band} ({totals[band]:,})"))
        bottom = [a + b for a, b in zip(bottom, values, strict=True)]
    ax.set(title="Scored customers by churn probability and risk band", xlabel="churn probability",
           ylabel="customers", xlim=(0, 1))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="x", visible=False)
    ax.legend(title="risk band", title_fontsize=8)
    total = sum(totals.values())
    facts = [("customers scored", f"{total:,}")] + [(f"{b} risk", f"{n:,} ({n / total:.0%})")
                                                    for b, n in totals.items()]
    return Section("churn-risk", "Churn risk distribution", str(CHURN_SCORES), facts=facts, plots=[Plot(
        svg_markup(fig, "risk"), (f"Active customers of {CHURN_SCORES} in {PROBABILITY_BINS} probability bins, "
                                  "coloured by risk band (conf/churn.yaml scoring.risk_bands)."))])


# ---------------------------------------------------------------- customer value

@dataclass(frozen=True)
class ValueDistribution:
    customers: int
    total: float
    median: float
    p99: float
    mean_p_alive: float | None
    bins: list[tuple[int, int]]       # (bin over [0, p99], customers); the last bin holds everything above


def value_distribution(lake: Lakehouse, bins: int = VALUE_BINS) -> ValueDistribution | None:
    """Expected value's summary and its histogram up to the 99th percentile (None: no customer)."""
    value = lake.read(CUSTOMER_VALUE)
    s = value.agg(F.count(F.lit(1)).alias("n"), F.sum("expected_value").alias("total"),
                  F.percentile_approx("expected_value", [0.5, 0.99], 10_000).alias("q"),
                  F.avg("p_alive").alias("p_alive")).first()
    if not s["n"] or s["q"] is None:
        return None
    median, p99 = float(s["q"][0]), float(s["q"][1])
    counts = binned_counts(value, "expected_value", 0.0, max(p99, 1e-9), bins)
    return ValueDistribution(s["n"], float(s["total"] or 0.0), median, p99, s["p_alive"],
                             [(b, n) for b, _, n in counts])


def _value_section(dist: ValueDistribution, horizon_days: int) -> Section:
    width = max(dist.p99, 1e-9) / VALUE_BINS
    fig = _figure(9.5, 3.4)
    ax = fig.add_subplot()
    heights = dict(dist.bins)
    ax.bar([(i + 0.5) * width for i in range(VALUE_BINS)], [heights.get(i, 0) for i in range(VALUE_BINS)],
           width=width * 0.92, color=[PRIMARY] * (VALUE_BINS - 1) + [ACCENT])
    ax.axvline(dist.median, color=INK, linestyle="--", linewidth=1, label=f"median {dist.median:,.0f}")
    ax.set(title=f"Expected customer value over the next {horizon_days} days", ylabel="customers",
           xlabel="expected value (last bar: the 99th percentile and above)")
    ax.grid(axis="x", visible=False)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    facts = [("customers valued", f"{dist.customers:,}"), ("total expected value", f"{dist.total:,.0f}"),
             ("median", f"{dist.median:,.2f}"), ("99th percentile", f"{dist.p99:,.2f}")]
    if dist.mean_p_alive is not None:
        facts.append(("mean P(alive)", f"{dist.mean_p_alive:.1%}"))
    return Section("customer-value", "Customer value", str(CUSTOMER_VALUE), facts=facts, plots=[Plot(
        svg_markup(fig, "value"), (
            f"Customers of {CUSTOMER_VALUE} by BG/NBD + Gamma-Gamma expected value over {horizon_days} days "
            f"(conf/churn.yaml value.horizon_days), in {VALUE_BINS} bins up to the 99th percentile; the orange "
            "bar holds the top 1%."))])


# ---------------------------------------------------------------- next best action

ActionCount = tuple[str, str | None, str | None, str | None, int]   # action, channel, description, band, customers


def action_mix(lake: Lakehouse) -> list[ActionCount]:
    """Customers per action and risk band, most first."""
    mix = lake.read(NEXT_BEST_ACTION).groupBy("action", "channel", "description", "risk_band").agg(
        F.count(F.lit(1)).alias("n"))
    return [(r["action"], r["channel"], r["description"], r["risk_band"], r["n"])
            for r in mix.orderBy(F.desc("n"), "action", "risk_band").collect()]


def _action_section(mix: list[ActionCount], configured_bands: list[str]) -> Section:
    actions: dict[str, list] = {}     # action -> [channel, description, customers]
    for action, channel, description, _, n in mix:
        actions.setdefault(action, [channel, description, 0])[2] += n
    order = sorted(actions, key=lambda a: (-actions[a][2], a))
    colours = band_colours(configured_bands)
    fig = _figure(9.5, 1.1 + 0.4 * len(order))
    ax = fig.add_subplot()
    left = [0] * len(order)
    for band in band_order(configured_bands, {m[3] for m in mix}):
        values = [sum(n for a, _, _, b, n in mix if a == action and (b or "(none)") == band) for action in order]
        ax.barh(range(len(order)), values, left=left, color=colours.get(band, MUTED), label=_text(band), height=0.6)
        left = [a + b for a, b in zip(left, values, strict=True)]
    for p, total in enumerate(left):
        ax.annotate(f"{total:,}", (total, p), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_yticks(range(len(order)), [_text(f"{a} ({actions[a][0] or 'no channel'})") for a in order])
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    ax.set(title="Retention actions chosen for at-risk customers", xlabel="customers")
    ax.set_xlim(0, max(left) * 1.1 or 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(title="risk band", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    total = sum(a[2] for a in actions.values())
    rows = [[Cell(a), Cell(actions[a][0] or ""), Cell(actions[a][1] or ""), _n(actions[a][2]),
             _pct(actions[a][2] / total)] for a in order]
    return Section("next-best-action", "Next best action", str(NEXT_BEST_ACTION), plots=[Plot(
        svg_markup(fig, "actions"), (
            f"The action chosen for each at-risk customer of {NEXT_BEST_ACTION} (the first rule of conf/churn.yaml "
            "actions.rules that holds, on a consented channel), by risk band."))],
        grids=[Grid(["action", "channel", "what to do", "customers", "share"], rows)])


# ---------------------------------------------------------------- the page

def run_report_page(lake: Lakehouse, settings: Settings, run_id: str | None = None) -> RunReportPage:
    """The page data: one section per SECTION_IDS entry, in that order."""
    from cdp.ml.config import load_churn_config

    churn = load_churn_config(settings)
    bands = churn.scoring.band_names
    info = run_info(lake, run_id)
    colours = Colours()
    # id -> (title, fetch: Spark and MLflow, run in threads; build: plots, in this thread)
    parts: dict[str, tuple[str, Callable[[], object], Callable[[object], Section]]] = {
        "identity": ("Identity resolution", lambda: _identity_data(lake), _identity_section),
        "data-quality": ("Data quality verdicts", lambda: _quality_data(lake, info.run_id), _quality_section),
        "funnel": ("Purchase funnel", lambda: _fetch(lake, FUNNELS, "journeys", lambda: funnel_steps(lake)),
                   lambda d: _funnel_section(d, colours)),
        "journey-paths": ("Top journey paths", lambda: _fetch(lake, JOURNEY_PATHS, "journeys", lambda: top_paths(lake)),
                          lambda d: _paths_section(d, colours)),
        "rfm-segments": ("RFM segment map", lambda: _fetch(lake, CUSTOMER_PROFILE, "profiles",
                                                           lambda: rfm_cells(lake)),
                         lambda d: _rfm_section(d, segment_map(settings))),
        "cohort-retention": ("Cohort retention", lambda: _fetch(lake, KPI_COHORT_RETENTION, "profiles",
                                                                lambda: cohort_retention(lake)), _cohort_section),
        "satisfaction": ("Customer satisfaction (NPS)", lambda: _fetch(lake, KPI_SATISFACTION, "profiles",
                                                                       lambda: satisfaction_trend(lake)),
                         _satisfaction_section),
        "churn-model": ("Churn model", lambda: churn_model_info(lake, settings), _churn_model_section),
        "churn-risk": ("Churn risk distribution", lambda: _fetch(lake, CHURN_SCORES, "churn_scores",
                                                                 lambda: risk_histogram(lake)),
                       lambda d: _risk_section(d, bands)),
        "customer-value": ("Customer value", lambda: _fetch(lake, CUSTOMER_VALUE, "customer_value",
                                                            lambda: value_distribution(lake)),
                           lambda d: _value_section(d, churn.value.horizon_days)),
        "next-best-action": ("Next best action", lambda: _fetch(lake, NEXT_BEST_ACTION, "next_best_action",
                                                                lambda: action_mix(lake)),
                             lambda d: _action_section(d, bands)),
    }
    with ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="cdp-report") as pool:
        fetched = {key: pool.submit(fetch) for key, (_, fetch, _) in parts.items()}
    sections = [_summary_section(lake, info)]
    with matplotlib.rc_context(STYLE):
        for key, (title, _, build) in parts.items():
            data = fetched[key].result()
            sections.append(Section(key, title, "", absent=data.line) if isinstance(data, Absent) else build(data))
    return RunReportPage(lakehouse=lake.root, run_id=info.run_id or "-", when=_time(info.started_at),
                         generated=_time(datetime.now(timezone.utc)) + " UTC", sections=sections)


def render_run_report(page: RunReportPage) -> str:
    return render(TEMPLATE, title=f"Run report - {page.run_id}", page=page)


def report_location(settings: Settings) -> str:
    """<paths.reports>/run-report.html (a local path or a URI)."""
    return join(settings.path(settings.paths.reports), FILE_NAME)


def write_run_report(lake: Lakehouse, settings: Settings, run_id: str | None = None,
                     location: str | None = None) -> str:
    """Write the report of run_id (the latest run when None) to location (default: report_location) and return
    where it went; a re-run overwrites it."""
    location = location or report_location(settings)
    write_text(lake.spark, location, render_run_report(run_report_page(lake, settings, run_id)))
    return location


def cmd_report(args, settings: Settings) -> int:
    """`cdp report [--run-id ID] [--out FILE]`: write the run report and say where."""
    from cdp.commands import _spark

    spark = _spark(args, settings, "cdp-report")
    lake = Lakehouse.from_settings(spark, settings)
    location = write_run_report(lake, settings, getattr(args, "run_id", None), getattr(args, "out", None))
    print(f"report written to {location}")
    return 0
