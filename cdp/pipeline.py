"""The DAG of steps that `cdp run`, spark-submit (jobs/run_pipeline.py) and workflows share."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone

from rich.console import Console

from cdp.config import Settings
from cdp.config.project import ProjectConfig
from cdp.costs import step_cost
from cdp.errors import CdpError, ConfigError, first_line
from cdp.io import Lakehouse
from cdp.lock import lakehouse_lock
from cdp.parallel import in_threads
from cdp.progress import step_progress
from cdp.run_context import RunContext
from cdp.runs import RunBook, StepRecord, resumable, table_versions, writes_between
from cdp.steps import (
    assign_segments,
    build_churn_features,
    build_customer_journeys,
    build_customer_profiles,
    build_silver_tables,
    choose_actions,
    ensure_demo_data,
    evaluate_identities,
    land_bronze,
    print_reconciliation,
    protect_pii,
    publish_to_catalog,
    resolve_customers,
    score_churn,
    train_churn,
    value_customers,
    write_report,
)
from cdp.tables import INGEST_LOG, OPERATIONAL, PIPELINE_RUNS


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


def new_run_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


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
    Step("churn_scores", "score the customers of definition.population with models:/<name>@champion, risk bands and drivers",
         score_churn, ("churn_model",)),
    Step("customer_value", "BG/NBD + Gamma-Gamma customer value: P(alive), expected purchases and value",
         value_customers, ("journeys",)),
    Step("next_best_action", "one consented retention action per at-risk customer", choose_actions,
         ("churn_scores", "customer_value", "profiles")),
    Step("protect_pii", "write the BI-facing copies of conf/pii.yaml, every PII column hashed or masked",
         protect_pii, ("profiles",)),
    Step("publish", "register the gold tables in the metastore catalog named by catalog.database (if set)",
         publish_to_catalog, ("next_best_action", "protect_pii")),
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
    """The quarantine and audit tables exist, empty, from the first run on: a query never fails on them (created
    a few at once: each is a commit of its own, a fixed cost of about a second on a fresh lakehouse)."""
    in_threads(lake.ensure, OPERATIONAL, workers=4)


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
    colour = {"succeeded": "green", "failed": "red", "skipped": "yellow", "not_applicable": "dim"}
    for r in ctx.records:
        t.add_row(r.step, f"[{colour.get(r.status, 'white')}]{r.status}[/]",
                  "" if r.seconds is None else f"{r.seconds:.1f}", f"{r.written.rows_in:,}", f"{r.written.rows_out:,}",
                  str(len(r.written.outputs)))
    return t


def foreign_lakehouse(lake: Lakehouse, sources: list[str]) -> str | None:
    """One line when the lakehouse was built from sources none of which this configuration has (a company's own
    configuration pointed at the demo's lakehouse by mistake), else None. Adding a source beside the existing ones
    shares the others, so it passes."""
    if not lake.exists(INGEST_LOG):
        return None
    landed = sorted(r[0] for r in lake.read(INGEST_LOG).select("source").distinct().collect())   # a row per source
    if not landed or set(landed) & set(sources):
        return None
    shown = ", ".join(landed[:5]) + (f" and {len(landed) - 5} more" if len(landed) > 5 else "")
    return (f"the lakehouse {lake.root} was built from sources {shown} (audit.ingest_log), and this configuration's "
            f"sources ({', '.join(sources)}) share none with them: point paths.lakehouse (and mlflow.tracking_uri) at "
            "a folder of its own, or give --allow-new-sources to add them to this lakehouse")


def run_pipeline(settings: Settings, spark, steps: list[str] | None = None, console: Console | None = None,
                 as_of: date | None = None, run_id: str | None = None, *, start_from: str | None = None,
                 resume: bool = False, raise_on_failure: bool = True, heartbeat: float | None = None,
                 wait: float | None = None, allow_new_sources: bool = False,
                 conf: ProjectConfig | None = None) -> RunContext:
    """Run the steps in DAG order, recording each in audit.pipeline_runs. A step that fails stops the steps that
    depend on it (recorded as skipped); the others still run. At the end the first failure is raised (a user error
    as itself, anything else as StepFailed; both name the step), or left in ctx.failure (raise_on_failure=False).
    resume: continue the latest failed run (or run_id) under its id, running only the steps that did not succeed.
    heartbeat: seconds between progress lines while a step runs (None: 30 s when the console is no terminal, a live
    status line on a terminal; 0: none).
    The run holds the lakehouse lock (cdp.lock) throughout: a second run waits up to `wait` seconds (default
    lock.wait_seconds) and then stops with LakehouseBusy naming the holder.
    A step the data cannot feed (cdp.capabilities: no purchases to value) is recorded as not_applicable, with why;
    the steps after it run. A lakehouse built from none of the configured sources is refused (ConfigError) unless
    allow_new_sources. conf: the configuration sections loaded already (cdp.check.check_configuration's), else
    each is loaded the first time a step needs it; either way once per run (ctx.conf)."""
    conf = conf if conf is not None else ProjectConfig(settings)
    console = console or Console(width=None if Console().is_terminal else 140)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    lake = Lakehouse.from_settings(spark, settings)
    planned = None
    if resume:
        last = resume_point(lake, run_id)
        run_id, as_of = last.run_id, as_of or last.as_of
        planned = [s for s in STEPS if s.name in last.remaining]
    run_id = run_id or new_run_id(now)
    with lakehouse_lock(spark, lake.root, run_id, "cdp run", settings.lock, wait,
                        say=lambda line: console.print(f"[yellow]{line}[/yellow]")):
        if planned is not None:
            console.print(f"resuming run {run_id}: {', '.join(sorted(last.done)) or 'no step'} succeeded before; "
                          f"running {', '.join(s.name for s in planned)}")
        planned = plan(steps, start_from) if planned is None else planned
        from cdp.check import data_capabilities

        refusal = None if allow_new_sources else foreign_lakehouse(lake, [s.name for s in conf.sources])
        if refusal:
            raise ConfigError(refusal)
        able = data_capabilities(conf, [s.name for s in planned])
        return _run_locked(conf, spark, lake, planned, console, as_of, run_id, now, raise_on_failure, heartbeat,
                           able)


def _run_locked(conf: ProjectConfig, spark, lake: Lakehouse, planned: list[Step], console: Console,
                as_of: date | None, run_id: str, now: datetime, raise_on_failure: bool,
                heartbeat: float | None, able=None) -> RunContext:
    from cdp.check import STEP_NEEDS

    settings = conf.settings
    bootstrap(lake)
    ctx = RunContext(settings, spark, lake, run_id, now, console, as_of=as_of, plan=[s.name for s in planned],
                     capabilities=able, conf=conf)
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
            why_not = able.missing(STEP_NEEDS.get(step.name, ())) if able is not None else None
            if why_not is not None:   # nothing for it in this company's data: the steps after it still run
                record = StepRecord(step.name, "not_applicable", None, None, error=f"not applicable: {why_not}")
                ctx.records.append(record)
                book.step_ended(record)
                console.print(f"[dim]{step.name}: not applicable ({why_not})[/dim]")
                continue
            started, t0 = datetime.now(timezone.utc), time.monotonic()
            error: BaseException | None = None
            try:
                with step_progress(ctx, step.name, heartbeat), step_cost(ctx.spark) as measured:
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
                                seconds, written, None if error is None else step_error_line(step.name, error),
                                measured.cost)
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
