"""`cdp run`, `cdp status` and `cdp report`: run the pipeline, show the runs audit.pipeline_runs recorded, write
the run report."""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import datetime, timezone

from cdp.commands.session import command_session
from cdp.errors import CdpError


def _console(args):
    from rich.console import Console

    quiet = getattr(args, "quiet", False) or getattr(args, "json", False)
    return Console(width=None if Console().is_terminal else 140, quiet=quiet)


def run_document(ctx) -> dict:
    """What `cdp run --json` prints: the run, each step's outcome and cost (Spark jobs and stages, peak memory:
    cdp.costs), the problems, where the report is."""
    return {
        "run_id": ctx.run_id, "status": ctx.status, "env": ctx.settings.env, "lakehouse": ctx.lake.root,
        "started_at": ctx.started_at.isoformat(), "report": ctx.report,
        "error": next((r.error for r in ctx.records if r.status == "failed"), None),
        "steps": [{"step": r.step, "status": r.status, "seconds": None if r.seconds is None else round(r.seconds, 3),
                   "rows_in": r.written.rows_in, "rows_out": r.written.rows_out, "outputs": list(r.written.outputs),
                   "error": r.error, **asdict(r.cost)} for r in ctx.records],
        "problems": ctx.problems,
    }


def cmd_run(args, settings) -> int:
    import json

    from cdp.check import check_configuration
    from cdp.pipeline import plan, run_pipeline

    steps = [s.strip() for s in args.steps.split(",")] if args.steps else None
    planned = None if args.resume else [s.name for s in plan(steps, args.start_from)]
    # every mistake in the configuration of the steps to run is one line before a JVM starts
    checked = check_configuration(settings, planned)
    _lakehouse_free(settings, args.run_id, args.wait)
    ctx = run_pipeline(settings, command_session(args, settings, "cdp"), steps, _console(args), as_of=args.as_of,
                       run_id=args.run_id, start_from=args.start_from, resume=args.resume, raise_on_failure=False,
                       wait=args.wait, allow_new_sources=args.allow_new_sources, conf=checked.conf)
    if args.json:
        print(json.dumps(run_document(ctx), indent=2, default=str))
    elif ctx.failure is None:
        done = sum(r.status == "succeeded" for r in ctx.records)
        seconds = (datetime.now(timezone.utc) - ctx.started_at).total_seconds()
        print(f"run {ctx.run_id} succeeded: {done} step(s) in {seconds:.0f}s"
              + (f"; report: {ctx.report}" if ctx.report else ""), flush=True)
    if ctx.failure is not None:
        raise ctx.failure
    if ctx.problems:
        print(f"error: {len(ctx.problems)} file(s) could not land: {ctx.problems[0]}"
              + (f" (and {len(ctx.problems) - 1} more above)" if len(ctx.problems) > 1 else ""), file=sys.stderr)
        return 1
    return 0


def _lakehouse_free(settings, run_id: str | None, wait: int | None) -> None:
    """Stop before a JVM starts when another run holds a local lakehouse and we are not to wait (cdp.lock)."""
    from cdp.lock import LakehouseBusy, busy_line, holder_in_the_way

    wait = settings.lock.wait_seconds if wait is None else wait
    root = settings.path(settings.paths.lakehouse)
    holder = holder_in_the_way(root, run_id, settings.lock) if wait == 0 else None
    if holder is not None:
        raise LakehouseBusy(busy_line(root, holder, wait))


def cmd_status(args, settings) -> int:
    import json

    from rich.table import Table

    from cdp.io import Lakehouse
    from cdp.runs import recent_runs, run_steps
    from cdp.tables import PIPELINE_RUNS

    lake = Lakehouse.from_settings(command_session(args, settings, "cdp-status"), settings)
    if not lake.exists(PIPELINE_RUNS):
        raise CdpError(f"no run recorded yet ({PIPELINE_RUNS} is absent at {lake.root}): start one with `cdp run`")
    console = _console(args)
    if args.run_id:
        steps = run_steps(lake, args.run_id)
        if not steps:
            raise CdpError(f"run {args.run_id!r} has no step in {PIPELINE_RUNS}; `cdp status` lists the runs")
        doc = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.asDict().items()
                if k not in ("level", "plan", "as_of", "env")} for r in steps]
        t = Table(title=f"run {args.run_id}", title_justify="left")
        for col in ("step", "status", "started (UTC)", "seconds", "rows in", "rows out", "error"):
            t.add_column(col, overflow="fold")
        for r in steps:
            t.add_row(r.step, r.status, str(r.started_at or "")[:19], "" if r.seconds is None else f"{r.seconds:.1f}",
                      f"{r.rows_in or 0:,}", f"{r.rows_out or 0:,}", r.error or "")
    else:
        runs = recent_runs(lake, args.runs)
        doc = [{"run_id": r.run_id, "status": r.status, "started_at": r.started_at.isoformat() if r.started_at else None,
                "seconds": r.seconds, "plan": r.plan, "succeeded": r.succeeded or 0, "failed": r.failed or 0,
                "skipped": r.skipped or 0, "rows_out": r.rows_out or 0, "error": r.error, "env": r.env} for r in runs]
        t = Table(title=f"latest {len(runs)} run(s) in {PIPELINE_RUNS}", title_justify="left")
        for col in ("run", "started (UTC)", "status", "seconds", "steps ok/failed/skipped", "rows written", "error"):
            t.add_column(col, overflow="fold")
        for r in runs:
            status = r.status if r.status != "running" else "running (or stopped without an end: a crash)"
            t.add_row(r.run_id, str(r.started_at)[:19], status, "" if r.seconds is None else f"{r.seconds:.0f}",
                      f"{r.succeeded or 0}/{r.failed or 0}/{r.skipped or 0}", f"{r.rows_out or 0:,}", r.error or "")
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
    else:
        console.print(t)
    return 0


def cmd_report(args, settings) -> int:
    """`cdp report [--run-id ID] [--out FILE]`: write the run report and say where."""
    from cdp.io import Lakehouse
    from cdp.reports.run_report import write_run_report

    spark = command_session(args, settings, "cdp-report")
    lake = Lakehouse.from_settings(spark, settings)
    location = write_run_report(lake, settings, getattr(args, "run_id", None), getattr(args, "out", None))
    print(f"report written to {location}")
    return 0
