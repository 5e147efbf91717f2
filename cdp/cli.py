"""`cdp` command line: the parser, and `main`, which loads the settings, calls the command's handler (cdp/commands/)
and turns what went wrong into one line on stderr (the traceback goes to the log file)."""

from __future__ import annotations

import argparse
import re
import sys
import traceback
from pathlib import Path

from cdp import __version__
from cdp.commands.forget import cmd_forget
from cdp.commands.forget import configure_parser as configure_forget
from cdp.commands.lakehouse import cmd_eval, cmd_explain, cmd_profile, cmd_quarantine, cmd_sql
from cdp.commands.project import cmd_check, cmd_docs, cmd_generate, cmd_setup
from cdp.commands.runs import cmd_report, cmd_run, cmd_status
from cdp.commands.workflows import cmd_workflows
from cdp.commands.workflows import configure_parser as configure_workflows
from cdp.errors import CdpError, first_line


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--env", help="configuration overlay conf/<env>.yaml (default: $CDP_ENV or local)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. --set synth.customers=1000 (repeatable)")
    p.add_argument("--conf-dir", help="folder holding base.yaml and the overlays (default: ./conf of the project)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show Spark's and the libraries' output and full tracebacks (default: they go to the log file)")
    return p


def _output() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    out = p.add_mutually_exclusive_group()
    out.add_argument("-q", "--quiet", action="store_true", help="print only the result line (errors still go to stderr)")
    out.add_argument("--json", action="store_true", help="print one JSON document on stdout and nothing else")
    return p


def _steps_help() -> str:
    from cdp.pipeline import STEPS

    width = max(len(s.name) for s in STEPS)
    return "steps, in order:\n" + "\n".join(f"  {s.name:<{width}}  {s.description}" for s in STEPS)


def _run_id(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}", value):
        raise argparse.ArgumentTypeError(f"{value!r}: use letters, digits and _ . : - (up to 100 characters)")
    return value


def _as_of_date(text: str):
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; give YYYY-MM-DD, e.g. 2025-06-30") from None


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="cdp", description="Open lakehouse Customer Data Platform on Spark + Delta: lands every channel's data, "
        "resolves identities, builds journeys and Customer 360 profiles, predicts churn and value, picks actions.",
        epilog="examples:\n  cdp run                        # the whole pipeline (demo data when none is landed), "
        "report at the end\n  cdp status                     # the latest runs and their steps\n"
        "  cdp run --resume               # continue the latest failed run from its failed step\n"
        "  cdp sql \"SELECT rfm_segment, count(*) FROM gold.customer_profile GROUP BY 1\"\n"
        "  cdp explain <customer_id>      # why these records are one customer\n\n"
        "`cdp <command> --help` explains each command; settings: conf/base.yaml (--env, --set key=value).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"cdp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    raw = argparse.RawDescriptionHelpFormatter

    run = sub.add_parser("run", parents=[common, _output()], help="run the pipeline end to end (or --steps, --from, --resume)",
                         description="Run the pipeline's steps in DAG order on the configured Spark (the embedded local "
                         "one by default). A step that fails stops the steps depending on it; the others still run; "
                         "every step is recorded in audit.pipeline_runs (`cdp status`).",
                         epilog=_steps_help() + "\n\nexamples:\n  cdp run\n  cdp run --steps bronze,silver\n"
                         "  cdp run --from identity          # identity and everything after it\n"
                         "  cdp run --resume                 # the latest failed run, from its failed step\n"
                         "  cdp run --json > run.json        # for scripts: one JSON document, nothing else",
                         formatter_class=raw)
    which = run.add_mutually_exclusive_group()
    which.add_argument("--steps", help="comma-separated step names to run (their dependencies are assumed done)")
    which.add_argument("--from", dest="start_from", metavar="STEP",
                       help="run this step and every step that depends on it, directly or not")
    which.add_argument("--resume", action="store_true",
                       help="continue the latest failed run (or --run-id's) under its id: the steps that did not "
                            "succeed, in order")
    run.add_argument("--as-of", type=_as_of_date, metavar="YYYY-MM-DD",
                     help="backtest as of the end of this day (conf/churn.yaml scoring.timezone): churn features, "
                          "training, scores and value see nothing after it; default: conf/churn.yaml scoring.as_of")
    run.add_argument("--wait", type=int, metavar="SECONDS",
                     help="when another run holds the lakehouse, wait up to this long for it (default: "
                          "lock.wait_seconds, 0: stop at once with a line naming it)")
    run.add_argument("--allow-new-sources", action="store_true",
                     help="run even though no configured source is one the lakehouse was built from (a new "
                          "lakehouse is refused only when it already holds another company's sources)")
    run.add_argument("--run-id", type=_run_id, metavar="ID",
                     help="the run's id instead of a generated one (a scheduler's run id; re-running a failed run "
                          "under its own id replaces what it wrote)")

    status = sub.add_parser("status", parents=[common, _output()], help="the latest runs and their steps, from "
                            "audit.pipeline_runs", epilog="examples:\n  cdp status\n  cdp status --run 20251130T0200Z-1a2b3c4d"
                            "\n  cdp status --json", formatter_class=raw)
    status.add_argument("--runs", type=int, default=10, metavar="N", help="how many runs to list (default 10)")
    status.add_argument("--run", dest="run_id", metavar="RUN_ID", help="show this run's steps")

    report = sub.add_parser("report", parents=[common], help="write the run report: one self-contained HTML page with "
                            "plots (identity, quality, funnel, paths, segments, retention, NPS, churn, value, actions)",
                            epilog="example: cdp report && xdg-open lakehouse/reports/run-report.html")
    report.add_argument("--out", help="file to write (default: <paths.reports>/run-report.html)")
    report.add_argument("--run-id", metavar="RUN_ID", help="the run to report on (default: the latest)")

    configure_workflows(sub, common)
    configure_forget(sub, common)

    gen = sub.add_parser("generate", parents=[common], help="write synthetic multi-channel landing files + ground truth",
                         epilog="example: cdp generate --customers 1000 --seed 7 --out /tmp/demo")
    gen.add_argument("--customers", type=int, help="number of persons (default: synth.customers)")
    gen.add_argument("--seed", type=int, help="random seed (default: synth.seed)")
    gen.add_argument("--out", help="output folder: landing/ and ground_truth/ go inside (default: paths from conf)")
    gen.add_argument("--workers", type=int, help="processes (default: synth.workers); output is identical")

    sub.add_parser("setup", parents=[common], help="fetch Spark's JARs into the project Ivy cache and check Java",
                   epilog="example: cdp setup   (`make setup` runs it once; later starts need no network)")
    sub.add_parser("check", parents=[common], help="validate all configuration (settings, sources, identity, "
                   "contracts) without starting Spark", epilog="example: cdp check --env cluster")

    docs = sub.add_parser("docs", parents=[common], help="write the data dictionary (every table, column and "
                          "expectation) from the contracts and source definitions, without Spark",
                          epilog="example: cdp docs --out docs/data-dictionary.md")
    docs.add_argument("--out", help="file to write (default: <paths.reports>/data-dictionary.md)")

    quarantine = sub.add_parser("quarantine", parents=[common], help="what is in quarantine, by source and reason; "
                                "--replay sends it through silver again after a configuration fix",
                                epilog="examples:\n  cdp quarantine --source pos_sales --show 5\n"
                                "  cdp quarantine --replay --source pos_sales --reason implausible_time   # after the fix\n"
                                "  cdp run                                  # carries what came back to the gold tables",
                                formatter_class=raw)
    quarantine.add_argument("--source", help="only this source")
    quarantine.add_argument("--reason", help="only this reason (e.g. bad_timestamp:sold_at) or kind of reason "
                            "(bad_timestamp, dq:interactions)")
    quarantine.add_argument("--show", type=int, default=0, metavar="N", help="also print N quarantined rows with their raw values")
    quarantine.add_argument("--replay", action="store_true",
                            help="send the silver-stage rows (of --source, --reason) through silver again with the "
                                 "current configuration: what passes now goes forward, the rest stays with its reason "
                                 "(audit.quarantine_replays)")

    sql = sub.add_parser("sql", parents=[common], help="run Spark SQL over the lakehouse, naming tables layer.table",
                         epilog='example: cdp sql "SELECT rfm_segment, count(*) FROM gold.customer_profile GROUP BY 1"')
    sql.add_argument("query", help="a Spark SQL query; tables are written layer.table (gold.customers, silver.interactions)")
    sql.add_argument("--limit", type=int, default=100, help="rows to print at most (default 100)")

    profile = sub.add_parser("profile", parents=[common], help="one customer's 360: the profile and the latest "
                             "touchpoints of the journey", epilog="example: cdp profile C129a0f89694fb6bd --events 30")
    profile.add_argument("customer_id", help="a customer_id of gold.customer_profile")
    profile.add_argument("--events", type=int, default=20, help="latest journey touchpoints to show (default 20)")

    explain = sub.add_parser("explain", parents=[common], help="why is this one customer? records and the links that joined them",
                             epilog="example: cdp explain C129a0f89694fb6bd")
    explain.add_argument("customer_id", help="a customer_id of gold.identity_map")

    ev = sub.add_parser("eval", parents=[common], help="evaluate identity resolution against your labels (or the generator's "
                        "ground truth), by match-probability threshold, and log to MLflow",
                        epilog="labels: a CSV (or a folder of them) with a header, either record pairs "
                        "(source_l,record_key_l,source_r,record_key_r,is_match) or each record's entity "
                        "(source,record_key,entity_id); without --labels, the generator's ground truth at "
                        "paths.ground_truth (cdp generate writes it). example: cdp eval identity --labels review.csv")
    ev.add_argument("what", choices=["identity"], help="what to evaluate")
    ev.add_argument("--labels", metavar="FILE", help="your labels file or folder (default: the generator's ground truth)")
    ev.add_argument("--thresholds", metavar="P,P,...", help="match probabilities to report (default: 0.5,0.8,0.9,"
                    "0.95,0.99,0.995,0.999,0.9999; the configured probabilistic.threshold is always added)")
    return parser


COMMANDS = {"run": cmd_run, "generate": cmd_generate, "setup": cmd_setup, "check": cmd_check, "docs": cmd_docs,
            "quarantine": cmd_quarantine, "sql": cmd_sql, "profile": cmd_profile, "explain": cmd_explain, "eval": cmd_eval,
            "status": cmd_status, "report": cmd_report, "workflows": cmd_workflows, "forget": cmd_forget}
NEEDS_NO_LOG = ("check", "docs", "workflows")


def _failure(exc: BaseException, log: Path | None, verbose: bool) -> str:
    """One line naming what failed, the log holding the traceback, and what to do."""
    from cdp.pipeline import StepFailed

    what = str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {first_line(exc)}"
    what += _skipped(exc)
    if "JAVA_GATEWAY_EXITED" in what:
        what = ("Spark could not start its JVM (often: the JARs in spark.jars.packages could not be fetched); run "
                "`make setup` with access to Maven Central, or set spark.packages=provided on a cluster")
    where = f"; full traceback and Spark's output in {log}" if log else ""
    hint = "" if verbose else " (or rerun with --verbose)"
    return f"error: {what}{where}{hint}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.log = None
    try:
        from cdp.config import load_settings
        from cdp.logs import quiet_libraries, start_log

        settings = load_settings(args.env, args.overrides, args.conf_dir)
        quiet_libraries(args.verbose)
        if args.command not in NEEDS_NO_LOG:
            args.log = start_log(settings, args.command, args.verbose)
        try:
            return COMMANDS[args.command](args, settings)
        finally:
            _stop_spark()
    except CdpError as exc:
        cause = getattr(exc, "cause", None)
        if cause is None:
            step = getattr(exc, "step", None)
            print(f"error: {exc}" if step is None else f"error: step '{step}' failed: {exc}{_skipped(exc)}",
                  file=sys.stderr)
            return 2
        _log_traceback(cause, args.log, args.verbose)
        print(_failure(exc, args.log, args.verbose), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # our bug or the environment's: one line here, the traceback in the log
        _log_traceback(exc, args.log, args.verbose)
        print(_failure(exc, args.log, args.verbose), file=sys.stderr)
        return 1


def job_main() -> None:
    """`cdp` for schedulers that call the entry point's function and judge it by an exception, not a return value
    (a Databricks python_wheel_task): a non-zero exit code becomes SystemExit, so the task fails."""
    code = main()
    if code:
        raise SystemExit(code)


def _skipped(exc: BaseException) -> str:
    skipped = getattr(exc, "skipped", None)
    if not skipped:
        return ""
    return (f"; not run because of it: {', '.join(skipped[:6])}" + (f" and {len(skipped) - 6} more" if len(skipped) > 6
            else "") + "; fix it and `cdp run --resume`")


def _log_traceback(exc: BaseException, log: Path | None, verbose: bool) -> None:
    text = "".join(traceback.format_exception(exc))
    if log is not None:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(text)
    if verbose:
        print(text, file=sys.stderr)


def _stop_spark() -> None:
    """Stop the session a command started and remove what it left (its checkpoint folder)."""
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is not None:
        from cdp.spark import stop_spark

        stop_spark(spark)


if __name__ == "__main__":
    sys.exit(main())
