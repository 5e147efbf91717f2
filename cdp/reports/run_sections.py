"""The run report's sections on the run itself: the run summary (the run and its steps, from the run log), identity
resolution (customers by number of records, links per match rule) and the data quality verdicts of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import functions as F

from cdp.io import Lakehouse
from cdp.reports.figures import _bars, _figure, svg_markup
from cdp.reports.page_data import Absent, Cell, Grid, Plot, Section, _f, _fetch, _n, _status, _time
from cdp.tables import IDENTITY_CLUSTER_SIZES, IDENTITY_LINKS, LAYERS, PIPELINE_RUNS, QUALITY_RESULTS

SIZE_CAP = 20             # customers with this many identity records or more share one bar
MAX_FAILURES = 50


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
