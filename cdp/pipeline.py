"""The DAG of steps that `cdp run`, spark-submit (jobs/run_pipeline.py) and workflows share."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cdp.config import Settings
from cdp.io import Lakehouse


@dataclass
class RunContext:
    settings: Settings
    spark: object
    lake: Lakehouse
    run_id: str
    started_at: datetime
    console: Console
    outputs: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    name: str
    description: str
    run: Callable[[RunContext], object]
    depends_on: tuple[str, ...] = ()


def new_run_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------- steps

def ensure_demo_data(ctx: RunContext) -> object:
    """Generate the synthetic demo landing files when the landing folder is empty (local paths only)."""
    s = ctx.settings
    landing = s.path(s.paths.landing)
    if "://" in landing or any(Path(landing).glob("*/*")):
        ctx.console.print(f"[dim]landing data present at {landing}[/dim]")
        return None
    from cdp.synth import generate

    ctx.console.print(f"generating demo data: {s.synth.customers:,} customers, seed {s.synth.seed} -> {landing}")
    res = generate(
        s.synth.customers, s.synth.seed, Path(landing), Path(s.path(s.paths.ground_truth)),
        start=s.synth.start, end=s.synth.end, chunk_size=s.synth.chunk_size, workers=s.synth.workers,
    )
    ctx.console.print(f"  {sum(res.records_by_source.values()):,} records in {res.files} files, {res.seconds:.1f}s")
    return res


def land_bronze(ctx: RunContext) -> object:
    from cdp.ingest.bronze import land_all
    from cdp.ingest.sources import load_sources

    s = ctx.settings
    specs = load_sources(s)

    def progress(done: int, total: int, res) -> None:
        status = "[red]failed[/red]" if res.error else f"{res.landed:,} rows from {res.new_files} new file(s)"
        ctx.console.print(f"  bronze [{done}/{total}] {res.source}: {status} ({time.monotonic() - t0:.1f}s)")

    t0 = time.monotonic()
    results = land_all(ctx.lake, specs, s.path(s.paths.landing), ctx.run_id, ctx.started_at,
                       s.ingest.max_value_chars, on_source=progress, parallelism=s.ingest.parallelism)
    ctx.console.print(bronze_summary(results))
    for res in results:
        if res.error:
            ctx.console.print(f"[red]error:[/red] {res.error}")
    return results


def build_silver_tables(ctx: RunContext) -> object:
    from cdp.ingest.sources import load_sources
    from cdp.silver.step import build_silver

    t0 = time.monotonic()

    def progress(done: int, total: int, source: str, batch) -> None:
        what = f"{len(batch.bronze_runs)} new bronze batch(es)" if batch else "nothing new"
        ctx.console.print(f"  silver [{done}/{total}] {source}: {what} ({time.monotonic() - t0:.1f}s)")

    results = build_silver(ctx.lake, load_sources(ctx.settings), ctx.settings, ctx.run_id, ctx.started_at, on_source=progress)
    return results


def print_reconciliation(ctx: RunContext) -> object:
    """The run's accounting, read back from audit.reconciliation: every row is explained."""
    from cdp.audit import RECONCILIATION

    if not ctx.lake.exists(RECONCILIATION):
        return []
    rows = (ctx.lake.read(RECONCILIATION).where(f"run_id = '{ctx.run_id}'")
            .orderBy("source", "stage", "target_table").collect())
    table = Table(title=f"reconciliation for run {ctx.run_id}: in = out + quarantined + duplicates", title_justify="left")
    for col in ("source", "step", "target", "in", "out", "quarantined", "duplicates", "unexplained"):
        table.add_column(col, justify="left" if col in ("source", "step", "target") else "right")
    for r in rows:
        unexplained = r.rows_in - r.rows_out - r.rows_quarantined - r.rows_duplicate
        table.add_row(r.source, r.stage, r.target_table, f"{r.rows_in:,}", f"{r.rows_out:,}", f"{r.rows_quarantined:,}",
                      f"{r.rows_duplicate:,}", f"[red]{unexplained:,}[/red]" if unexplained else "0")
    if not rows:
        ctx.console.print("nothing new to reconcile in this run")
    else:
        ctx.console.print(table)
    return rows


def bronze_summary(results) -> Table:
    table = Table(title="bronze landing (this run) and table sizes", title_justify="left")
    for col in ("source", "channel", "new files", "landed", "bronze", "quarantined", "table rows"):
        table.add_column(col, justify="left" if col in ("source", "channel") else "right")
    for r in results:
        table.add_row(r.source, r.channel, str(r.new_files), f"{r.landed:,}", f"{r.bronze:,}",
                      f"{r.quarantined:,}", "[red]FAILED[/red]" if r.error else f"{r.table_rows:,}")
    table.add_row("[b]total[/b]", "", str(sum(r.new_files for r in results)), f"{sum(r.landed for r in results):,}",
                  f"{sum(r.bronze for r in results):,}", f"{sum(r.quarantined for r in results):,}",
                  f"{sum(r.table_rows for r in results):,}")
    return table


def resolve_customers(ctx: RunContext) -> object:
    from cdp.identity.report import log_matching_model, resolution_table
    from cdp.identity.resolve import resolve_identities

    res = resolve_identities(ctx.lake, ctx.settings, ctx.run_id, ctx.started_at,
                             progress=lambda phase, secs: ctx.console.print(f"  identity: {phase} ({secs:.1f}s)"))
    ctx.console.print(resolution_table(res))
    mlflow_run = log_matching_model(ctx.settings, res)
    if mlflow_run:
        ctx.console.print(f"[dim]probabilistic model (Splink JSON) logged to MLflow run {mlflow_run}[/dim]")
    return res


def evaluate_identities(ctx: RunContext) -> object:
    from cdp.identity.report import (
        evaluate_resolution,
        evaluation_table,
        has_ground_truth,
        log_identity_evaluation,
    )

    if not has_ground_truth(ctx.settings):
        ctx.console.print("[dim]no ground truth at paths.ground_truth: identity evaluation skipped[/dim]")
        return None
    metrics = evaluate_resolution(ctx.lake, ctx.settings)
    mlflow_run = log_identity_evaluation(ctx.settings, ctx.run_id, metrics)
    ctx.console.print(evaluation_table(metrics, mlflow_run))
    return metrics


STEPS: list[Step] = [
    Step("demo_data", "generate synthetic landing files when none are present", ensure_demo_data),
    Step("bronze", "land new files of every source into bronze Delta tables", land_bronze, ("demo_data",)),
    Step("silver", "type, standardize, deduplicate and quality-check into the canonical silver model",
         build_silver_tables, ("bronze",)),
    Step("reconcile", "print the run's row accounting from audit.reconciliation", print_reconciliation, ("silver",)),
    Step("identity", "resolve identity records into customers with stable ids (gold identity tables)",
         resolve_customers, ("silver",)),
    Step("identity_eval", "measure identity resolution against the generator's ground truth (MLflow)",
         evaluate_identities, ("identity",)),
]


def plan(only: list[str] | None = None) -> list[Step]:
    """Steps in dependency order; `only` keeps the named ones (their dependencies are assumed done)."""
    names = [s.name for s in STEPS]
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            from cdp.errors import ConfigError

            raise ConfigError(f"unknown step(s) {', '.join(unknown)}; steps are: {', '.join(names)}")
        return [s for s in STEPS if s.name in only]
    return list(STEPS)


def run_pipeline(settings: Settings, spark, steps: list[str] | None = None, console: Console | None = None) -> RunContext:
    console = console or Console(width=None if Console().is_terminal else 120)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    ctx = RunContext(settings, spark, Lakehouse.from_settings(spark, settings), new_run_id(now), now, console)
    console.print(f"[b]cdp run[/b] {ctx.run_id} env={settings.env} lakehouse={ctx.lake.root}")
    for step in plan(steps):
        t0 = time.monotonic()
        console.rule(f"{step.name}: {step.description}")
        ctx.outputs[step.name] = step.run(ctx)
        console.print(f"[dim]{step.name} done in {time.monotonic() - t0:.1f}s[/dim]")
    return ctx
