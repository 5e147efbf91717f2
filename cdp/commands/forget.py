"""`cdp forget`: the command line of GDPR erasure (cdp.privacy.erasure does the work). Light to import: the CLI
builds its parser from here before any Spark module loads."""

from __future__ import annotations

import uuid

from cdp.commands.session import command_session


def configure_parser(sub, common) -> None:
    """`cdp forget --email X | --phone X | --customer-id X | --file requests.csv [--landing] [--dry-run]`."""
    import argparse

    p = sub.add_parser(
        "forget", parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter,
        help="GDPR erasure: remove a person from every table, file, log entry and model example of the lakehouse",
        description="Find the person through the identity map and every identifier they used, delete their rows "
        "from bronze, silver, gold, the quarantine, features, scores and profile history, purge the files and "
        "transaction-log entries older versions kept (no time travel brings them back) and the MLflow input-example "
        "rows. Values are never printed; audit.erasure_log keeps a hash keyed with $CDP_PII_SALT. Landing files "
        "belong to the source systems: erase the person there too (or --landing rewrites ours). An email or phone "
        "more than one customer holds (a family phone, a placeholder) names no one: nothing is erased for it and "
        "the command exits with 1; name each person by --customer-id.",
        epilog="examples:\n  cdp forget --email ana.garcia@example.com --dry-run\n"
        "  cdp forget --customer-id C0123456789abcdef\n"
        "  cdp forget --file requests.csv --landing     # CSV header: kind,value (or email,phone,customer_id)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="an email the person used (normalised as silver does)")
    who.add_argument("--phone", help="a phone number the person used (any format; E.164 compared)")
    who.add_argument("--customer-id", help="a customer_id of gold.customers")
    who.add_argument("--file", metavar="CSV", help="many requests: a CSV with kind,value (or email/phone/customer_id) columns")
    p.add_argument("--landing", action="store_true", help="also rewrite the landing files without the person's rows "
                   "(they belong to the source: erase there too)")
    p.add_argument("--dry-run", action="store_true", help="count what would be erased; change nothing")


def cmd_forget(args, settings) -> int:
    from cdp.io import Lakehouse
    from cdp.privacy.requests import read_requests, request, salt

    if args.file:
        requests = read_requests(args.file)
    else:
        kind = next(k for k in ("email", "phone", "customer_id") if getattr(args, k))
        requests = [request(kind, getattr(args, kind))]
    salt()   # refuse before Spark starts
    spark = command_session(args, settings, "cdp-forget")
    lake = Lakehouse.from_settings(spark, settings)
    print(f"{'dry run: ' if args.dry_run else ''}forgetting {len(requests)} request(s) in {lake.root}", flush=True)
    run = _forget_holding_lock(settings, spark, lake, requests, args)
    for line in summary_lines(run, args.landing):
        print(line)
    return 1 if any(o.subject.shared for o in run.outcomes) else 0


def _forget_holding_lock(settings, spark, lake, requests, args):
    from cdp.lock import lakehouse_lock
    from cdp.privacy.erasure import forget

    holder = f"forget-{uuid.uuid4().hex[:8]}"
    with lakehouse_lock(spark, lake.root, holder, "forget", settings.lock):
        return forget(settings, lake, requests, landing=args.landing, dry_run=args.dry_run,
                      say=lambda line: print(line, flush=True))


def summary_lines(run, landing: bool) -> list[str]:
    """What `cdp forget` prints at the end (run: cdp.privacy.erasure.ErasureRun): counts only."""
    from cdp.tables import ERASURE_LOG
    found = [o for o in run.outcomes if o.subject.found]
    rows: dict[str, int] = {}
    for o in found:
        for t, n in o.rows_deleted.items():
            rows[t] = rows.get(t, 0) + n
    verb = "would delete" if run.dry_run else "deleted"
    out = [f"{len(found)} of {len(run.outcomes)} request(s) found someone; {verb} {sum(rows.values()):,} row(s) "
           f"in {len(rows)} table(s)"]
    width = max((len(t) for t in rows), default=0)
    out += [f"  {t:<{width}}  {n:>8,}" for t, n in sorted(rows.items())]
    if not run.dry_run and run.purged:
        out.append(f"purged {len(run.purged)} table(s): {run.files_vacuumed:,} file(s) vacuumed, "
                   f"{run.log_files_removed:,} transaction-log file(s) from before the erasure removed")
    holding = sum(len(v) for o in found for v in o.landing_files.values())
    rewritten = sum(o.landing_rewritten for o in found)
    if landing and not run.dry_run:
        out.append(f"landing: {rewritten} file(s) rewritten without the person's rows")
    elif holding:
        out.append(f"landing: {holding} file(s) still hold the person's rows: they belong to the source systems, erase "
                   "them there (or rerun with --landing to rewrite ours)")
    examples = sum(o.artifact_rows for o in found)
    if examples:
        out.append(f"MLflow: {examples} input-example row(s) {'would be ' if run.dry_run else ''}removed")
    shared = sum(1 for o in run.outcomes if o.subject.shared)
    if shared:
        out.append(f"{shared} request(s) named an email or phone more than one customer holds (a family phone, a "
                   "placeholder email): nothing erased for them; name each person by --customer-id")
    out.append(f"{ERASURE_LOG}: {len(run.outcomes)} row(s) (run {run.run_id}, {run.seconds:.1f}s)")
    return out
