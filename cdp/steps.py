"""What each step of the pipeline does: one function per step, taking the run's context (settings, Spark, the
lakehouse, the console) and calling its writer. The DAG that orders them is cdp/pipeline.py's STEPS."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cdp.run_context import RunContext


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
        hostile_share=s.synth.hostile_share,
    )
    ctx.console.print(f"  {sum(res.records_by_source.values()):,} records in {res.files} files, {res.seconds:.1f}s"
                      + (f" (+{res.hostile_records:,} hostile ones for the quarantine)" if res.hostile_records else ""))
    return res


def land_bronze(ctx: RunContext) -> object:
    from cdp.ingest.bronze import land_all
    from cdp.summaries import bronze_summary

    s = ctx.settings
    t0 = time.monotonic()

    def progress(done: int, total: int, res) -> None:
        status = f"{res.landed:,} rows from {res.new_files} new file(s)"
        if res.rejected:
            status += f", [red]{len(res.rejected)} file(s) rejected[/red]"
        ctx.console.print(f"  bronze [{done}/{total}] {res.source}: {status} ({time.monotonic() - t0:.1f}s since the step began)")

    results = land_all(ctx.lake, ctx.conf.sources, s.path(s.paths.landing), ctx.run_id, ctx.started_at,
                       s.ingest.max_value_chars, on_source=progress, parallelism=s.ingest.parallelism)
    ctx.console.print(bronze_summary(results))
    for res in results:
        for path, reason in res.rejected:
            ctx.problems.append(f"{res.source}: file {path} was not landed: {reason} "
                                "(it is looked at again every run until it is replaced or removed)")
    return results


def build_silver_tables(ctx: RunContext) -> object:
    from cdp.silver.step import build_silver

    t0 = time.monotonic()

    def progress(done: int, total: int, source: str, prepared) -> None:
        what = f"{len(prepared.bronze_runs)} new bronze batch(es)" if prepared else "nothing new"
        ctx.console.print(f"  silver [{done}/{total}] {source}: {what} ({time.monotonic() - t0:.1f}s since the step began)")

    return build_silver(ctx.lake, ctx.conf, ctx.run_id, ctx.started_at,
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

    res = resolve_identities(ctx.lake, ctx.conf, ctx.run_id, ctx.started_at,
                             progress=lambda phase, secs: ctx.console.print(f"  identity: {phase} ({secs:.1f}s)"))
    ctx.console.print(resolution_table(res))
    skipped = res.matching.skipped_passes if res.matching is not None else []
    if skipped:
        ctx.console.print(f"[yellow]  probabilistic training: no pair of records agrees on {', '.join(skipped)} "
                          "(probabilistic.training.em_blocking): the model learnt from the other passes[/yellow]")
    mlflow_run = log_matching_model(ctx.settings, res)
    if mlflow_run:
        ctx.console.print(f"[dim]probabilistic model (Splink JSON) logged to MLflow run {mlflow_run}[/dim]")
    return res


def _journey_touchpoints(ctx: RunContext):
    """This run's journeys step's touchpoints (already materialised), or None (the step reads them itself)."""
    return getattr(ctx.outputs.get("journeys"), "touchpoint_frame", None)


def build_customer_journeys(ctx: RunContext) -> object:
    from cdp.journey.step import build_journeys

    res = build_journeys(ctx.lake, ctx.conf, ctx.run_id, ctx.started_at)
    ctx.console.print(f"  {res.touchpoints:,} touchpoints of {res.customers:,} customers in gold.customer_journey")
    for (source, reason), n in sorted(res.unattributed.items()):
        ctx.summary.append(f"{source}: {n:,} interactions belong to no customer ({reason.replace('_', ' ')})")
    for table, n in res.rows.items():
        ctx.console.print(f"  {table}: {n:,} rows")
    return res


def build_customer_profiles(ctx: RunContext) -> object:
    from cdp.profile.step import build_profiles

    res = build_profiles(ctx.lake, ctx.conf, ctx.run_id, ctx.started_at, touchpoints=_journey_touchpoints(ctx))
    changes = ", ".join(f"{n:,} {action}" for action, n in sorted(res.history.items())) or "no change"
    ctx.console.print(f"  {res.customers:,} customer profiles as of {res.as_of:%Y-%m-%d %H:%M}; history: {changes}")
    return res


def assign_segments(ctx: RunContext) -> object:
    from cdp.profile.step import build_segments

    sizes = build_segments(ctx.lake, ctx.conf, ctx.run_id, ctx.started_at)
    for segment, n in sorted(sizes.items()):
        ctx.console.print(f"  segment {segment}: {n:,} customers")
    return sizes


def build_churn_features(ctx: RunContext) -> object:
    from cdp.ml.step import build_churn_features as build

    res = build(ctx.lake, ctx.conf, ctx.run_id, _journey_touchpoints(ctx),
                as_of=ctx.as_of)
    ctx.console.print(f"  {res.rows:,} customer snapshots ({res.snapshots[0]} to {res.snapshots[-1]}, "
                      f"{len(res.snapshots)} dates), {res.churn_rate:.1%} churned in the horizon after them")
    return res


def train_churn(ctx: RunContext) -> object:
    from cdp.ml.step import train_churn_model

    result, reg = train_churn_model(ctx.lake, ctx.conf, ctx.run_id, as_of=ctx.as_of)
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
    from cdp.ml.step import score_churn as score

    res = score(ctx.lake, ctx.conf, ctx.run_id, ctx.started_at, ctx.as_of,
                _journey_touchpoints(ctx))
    bands = ", ".join(f"{n:,} {band}" for band, n in sorted(res.bands.items()))
    ctx.console.print(f"  {res.customers:,} customers scored as of {res.as_of} by model version "
                      f"{res.model_version}: {bands}")
    return res


def value_customers(ctx: RunContext) -> object:
    from cdp.ml.step import build_customer_value

    res = build_customer_value(ctx.lake, ctx.conf, ctx.run_id, ctx.started_at,
                               ctx.as_of, _journey_touchpoints(ctx))
    m, g = res.bgnbd, res.gamma_gamma
    spend = f"Gamma-Gamma p={g.p:.3f} q={g.q:.3f} v={g.v:.3f}" if g is not None else res.note
    ctx.console.print(f"  {res.customers:,} customers valued as of {res.as_of}; BG/NBD r={m.r:.3f} alpha={m.alpha:.3f} "
                      f"a={m.a:.3f} b={m.b:.3f}; {spend}")
    return res


def choose_actions(ctx: RunContext) -> object:
    from cdp.ml.step import choose_actions as choose

    counts = choose(ctx.lake, ctx.conf, ctx.run_id, _journey_touchpoints(ctx))
    for action, n in sorted(counts.items()):
        ctx.console.print(f"  {action}: {n:,} customer{'' if n == 1 else 's'}")
    return counts


def protect_pii(ctx: RunContext) -> object:
    """Write the BI-facing copies of conf/pii.yaml, every PII column hashed (salt from CDP_PII_SALT) or masked."""
    from cdp.privacy.pii import write_protected_copies

    res = write_protected_copies(ctx.lake, ctx.conf, ctx.run_id)
    if res.skipped:
        ctx.console.print(f"[yellow]  warning: {res.skipped}[/yellow]")
        ctx.summary.append(res.skipped)
    for name, n in res.rows.items():
        ctx.console.print(f"  {name}: {n:,} rows, PII hashed or masked")
    return res


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
    evaluation = evaluate_identity(ctx.lake, ctx.conf)
    mlflow_run = log_identity_evaluation(ctx.conf, ctx.run_id, evaluation.metrics, evaluation)
    ctx.console.print(evaluation_table(evaluation.metrics, mlflow_run))
    ctx.console.print(threshold_table(evaluation) if evaluation.thresholds else f"[dim]{evaluation.note}[/dim]")
    return evaluation.metrics


def write_report(ctx: RunContext) -> object:
    from cdp.reports.run_report import write_run_report

    location = write_run_report(ctx.lake, ctx.conf, ctx.run_id)
    ctx.console.print(f"  report written to {location}")
    ctx.report = location
    return location
