"""The DAG of steps that `cdp run`, spark-submit (jobs/run_pipeline.py) and workflows share."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from rich.console import Console

from cdp.config import Settings
from cdp.errors import CdpError, ConfigError
from cdp.io import Lakehouse
from cdp.runs import RunBook, StepRecord, resumable, table_versions, writes_between
from cdp.tables import OPERATIONAL, PIPELINE_RUNS


@dataclass
class RunContext:
    settings: Settings
    spark: object
    lake: Lakehouse
    run_id: str
    started_at: datetime
    console: Console
    outputs: dict[str, object] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)   # what makes the run exit non-zero (files not landed)
    summary: list[str] = field(default_factory=list)    # what the closing summary adds (interactions with no customer)
    as_of: date | None = None                            # scoring and value date (cdp run --as-of), else conf
    plan: list[str] = field(default_factory=list)        # the steps this invocation set out to run
    records: list[StepRecord] = field(default_factory=list)  # how each step ended (audit.pipeline_runs)
    failure: BaseException | None = None                 # the first step that failed (its error, step named)
    status: str = "running"                              # succeeded | failed | interrupted at the end
    report: str | None = None                            # where the report step wrote the run report


@dataclass(frozen=True)
class Step:
    name: str
    description: str
    run: Callable[[RunContext], object]
    depends_on: tuple[str, ...] = ()
    run_if: str = "all_succeeded"   # all_done: runs once its dependencies ended, even if one failed (the report)


class StepFailed(CdpError):
    """A step raised something that is not a user error: the CLI names the step and logs the traceback."""

    def __init__(self, step: str, cause: BaseException):
        super().__init__(f"step '{step}' failed: {type(cause).__name__}: {first_line(cause)}")
        self.step, self.cause = step, cause


def first_line(exc: BaseException) -> str:
    """The first meaningful line of an exception (a JVM exception's own message for Py4J errors)."""
    java = getattr(exc, "java_exception", None)
    text = str(java.toString()) if java is not None else str(exc)
    return next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)[:300]


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
    from cdp.summaries import bronze_summary

    s = ctx.settings
    t0 = time.monotonic()

    def progress(done: int, total: int, res) -> None:
        status = f"{res.landed:,} rows from {res.new_files} new file(s)"
        if res.rejected:
            status += f", [red]{len(res.rejected)} file(s) rejected[/red]"
        ctx.console.print(f"  bronze [{done}/{total}] {res.source}: {status} ({time.monotonic() - t0:.1f}s since the step began)")

    results = land_all(ctx.lake, load_sources(s), s.path(s.paths.landing), ctx.run_id, ctx.started_at,
                       s.ingest.max_value_chars, on_source=progress, parallelism=s.ingest.parallelism)
    ctx.console.print(bronze_summary(results))
    for res in results:
        for path, reason in res.rejected:
            ctx.problems.append(f"{res.source}: file {path} was not landed: {reason} "
                                "(it is looked at again every run until it is replaced or removed)")
    return results


def build_silver_tables(ctx: RunContext) -> object:
    from cdp.ingest.sources import load_sources
    from cdp.silver.step import build_silver

    t0 = time.monotonic()

    def progress(done: int, total: int, source: str, prepared) -> None:
        what = f"{len(prepared.bronze_runs)} new bronze batch(es)" if prepared else "nothing new"
        ctx.console.print(f"  silver [{done}/{total}] {source}: {what} ({time.monotonic() - t0:.1f}s since the step began)")

    return build_silver(ctx.lake, load_sources(ctx.settings), ctx.settings, ctx.run_id, ctx.started_at,
                        on_source=progress)


def print_reconciliation(ctx: RunContext) -> object:
    """The run's accounting, read back from audit.reconciliation: every row is explained."""
    from cdp.summaries import reconciliation_table

    table, rows = reconciliation_table(ctx.lake, ctx.run_id)
    ctx.console.print(table if table is not None else "nothing new to reconcile in this run")
    return rows


def resolve_customers(ctx: RunContext) -> object:
    from cdp.identity.report import log_matching_model, resolution_table
    from cdp.identity.writer import resolve_identities

    res = resolve_identities(ctx.lake, ctx.settings, ctx.run_id, ctx.started_at,
                             progress=lambda phase, secs: ctx.console.print(f"  identity: {phase} ({secs:.1f}s)"))
    ctx.console.print(resolution_table(res))
    mlflow_run = log_matching_model(ctx.settings, res)
    if mlflow_run:
        ctx.console.print(f"[dim]probabilistic model (Splink JSON) logged to MLflow run {mlflow_run}[/dim]")
    return res


def build_customer_journeys(ctx: RunContext) -> object:
    from cdp.ingest.sources import load_sources
    from cdp.journey.step import build_journeys

    res = build_journeys(ctx.lake, ctx.settings, load_sources(ctx.settings), ctx.run_id, ctx.started_at)
    ctx.console.print(f"  {res.touchpoints:,} touchpoints of {res.customers:,} customers in gold.customer_journey")
    for (source, reason), n in sorted(res.unattributed.items()):
        ctx.summary.append(f"{source}: {n:,} interactions belong to no customer ({reason.replace('_', ' ')})")
    for table, n in res.rows.items():
        ctx.console.print(f"  {table}: {n:,} rows")
    return res


def build_customer_profiles(ctx: RunContext) -> object:
    from cdp.ingest.sources import load_sources
    from cdp.profile.step import build_profiles

    journeys = ctx.outputs.get("journeys")   # this run's journeys step: its touchpoints, already materialised
    res = build_profiles(ctx.lake, ctx.settings, load_sources(ctx.settings), ctx.run_id, ctx.started_at,
                         touchpoints=getattr(journeys, "touchpoint_frame", None))
    changes = ", ".join(f"{n:,} {action}" for action, n in sorted(res.history.items())) or "no change"
    ctx.console.print(f"  {res.customers:,} customer profiles as of {res.as_of:%Y-%m-%d %H:%M}; history: {changes}")
    return res


def assign_segments(ctx: RunContext) -> object:
    from cdp.profile.step import build_segments

    sizes = build_segments(ctx.lake, ctx.settings, ctx.run_id, ctx.started_at)
    for segment, n in sorted(sizes.items()):
        ctx.console.print(f"  segment {segment}: {n:,} customers")
    return sizes


def _journey_touchpoints(ctx: RunContext):
    """This run's journeys step's touchpoints (already materialised), or None (the step reads them itself)."""
    return getattr(ctx.outputs.get("journeys"), "touchpoint_frame", None)


def build_churn_features(ctx: RunContext) -> object:
    from cdp.ingest.sources import load_sources
    from cdp.ml.step import build_churn_features as build

    res = build(ctx.lake, ctx.settings, load_sources(ctx.settings), ctx.run_id, _journey_touchpoints(ctx))
    ctx.console.print(f"  {res.rows:,} customer snapshots ({res.snapshots[0]} to {res.snapshots[-1]}, "
                      f"{len(res.snapshots)} dates), {res.churn_rate:.1%} churned in the horizon after them")
    return res


def train_churn(ctx: RunContext) -> object:
    from cdp.ingest.sources import load_sources
    from cdp.ml.step import train_churn_model

    result, reg = train_churn_model(ctx.lake, ctx.settings, load_sources(ctx.settings), ctx.run_id)
    for c in result.candidates:
        e = c.evaluation
        ctx.console.print(f"  {c.kind}: ROC-AUC {e.roc_auc:.3f}, PR-AUC {e.pr_auc:.3f}, top-decile lift "
                          f"{e.top_decile_lift:.2f} on the held-out snapshots")
    ctx.console.print(f"  recency alone: ROC-AUC {result.baseline.roc_auc:.3f}, PR-AUC {result.baseline.pr_auc:.3f}")
    if result.dropped_features:
        ctx.console.print(f"  left out (no value in the training data): {', '.join(result.dropped_features)}")
    ctx.console.print(f"  registered {result.best.kind} as version {reg.version}, alias {reg.alias}: {reg.reason} "
                      f"(MLflow run {reg.run_id})")
    return reg


def score_churn(ctx: RunContext) -> object:
    from cdp.ingest.sources import load_sources
    from cdp.ml.step import score_churn as score

    res = score(ctx.lake, ctx.settings, load_sources(ctx.settings), ctx.run_id, ctx.started_at, ctx.as_of,
                _journey_touchpoints(ctx))
    bands = ", ".join(f"{n:,} {band}" for band, n in sorted(res.bands.items()))
    ctx.console.print(f"  {res.customers:,} active customers scored as of {res.as_of} by model version "
                      f"{res.model_version}: {bands}")
    return res


def value_customers(ctx: RunContext) -> object:
    from cdp.ingest.sources import load_sources
    from cdp.ml.step import build_customer_value

    res = build_customer_value(ctx.lake, ctx.settings, load_sources(ctx.settings), ctx.run_id, ctx.started_at,
                               ctx.as_of, _journey_touchpoints(ctx))
    m, g = res.bgnbd, res.gamma_gamma
    spend = f"Gamma-Gamma p={g.p:.3f} q={g.q:.3f} v={g.v:.3f}" if g is not None else res.note
    ctx.console.print(f"  {res.customers:,} customers valued as of {res.as_of}; BG/NBD r={m.r:.3f} alpha={m.alpha:.3f} "
                      f"a={m.a:.3f} b={m.b:.3f}; {spend}")
    return res


def choose_actions(ctx: RunContext) -> object:
    from cdp.ingest.sources import load_sources
    from cdp.ml.step import choose_actions as choose

    counts = choose(ctx.lake, ctx.settings, load_sources(ctx.settings), ctx.run_id, _journey_touchpoints(ctx))
    for action, n in sorted(counts.items()):
        ctx.console.print(f"  {action}: {n:,} customer{'' if n == 1 else 's'}")
    return counts


def publish_to_catalog(ctx: RunContext) -> object:
    """Register the lakehouse tables in the metastore catalog (catalog.database), so BI tools query them by name."""
    from cdp.catalog import register_tables

    c = ctx.settings.catalog
    if c.database is None:
        ctx.console.print("[dim]catalog.database is not set: tables are read by path (nothing to register)[/dim]")
        return []
    done = register_tables(ctx.lake, c.database, c.layers)
    new = [r.name for r in done if r.created]
    ctx.console.print(f"  {len(done)} table(s) in catalog database {c.database}"
                      + (f"; newly registered: {', '.join(new)}" if new else "; all registered already"))
    return done


def evaluate_identities(ctx: RunContext) -> object:
    from cdp.identity.report import (
        evaluate_identity,
        evaluation_table,
        has_ground_truth,
        log_identity_evaluation,
        threshold_table,
    )

    if not has_ground_truth(ctx.settings):
        ctx.console.print("[dim]no ground truth at paths.ground_truth: identity evaluation skipped[/dim]")
        return None
    evaluation = evaluate_identity(ctx.lake, ctx.settings)
    mlflow_run = log_identity_evaluation(ctx.settings, ctx.run_id, evaluation.metrics, evaluation)
    ctx.console.print(evaluation_table(evaluation.metrics, mlflow_run))
    ctx.console.print(threshold_table(evaluation) if evaluation.thresholds else f"[dim]{evaluation.note}[/dim]")
    return evaluation.metrics


def write_report(ctx: RunContext) -> object:
    from cdp.reports.run_report import write_run_report

    location = write_run_report(ctx.lake, ctx.settings, ctx.run_id)
    ctx.console.print(f"  report written to {location}")
    ctx.report = location
    return location


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
    Step("journeys", "order every customer's touchpoints into journeys, sessions and stages; incomplete purchases, "
         "funnels, paths and attribution", build_customer_journeys, ("identity",)),
    Step("profiles", "Customer 360 profiles, their history (SCD2) and the KPI marts", build_customer_profiles,
         ("journeys",)),
    Step("segments", "assign customers to the segments of conf/segments.yaml", assign_segments, ("profiles",)),
    Step("churn_features", "point-in-time churn features and labels for the configured snapshot dates",
         build_churn_features, ("journeys",)),
    Step("churn_model", "train GBT and logistic-regression churn models, track and register them in MLflow "
         "(champion only if better)", train_churn, ("churn_features",)),
    Step("churn_scores", "score the active customers with models:/<name>@champion, risk bands and drivers",
         score_churn, ("churn_model",)),
    Step("customer_value", "BG/NBD + Gamma-Gamma customer value: P(alive), expected purchases and value",
         value_customers, ("journeys",)),
    Step("next_best_action", "one consented retention action per at-risk customer", choose_actions,
         ("churn_scores", "customer_value", "profiles")),
    Step("publish", "register the gold tables in the metastore catalog named by catalog.database (if set)",
         publish_to_catalog, ("next_best_action",)),
    Step("report", "write the run report: one self-contained HTML page with plots, under paths.reports",
         write_report, ("reconcile", "identity_eval", "segments", "publish"), run_if="all_done"),
]


def check_dag(steps: list[Step]) -> None:
    """Names unique, every dependency a step declared before its dependant (so the list order runs the DAG)."""
    seen: set[str] = set()
    for step in steps:
        if step.name in seen:
            raise ValueError(f"step {step.name!r} is declared twice")
        if step.run_if not in ("all_succeeded", "all_done"):
            raise ValueError(f"step {step.name!r}: run_if is all_succeeded or all_done, not {step.run_if!r}")
        late = [d for d in step.depends_on if d not in seen]
        if late:
            raise ValueError(f"step {step.name!r} depends on {', '.join(late)}, not declared before it")
        seen.add(step.name)


check_dag(STEPS)


def dependants(name: str, steps: list[Step] | None = None) -> list[str]:
    """The steps that depend on `name`, directly or through others, in DAG order."""
    reached = {name}
    for step in steps or STEPS:
        if reached.intersection(step.depends_on):
            reached.add(step.name)
    return [s.name for s in steps or STEPS if s.name in reached and s.name != name]


def plan(only: list[str] | None = None, start_from: str | None = None) -> list[Step]:
    """Steps in dependency order. `only` keeps the named ones (their dependencies are assumed done); `start_from`
    keeps that step and every step depending on it, directly or not (cdp run --from)."""
    names = [s.name for s in STEPS]
    wanted = [*(only or []), *([start_from] if start_from else [])]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise ConfigError(f"unknown step(s) {', '.join(unknown)}; steps are: {', '.join(names)}")
    if only and start_from:
        raise ConfigError("give --steps or --from, not both (--from runs a step and everything after it in the DAG)")
    if start_from:
        keep = {start_from, *dependants(start_from)}
        return [s for s in STEPS if s.name in keep]
    if only:
        return [s for s in STEPS if s.name in only]
    return list(STEPS)


def bootstrap(lake: Lakehouse) -> None:
    """The quarantine and audit tables exist, empty, from the first run on: a query never fails on them."""
    for table in OPERATIONAL:
        lake.ensure(table)


def closing_summary(ctx: RunContext) -> None:
    """What did not go forward in this run: quarantined rows per source and reason, files not landed."""
    from cdp.summaries import quarantine_lines

    lines = quarantine_lines(ctx.lake, ctx.run_id)
    ctx.console.rule("summary")
    for line in [*lines, *ctx.summary]:
        ctx.console.print(f"  {line}")
    for problem in ctx.problems:
        ctx.console.print(f"  [red]{problem}[/red]")
    if not lines and not ctx.problems:
        ctx.console.print("  every row of this run went forward: nothing quarantined, no file rejected")


def resume_point(lake: Lakehouse, run_id: str | None = None):
    """The run `cdp run --resume` continues: the latest (or the named) one, unless it succeeded."""
    last = resumable(lake, run_id) if lake.exists(PIPELINE_RUNS) else None
    if last is None:
        raise ConfigError("nothing to resume: no run is recorded in audit.pipeline_runs"
                          + (f" under the id {run_id}" if run_id else "") + "; start one with `cdp run`")
    if last.status == "succeeded" or not last.remaining:
        raise ConfigError(f"nothing to resume: the latest run {last.run_id} succeeded; `cdp run` starts a new one")
    return last


def summary_table(ctx: RunContext):
    """One row per step of the run: how it ended, its seconds and the rows its Delta commits moved."""
    from rich.table import Table

    t = Table(title=f"run {ctx.run_id}: {ctx.status}", title_justify="left")
    for col in ("step", "status", "seconds", "rows in", "rows out", "tables written"):
        t.add_column(col, justify="right" if col in ("seconds", "rows in", "rows out", "tables written") else "left")
    colour = {"succeeded": "green", "failed": "red", "skipped": "yellow"}
    for r in ctx.records:
        t.add_row(r.step, f"[{colour.get(r.status, 'white')}]{r.status}[/]",
                  "" if r.seconds is None else f"{r.seconds:.1f}", f"{r.written.rows_in:,}", f"{r.written.rows_out:,}",
                  str(len(r.written.outputs)))
    return t


def run_pipeline(settings: Settings, spark, steps: list[str] | None = None, console: Console | None = None,
                 as_of: date | None = None, run_id: str | None = None, *, start_from: str | None = None,
                 resume: bool = False, raise_on_failure: bool = True, heartbeat: float | None = None) -> RunContext:
    """Run the steps in DAG order, recording each in audit.pipeline_runs. A step that fails stops the steps that
    depend on it (recorded as skipped); the others still run. At the end the first failure is raised (a user error
    as itself, anything else as StepFailed; both name the step), or left in ctx.failure (raise_on_failure=False).
    resume: continue the latest failed run (or run_id) under its id, running only the steps that did not succeed.
    heartbeat: seconds between progress lines while a step runs (None: 30 s when the console is no terminal, a live
    status line on a terminal; 0: none)."""
    console = console or Console(width=None if Console().is_terminal else 140)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    lake = Lakehouse.from_settings(spark, settings)
    bootstrap(lake)
    if resume:
        last = resume_point(lake, run_id)
        run_id, as_of = last.run_id, as_of or last.as_of
        planned = [s for s in STEPS if s.name in last.remaining]
        console.print(f"resuming run {run_id}: {', '.join(sorted(last.done)) or 'no step'} succeeded before; "
                      f"running {', '.join(s.name for s in planned)}")
    else:
        planned = plan(steps, start_from)
    ctx = RunContext(settings, spark, lake, run_id or new_run_id(now), now, console, as_of=as_of,
                     plan=[s.name for s in planned])
    console.print(f"[b]cdp run[/b] {ctx.run_id} env={settings.env} lakehouse={ctx.lake.root}")
    book = RunBook(lake, ctx.run_id, settings.env)
    book.run_started(ctx.plan, now, as_of)
    blocked: dict[str, str] = {}   # a step that did not succeed -> the failed step at the root of it
    versions = table_versions(lake)
    try:
        for number, step in enumerate(planned, 1):
            cause = next((blocked[d] for d in step.depends_on if d in blocked), None)
            cause = None if step.run_if == "all_done" else cause
            if cause is not None:
                blocked[step.name] = cause
                record = StepRecord(step.name, "skipped", None, None, error=f"not run: step '{cause}' failed")
                ctx.records.append(record)
                book.step_ended(record)
                console.print(f"[yellow]{step.name}: skipped (it depends on '{cause}', which failed)[/yellow]")
                continue
            console.rule(f"[{number}/{len(planned)}] {step.name}: {step.description}")
            started, t0 = datetime.now(timezone.utc), time.monotonic()
            error: BaseException | None = None
            try:
                with step_progress(ctx, step.name, heartbeat):
                    ctx.outputs[step.name] = step.run(ctx)
            except CdpError as exc:
                error = exc
            except Exception as exc:
                error = StepFailed(step.name, exc)
                error.__cause__ = exc
            except KeyboardInterrupt:
                ctx.records.append(StepRecord(step.name, "failed", started, datetime.now(timezone.utc),
                                              time.monotonic() - t0, error="interrupted"))
                book.step_ended(ctx.records[-1])
                raise
            after = table_versions(lake)
            written, versions = writes_between(lake, versions, after), after
            seconds = time.monotonic() - t0
            record = StepRecord(step.name, "failed" if error else "succeeded", started, datetime.now(timezone.utc),
                                seconds, written, None if error is None else step_error_line(step.name, error))
            ctx.records.append(record)
            book.step_ended(record)
            if error is None:
                console.print(f"[dim]{step.name} done in {seconds:.1f}s ({written.rows_out:,} rows written to "
                              f"{len(written.outputs)} table(s))[/dim]")
                continue
            console.print(f"[red]{record.error}[/red]")
            blocked[step.name] = step.name
            if ctx.failure is None:
                error.step = step.name
                ctx.failure = error
    except KeyboardInterrupt:
        ctx.status = "interrupted"
        book.run_ended("interrupted", ctx.plan, now, datetime.now(timezone.utc).replace(microsecond=0), as_of,
                       "interrupted")
        raise
    finally:
        for output in ctx.outputs.values():   # what a step kept cached for the later ones (journeys' touchpoints)
            if hasattr(output, "release"):
                output.release()
    if ctx.failure is not None:
        ctx.failure.skipped = [r.step for r in ctx.records if r.status == "skipped"]
    ctx.status = "failed" if ctx.failure is not None else "succeeded"
    book.run_ended(ctx.status, ctx.plan, now, datetime.now(timezone.utc).replace(microsecond=0), as_of,
                   None if ctx.failure is None else step_error_line(ctx.failure.step, ctx.failure))
    closing_summary(ctx)
    console.print(summary_table(ctx))
    if ctx.failure is not None and raise_on_failure:
        raise ctx.failure
    return ctx


def step_error_line(step: str, error: BaseException) -> str:
    """'step 'x' failed: why' in one line (StepFailed says it already)."""
    text = str(error) if isinstance(error, StepFailed) else f"step '{step}' failed: {error}"
    return text.splitlines()[0] if text else f"step '{step}' failed"


class step_progress:  # noqa: N801 - a context manager used as `with step_progress(...)`
    """While a step runs: a live status line on a terminal, or a line every `heartbeat` seconds in a log, saying
    the step in hand, its elapsed time and what Spark is doing (the active stage and its tasks done)."""

    def __init__(self, ctx: RunContext, step: str, heartbeat: float | None):
        self.ctx, self.step = ctx, step
        terminal = ctx.console.is_terminal and not ctx.console.quiet
        self.live = heartbeat is None and terminal
        self.every = 0.0 if ctx.console.quiet else (1.0 if self.live else (30.0 if heartbeat is None else heartbeat))
        self.stop = threading.Event()
        self.t0 = time.monotonic()

    def line(self) -> str:
        elapsed = int(time.monotonic() - self.t0)
        text = f"{self.step}: {elapsed // 60}m{elapsed % 60:02d}s"
        try:
            tracker = self.ctx.spark.sparkContext.statusTracker()
            stages = [tracker.getStageInfo(i) for i in tracker.getActiveStageIds()]
            stages = [s for s in stages if s is not None]
            if stages:
                s = max(stages, key=lambda s: s.stageId)
                text += f", Spark stage {s.stageId} ({s.numCompletedTasks}/{s.numTasks} tasks) {s.name.split(' at ')[0]}"
        except Exception:  # noqa: BLE001 - progress is best effort; the step's own errors surface elsewhere
            pass
        return text

    def _tick(self) -> None:
        if self.live:
            with self.ctx.console.status(self.line()) as status:
                while not self.stop.wait(self.every):
                    status.update(self.line())
            return
        while not self.stop.wait(self.every):
            self.ctx.console.print(f"[dim]  ... {self.line()}[/dim]")

    def __enter__(self):
        self.thread = threading.Thread(target=self._tick, daemon=True) if self.every > 0 else None
        if self.thread:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.thread:
            self.thread.join(timeout=5)
