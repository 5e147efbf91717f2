"""`cdp` command: run the pipeline, generate demo data, warm up the JAR cache."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cdp.errors import CdpError


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--env", help="configuration overlay conf/<env>.yaml (default: $CDP_ENV or local)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. --set synth.customers=1000 (repeatable)")
    p.add_argument("--conf-dir", help="folder holding base.yaml and the overlays (default: ./conf of the project)")
    return p


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(prog="cdp", description="Open lakehouse Customer Data Platform on Spark + Delta")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", parents=[common], help="run the pipeline end to end (or --steps)")
    run.add_argument("--steps", help="comma-separated step names to run (default: all)")

    gen = sub.add_parser("generate", parents=[common], help="write synthetic multi-channel landing files + ground truth")
    gen.add_argument("--customers", type=int, help="number of persons (default: synth.customers)")
    gen.add_argument("--seed", type=int, help="random seed (default: synth.seed)")
    gen.add_argument("--out", help="output folder: landing/ and ground_truth/ go inside (default: paths from conf)")
    gen.add_argument("--workers", type=int, help="processes (default: synth.workers); output is identical")

    sub.add_parser("setup", parents=[common], help="fetch Spark's JARs into the project Ivy cache and check Java")

    explain = sub.add_parser("explain", parents=[common], help="why is this one customer? records and the links that joined them")
    explain.add_argument("customer_id")

    ev = sub.add_parser("eval", parents=[common], help="evaluate against ground truth and log to MLflow")
    ev.add_argument("what", choices=["identity"])
    return parser


def cmd_generate(args, settings) -> int:
    from cdp.synth import generate

    if args.out:
        landing, truth = Path(args.out) / "landing", Path(args.out) / "ground_truth"
    else:
        landing, truth = Path(settings.path(settings.paths.landing)), Path(settings.path(settings.paths.ground_truth))
    customers = args.customers or settings.synth.customers
    seed = settings.synth.seed if args.seed is None else args.seed
    if customers < 1:
        raise CdpError("--customers must be at least 1")
    print(f"generating {customers:,} customers (seed {seed}) into {landing} and {truth}", flush=True)

    def progress(done: int, total: int) -> None:
        print(f"  chunk {done}/{total}", flush=True)

    res = generate(customers, seed, landing, truth, start=settings.synth.start, end=settings.synth.end,
                   chunk_size=settings.synth.chunk_size, workers=args.workers or settings.synth.workers,
                   progress=progress)
    width = max(len(s) for s in res.records_by_source)
    for source, n in res.records_by_source.items():
        print(f"  {source:<{width}}  {n:>12,}")
    print(f"  {'total':<{width}}  {sum(res.records_by_source.values()):>12,}  ({res.files} files, {res.seconds:.1f}s)")
    return 0


def cmd_run(args, settings) -> int:
    from cdp.pipeline import plan, run_pipeline
    from cdp.spark import build_spark

    steps = [s.strip() for s in args.steps.split(",")] if args.steps else None
    plan(steps)  # validate step names before starting a JVM
    spark = build_spark(settings)
    ctx = run_pipeline(settings, spark, steps)
    failed = [r for r in (ctx.outputs.get("bronze") or []) if getattr(r, "error", None)]
    return 1 if failed else 0


def cmd_setup(args, settings) -> int:
    from cdp.spark import build_spark, check_java, fetch_optional_packages

    print(f"java {check_java()} found")
    spark = build_spark(settings, app_name="cdp-setup")
    spark.range(1).count()
    print(f"spark {spark.version} with Delta ready (JARs cached in {settings.path(settings.spark.ivy_dir)})")
    spark.stop()
    for coord, ok in fetch_optional_packages(settings).items():
        if ok:
            print(f"optional package {coord}: cached")
        else:
            print(f"optional package {coord}: not served by the configured Maven repositories; "
                  f"running without it (see README, 'Optional JARs')")
    return 0


def cmd_explain(args, settings) -> int:
    from rich.console import Console
    from rich.table import Table

    from cdp.identity.resolve import MAP, explain_customer
    from cdp.io import Lakehouse
    from cdp.spark import build_spark

    lake = Lakehouse.from_settings(build_spark(settings, app_name="cdp-explain"), settings)
    if not lake.exists(MAP):
        raise CdpError("no gold.identity_map yet: run `cdp run` first")
    records, links = explain_customer(lake, args.customer_id)
    rows = records.limit(500).collect()  # one customer's records: small by construction (cluster cap)
    if not rows:
        raise CdpError(f"customer {args.customer_id!r} not found in gold.identity_map")
    console = Console(width=None if Console().is_terminal else 160)
    shown = ["email", "phone", "full_name_display", "birth_date", "postal_code", "loyalty_id", "device_id",
             "cookie_id", "facebook_handle", "twitter_handle", "instagram_handle", "review_handle"]
    t = Table(title=f"customer {args.customer_id}: {len(rows)} source record(s)", title_justify="left")
    for c in ("record", "observed at (UTC)", "identifiers"):
        t.add_column(c, overflow="fold")
    for r in rows:
        ids = ", ".join(f"{c}={r[c]}" for c in shown if r[c] is not None)
        t.add_row(r.record_id, str(r.observed_at)[:19], ids)
    console.print(t)
    lt = Table(title="links (rule and evidence)", title_justify="left")
    for c in ("src", "dst", "rule", "evidence", "weight"):
        lt.add_column(c, overflow="fold")
    for r in links.limit(1000).collect():
        lt.add_row(r.src, r.dst, r.rule, r.evidence, f"{r.weight:g}")
    console.print(lt)
    return 0


def cmd_eval(args, settings) -> int:
    from rich.console import Console

    from cdp.identity.report import (
        evaluate_resolution,
        evaluation_table,
        has_ground_truth,
        log_identity_evaluation,
    )
    from cdp.io import Lakehouse
    from cdp.spark import build_spark

    if not has_ground_truth(settings):
        raise CdpError(f"no ground truth at {settings.path(settings.paths.ground_truth)}: generate data with `cdp generate`")
    lake = Lakehouse.from_settings(build_spark(settings, app_name="cdp-eval"), settings)
    if not lake.exists("gold.identity_map"):
        raise CdpError("no gold.identity_map yet: run `cdp run` first")
    metrics = evaluate_resolution(lake, settings)
    Console().print(evaluation_table(metrics, log_identity_evaluation(settings, "cli", metrics)))
    return 0


COMMANDS = {"run": cmd_run, "generate": cmd_generate, "setup": cmd_setup, "explain": cmd_explain, "eval": cmd_eval}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from cdp.config import load_settings

        settings = load_settings(args.env, args.overrides, args.conf_dir)
        return COMMANDS[args.command](args, settings)
    except CdpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # Spark failing to start is the user's environment, not our bug
        if "JAVA_GATEWAY_EXITED" in str(exc):
            print("error: Spark could not start its JVM (often: the JARs in spark.jars.packages could not be fetched); "
                  "run `make setup` with access to Maven Central, or set spark.packages=provided on a cluster",
                  file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
