"""The `cdp` commands that look at the lakehouse: the quarantine, Spark SQL by table name, one customer's 360,
why records are one customer, and the identity evaluation. Each is a short function over library calls."""

from __future__ import annotations

from cdp.commands.session import command_session
from cdp.errors import CdpError, first_line


def _lake_holding(args, settings, command: str, table):
    """The lakehouse, opened for `cdp <command>`, once it holds `table` (else one line: run the pipeline first)."""
    from cdp.io import Lakehouse

    lake = Lakehouse.from_settings(command_session(args, settings, f"cdp-{command}"), settings)
    if not lake.exists(table):
        raise CdpError(f"no {table} yet: run `cdp run` first")
    return lake


def cmd_quarantine(args, settings) -> int:
    from pyspark.sql import functions as F
    from rich.console import Console
    from rich.table import Table

    from cdp.io import Lakehouse
    from cdp.tables import QUARANTINE

    if getattr(args, "replay", False):
        return _replay(args, settings)
    lake = Lakehouse.from_settings(command_session(args, settings, "cdp-quarantine"), settings)
    if not lake.exists(QUARANTINE):
        print(f"no {QUARANTINE} yet: run `cdp run` first")
        return 0
    from cdp.silver.replay import selected

    rows = selected(lake.read(QUARANTINE), args.source, args.reason)
    counts = (rows.groupBy("source", "stage", "reason")
              .agg(F.count(F.lit(1)).alias("n"), F.max("run_id").alias("last_run")).orderBy("source", "stage", "reason"))
    console = Console(width=None if Console().is_terminal else 160)
    t = Table(title=f"{QUARANTINE} by source and reason", title_justify="left")
    for col in ("source", "stage", "reason", "rows", "last run"):
        t.add_column(col, justify="right" if col == "rows" else "left")
    found = counts.collect()  # one row per source, stage and reason
    for r in found:
        t.add_row(r.source, r.stage, r.reason, f"{r.n:,}", r.last_run)
    console.print(t if found else "nothing in quarantine" + (" for this filter" if args.source or args.reason else ""))
    if args.show and found:
        sample = Table(title=f"{args.show} quarantined row(s)", title_justify="left")
        for col in ("source", "reason", "record key", "file", "raw (as delivered)"):
            sample.add_column(col, overflow="fold")
        for r in rows.orderBy(F.col("quarantined_at").desc(), "record_key").limit(args.show).collect():
            sample.add_row(r.source, r.reason, r.record_key or "", r.source_file or "", r.raw or "")
        console.print(sample)
    return 0


def _replay(args, settings) -> int:
    """`cdp quarantine --replay`: the silver quarantine through silver again, holding the lakehouse lock."""
    import uuid
    from datetime import datetime, timezone

    from rich.console import Console
    from rich.table import Table

    from cdp.config.sources import load_sources
    from cdp.io import Lakehouse
    from cdp.lock import lakehouse_lock
    from cdp.silver.replay import replay_quarantine
    from cdp.tables import QUARANTINE_REPLAYS

    specs = load_sources(settings)   # a mistake in the fixed configuration: one line before Spark starts
    if args.source and args.source not in {s.name for s in specs}:
        raise CdpError(f"unknown source {args.source!r}; sources are: {', '.join(s.name for s in specs)}")
    now = datetime.now(timezone.utc)
    run_id = f"replay-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    spark = command_session(args, settings, "cdp-quarantine")
    lake = Lakehouse.from_settings(spark, settings)
    with lakehouse_lock(spark, lake.root, run_id, "quarantine --replay", settings.lock):
        lake.ensure(QUARANTINE_REPLAYS)
        result = replay_quarantine(lake, specs, settings, run_id, now, args.source, args.reason)
    console = Console(width=None if Console().is_terminal else 160)
    for (source, reason), n in sorted(result.not_replayable.items()):
        console.print(f"{source}: {n:,} row(s) quarantined at bronze ({reason}) cannot be replayed: they never "
                      "reached bronze; deliver their file again")
    if not result.sources:
        console.print("nothing to replay: no silver-stage row in quarantine"
                      + (" for this filter" if args.source or args.reason else ""))
        return 0
    t = Table(title=f"replay {run_id} ({QUARANTINE_REPLAYS})", title_justify="left")
    for col in ("source", "replayed", "came back", "still quarantined, why"):
        t.add_column(col, justify="right" if col in ("replayed", "came back") else "left", overflow="fold")
    for s in result.sources:
        still = ", ".join(f"{n:,} {reason}" for reason, n in sorted(s.still.items())) or "none"
        t.add_row(s.source, f"{s.replayed:,}", f"{s.returned:,}", still)
    console.print(t)
    print(f"{result.returned:,} of {result.replayed:,} quarantined record(s) came back to silver"
          + ("; `cdp run` carries them to the gold tables" if result.returned else ""))
    return 0


def cmd_sql(args, settings) -> int:
    from rich.console import Console
    from rich.table import Table

    from cdp.io import Lakehouse
    from cdp.sql import qualify_tables

    lake = Lakehouse.from_settings(command_session(args, settings, "cdp-sql"), settings)
    try:
        query = qualify_tables(args.query, lake)
    except ValueError as exc:
        raise CdpError(f"{exc}") from None
    try:
        result = lake.spark.sql(query)
        rows = result.limit(args.limit + 1).collect()   # at most limit + 1 rows reach the driver
    except Exception as exc:  # a user's query: its mistake is one line, not a traceback
        raise CdpError(f"the query failed: {first_line(exc)}") from None
    console = Console(width=None if Console().is_terminal else 200)
    t = Table(title=f"{min(len(rows), args.limit)} row(s)" + (f" (first {args.limit})" if len(rows) > args.limit else ""),
              title_justify="left")
    for name in result.columns:
        t.add_column(name, overflow="fold")
    for r in rows[:args.limit]:
        t.add_row(*["" if v is None else str(v) for v in r])
    console.print(t)
    return 0


def cmd_profile(args, settings) -> int:
    from pyspark.sql import functions as F
    from rich.console import Console
    from rich.table import Table

    from cdp.tables import CUSTOMER_JOURNEY, CUSTOMER_PROFILE

    lake = _lake_holding(args, settings, "profile", CUSTOMER_PROFILE)
    row = lake.read(CUSTOMER_PROFILE).where(F.col("customer_id") == args.customer_id).first()
    if row is None:
        raise CdpError(f"customer {args.customer_id!r} not found in {CUSTOMER_PROFILE}")
    console = Console(width=None if Console().is_terminal else 160)
    t = Table(title=f"customer {args.customer_id}", title_justify="left")
    t.add_column("attribute")
    t.add_column("value", overflow="fold")
    for name, value in row.asDict().items():
        t.add_row(name, "" if value is None else str(value))
    console.print(t)
    if lake.exists(CUSTOMER_JOURNEY):
        events = (lake.read(CUSTOMER_JOURNEY).where(F.col("customer_id") == args.customer_id)
                  .orderBy(F.col("event_ts").desc(), F.col("interaction_id").desc()).limit(args.events).collect())
        jt = Table(title=f"latest {len(events)} touchpoint(s) of the journey", title_justify="left")
        for c in ("when (UTC)", "channel", "event", "stage", "session"):
            jt.add_column(c, overflow="fold")
        for e in events:
            jt.add_row(str(e.event_ts)[:19], e.channel, e.event_type, e.stage, str(e.session_id)[:12])
        console.print(jt)
    return 0


def cmd_explain(args, settings) -> int:
    from rich.console import Console
    from rich.table import Table

    from cdp.identity.writer import explain_customer
    from cdp.tables import IDENTITY_MAP

    lake = _lake_holding(args, settings, "explain", IDENTITY_MAP)
    records, links = explain_customer(lake, args.customer_id)
    rows = records.limit(500).collect()  # one customer's records: small by construction (cluster cap)
    if not rows:
        raise CdpError(f"customer {args.customer_id!r} not found in {IDENTITY_MAP}")
    console = Console(width=None if Console().is_terminal else 160)
    shown = ["email", "phone", "full_name_display", "birth_date", "postal_code", "loyalty_id", "device_id",
             "cookie_id", "facebook_handle", "twitter_handle", "instagram_handle", "review_handle"]
    t = Table(title=f"customer {args.customer_id}: {len(rows)} source record(s)", title_justify="left")
    for c in ("record", "observed at (UTC)", "identifiers"):
        t.add_column(c, overflow="fold")
    for r in rows:
        custom = r.asDict().get("custom_attributes")
        ids = ", ".join([*(f"{c}={r[c]}" for c in shown if r[c] is not None),
                         *(f"{k}={v}" for k, v in sorted((custom or {}).items()))])
        t.add_row(r.record_id, str(r.observed_at)[:19], ids)
    console.print(t)
    lt = Table(title="links (rule and evidence)", title_justify="left")
    for c in ("src", "dst", "rule", "evidence", "weight"):
        lt.add_column(c, overflow="fold")
    for r in links.limit(1000).collect():
        lt.add_row(r.src, r.dst, r.rule, r.evidence, f"{r.weight:g}")
    console.print(lt)
    return 0


def _thresholds(text: str | None) -> tuple[float, ...] | None:
    """--thresholds 0.9,0.99 -> (0.9, 0.99); a one-line error for anything but numbers between 0 and 1."""
    if not text:
        return None
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        values = ()
    if not values or not all(0 < v < 1 for v in values):
        raise CdpError(f"--thresholds {text!r}: give match probabilities between 0 and 1, comma-separated "
                       "(e.g. 0.9,0.99,0.999)")
    return values


def cmd_eval(args, settings) -> int:
    from rich.console import Console

    from cdp.identity.evaluate import check_labels
    from cdp.identity.report import (
        DEFAULT_THRESHOLDS,
        evaluate_identity,
        evaluation_table,
        has_ground_truth,
        log_identity_evaluation,
        threshold_table,
    )
    from cdp.tables import IDENTITY_MAP

    labels = args.labels
    thresholds = _thresholds(args.thresholds) or DEFAULT_THRESHOLDS
    if labels:
        check_labels(labels)   # a missing file or a wrong header is one line before a JVM starts
    elif not has_ground_truth(settings):
        raise CdpError(f"no ground truth at {settings.path(settings.paths.ground_truth)}: `cdp eval identity` compares "
                       "the resolution with the generator's answers, which `cdp generate` (or `cdp run` on the demo) "
                       "writes; give your own with --labels FILE")
    lake = _lake_holding(args, settings, "eval", IDENTITY_MAP)
    evaluation = evaluate_identity(lake, settings, labels, thresholds)
    mlflow_run = log_identity_evaluation(settings, "cli", evaluation.metrics, evaluation)
    console = Console(width=None if Console().is_terminal else 160)
    against = f"{labels} ({evaluation.form})" if labels else "ground truth"
    console.print(evaluation_table(evaluation.metrics, mlflow_run, against))
    console.print(threshold_table(evaluation) if evaluation.thresholds else f"[dim]{evaluation.note}[/dim]")
    return 0
