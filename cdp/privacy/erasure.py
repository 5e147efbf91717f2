"""GDPR erasure: `cdp forget` finds a person through the identity map and removes every row of theirs, bronze to
gold, the quarantine, features, scores and profile history, then every file and log entry that still holds them
(cdp.privacy.purge), the MLflow input-example rows (cdp.privacy.artifacts) and, with --landing, their rows in the
landing files (cdp.privacy.landing). audit.erasure_log keeps a salted hash of each request, never the value.

The pure core is cdp.privacy.targets (which rows of which table); `forget` is the one writer."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.config import Settings
from cdp.frames import union_all
from cdp.io import Lakehouse
from cdp.privacy.artifacts import rewrite_examples
from cdp.privacy.landing import rewrite_landing
from cdp.privacy.purge import Purged, purge_tables
from cdp.privacy.requests import ErasureRequest, request_hash, salt
from cdp.privacy.subject import Subject, normalized_value, resolve_subject
from cdp.privacy.targets import Target, erasure_targets
from cdp.tables import CHURN_FEATURES, ERASURE_LOG, IDENTITY_MAP, IDENTITY_RECORDS, QUARANTINE, Table

# the tables a request is resolved through go last: a run that stops half way can be run again and still finds
# the person
_RESOLVED_THROUGH = (IDENTITY_MAP, IDENTITY_RECORDS)


@dataclass
class RequestOutcome:
    request: ErasureRequest
    request_hash: str
    subject: Subject
    rows_deleted: dict[str, int] = field(default_factory=dict)
    landing_files: dict[str, set[str]] = field(default_factory=dict)   # source -> files holding the person
    artifact_rows: int = 0
    landing_rewritten: int = 0   # of those files, rewritten without the person's rows (--landing)

    @property
    def status(self) -> str:
        return "shared" if self.subject.shared else "not_found" if not self.subject.found else "erased"


@dataclass
class ErasureRun:
    run_id: str
    dry_run: bool
    outcomes: list[RequestOutcome]
    purged: list[Purged]
    seconds: float

    @property
    def files_vacuumed(self) -> int:
        return sum(p.files_removed for p in self.purged)

    @property
    def log_files_removed(self) -> int:
        return sum(p.log_files_removed for p in self.purged)


def ordered(targets: list[Target]) -> list[Target]:
    """The targets with the tables requests are resolved through last, identity_map before identity_records."""
    return sorted(targets, key=lambda t: _RESOLVED_THROUGH.index(t.table) + 1 if t.table in _RESOLVED_THROUGH else 0)


def subject_frame(lake: Lakehouse, subject: Subject) -> DataFrame:
    return lake.spark.createDataFrame(subject.rows(), "kind string, value string")


def matched_rows(lake: Lakehouse, target: Target, persons: DataFrame) -> DataFrame:
    """The target's rows that are the person's (the same condition the MERGE deletes on)."""
    t = lake.read(target.table).alias("t")
    return t.join(F.broadcast(persons.alias("s")), F.expr(target.condition), "left_semi")


def delete_rows(lake: Lakehouse, target: Target, persons: DataFrame) -> int:
    """MERGE ... WHEN MATCHED THEN DELETE: the commit log records the condition, never the person's values."""
    (lake.delta_table(target.table).alias("t").merge(F.broadcast(persons).alias("s"), target.condition)
     .whenMatchedDelete().execute())
    return int(lake.last_commit_metrics(target.table).get("numTargetRowsDeleted", 0))


def _landing_file(target: Target):
    """The column naming the landing file a matched row came from (bronze and quarantine rows; null elsewhere)."""
    if target.table == QUARANTINE:
        return F.col("source_file")
    return F.col("_source_file") if target.table.layer == "bronze" else F.lit(None).cast("string")


def matched_counts(lake: Lakehouse, targets: list[Target], persons: DataFrame
                   ) -> tuple[dict[Target, int], dict[str, set[str]]]:
    """Rows of each existing target table that are the person's, and the landing files (source -> files) their bronze
    and quarantine rows came from: one Spark job, a row per table and file back."""
    present = [t for t in targets if lake.exists(t.table)]
    if not present:
        return {}, {}
    found = union_all([
        matched_rows(lake, t, persons).select(
            F.lit(i).alias("target"),
            (F.col("source") if t.table == QUARANTINE else F.lit(t.table.name)).alias("source"),
            _landing_file(t).alias("file"))
        for i, t in enumerate(present)]).groupBy("target", "source", "file").count().collect()
    counts: dict[Target, int] = {}
    files: dict[str, set[str]] = {}
    for r in found:
        counts[present[r["target"]]] = counts.get(present[r["target"]], 0) + r["count"]
        if r["file"]:
            files.setdefault(r["source"], set()).add(r["file"])
    return counts, files


def erase_subject(lake: Lakehouse, targets: list[Target], subject: Subject, dry_run: bool, workers: int = 4
                  ) -> tuple[dict[str, int], dict[str, set[str]], list[dict]]:
    """Delete (or count, dry_run) the person's rows in every target table; returns rows per table, the landing
    files that held them and the person's churn feature rows (read before they go, for the MLflow examples)."""
    persons = F.broadcast(subject_frame(lake, subject)).cache()
    counts, files = matched_counts(lake, targets, persons)
    features = [r.asDict() for t in counts if t.table == CHURN_FEATURES   # one person's snapshots: a few rows
                for r in matched_rows(lake, t, persons).collect()]
    if dry_run:
        deleted = {t.table.qualified: n for t, n in counts.items()}
    else:
        first = [t for t in counts if t.table not in _RESOLVED_THROUGH]
        last = [t for t in ordered(list(counts)) if t.table in _RESOLVED_THROUGH]
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:   # independent tables, small jobs
            done = list(pool.map(lambda t: delete_rows(lake, t, persons), first))
        done += [delete_rows(lake, t, persons) for t in last]
        deleted = {t.table.qualified: n for t, n in zip(first + last, done, strict=True)}
    persons.unpersist()
    return deleted, files, features


def forget(settings: Settings, lake: Lakehouse, requests: list[ErasureRequest], *, landing: bool = False,
           dry_run: bool = False, say=print) -> ErasureRun:
    """Erase every person the requests name; one row per request in audit.erasure_log. `say` gets progress
    lines with counts only (never a value)."""
    from cdp.config.sources import load_sources

    secret = salt()
    started, now = time.monotonic(), datetime.now(timezone.utc)
    run_id = f"forget-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    specs = load_sources(settings)
    targets = erasure_targets(specs)
    outcomes: list[RequestOutcome] = []
    touched: set[Table] = set()
    by_name = {t.table.qualified: t.table for t in targets}
    for i, req in enumerate(requests, start=1):
        lap = time.monotonic()
        subject = resolve_subject(lake, settings, specs, req)
        out = RequestOutcome(req, request_hash(req, secret, normalized_value(lake, settings, req)), subject)
        if subject.found:
            out.rows_deleted, out.landing_files, features = erase_subject(lake, targets, subject, dry_run,
                                                                          settings.ingest.parallelism)
            out.artifact_rows = rewrite_examples(settings, features, dry_run).rows_removed
            touched |= {by_name[t] for t, n in out.rows_deleted.items() if n}
        say(f"  [{i}/{len(requests)}] {req.kind} {req.masked()}: "
            + (f"{len(subject.customer_ids)} customer(s), {len(subject.record_ids)} record(s), "
               f"{sum(out.rows_deleted.values()):,} row(s) in {len(out.rows_deleted)} table(s)"
               f"{' would go' if dry_run else ' deleted'}" if subject.found else
               f"held by {subject.shared_by} customers (a shared or placeholder value): nothing erased; "
               "name the person by --customer-id" if subject.shared else "no record holds it (not found)")
            + f" ({time.monotonic() - lap:.1f}s)")
        outcomes.append(out)
        if landing and not dry_run and out.landing_files:
            out.landing_rewritten = rewrite_landing(settings.path(settings.paths.landing), out.landing_files, specs,
                                                    subject.keys, subject.text_values).files
    retention = settings.privacy.erasure.vacuum_retention_hours
    purged: list[Purged] = []
    if touched and not dry_run:
        lap = time.monotonic()
        purged = purge_tables(lake, sorted(touched, key=str), retention, settings.ingest.parallelism)
        say(f"  purged {len(purged)} table(s): deletion vectors applied, VACUUM RETAIN {retention:g} HOURS"
            + (", log truncated at a new checkpoint" if retention == 0 else "") + f" ({time.monotonic() - lap:.1f}s)")
    run = ErasureRun(run_id, dry_run, outcomes, purged, time.monotonic() - started)
    log_erasures(lake, run, now)
    return run


def log_erasures(lake: Lakehouse, run: ErasureRun, when: datetime) -> None:
    """One audit.erasure_log row per request: hashes and counts only."""
    rows = []
    for o in run.outcomes:
        holding = sum(len(v) for v in o.landing_files.values())
        status = o.status if not (run.dry_run and o.subject.found) else "dry_run_found"
        rows.append((run.run_id, when, o.request.kind, o.request_hash, status, run.dry_run,
                     len(o.subject.customer_ids) or o.subject.shared_by, len(o.subject.record_ids), o.rows_deleted,
                     sum(1 for n in o.rows_deleted.values() if n), run.files_vacuumed, run.log_files_removed,
                     holding, o.landing_rewritten, o.artifact_rows, round(run.seconds, 3)))
    lake.append(lake.rows(ERASURE_LOG, rows), ERASURE_LOG)

