"""Bronze: land new files of each source into bronze.<source> exactly once, with lineage; defects to quarantine.

Exactly-once: audit.ingest_log records every file landed. A run reads only files not in the log and
writes bronze and quarantine rows with replaceWhere on those files, then logs them; a run that dies
between the two is repaired by the next, which replaces instead of duplicating.

A file that cannot land as its source is declared (a required column missing, not a readable Parquet file)
is rejected alone: the source's other files land, the rejection goes to audit.file_rejections with its
reason, and since it is not in the ingest log it is looked at again, and reported again, every run until
it is replaced or removed. An empty file lands as zero rows.
"""

from __future__ import annotations

import threading
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.audit import Reconciliation, record_reconciliation
from cdp.config.sources import SourceSpec
from cdp.frames import first_failing
from cdp.ingest.landing import (
    CORRUPT,
    LANDING_DEFECT,
    LandingFile,
    inspect_files,
    list_landing_files,
    read_landing,
)
from cdp.io import Lakehouse, in_predicate
from cdp.parallel import in_threads
from cdp.quality.quarantine import RESCUED, delivered, quarantine_rows
from cdp.tables import FILE_REJECTIONS, INGEST_LOG, LINEAGE, QUARANTINE, bronze


@dataclass
class BronzeResult:
    source: str
    channel: str
    new_files: int = 0
    landed: int = 0
    bronze: int = 0
    quarantined: int = 0
    table_rows: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) that could not land
    reasons: dict[str, int] = field(default_factory=dict)           # quarantine reason -> rows


# ---------------------------------------------------------------- pure transforms

def defect_reason(spec: SourceSpec, max_value_chars: int) -> Column:
    """Why a raw row cannot enter bronze, or null: malformed, a shape the reader saw (a nested value, a field given
    twice), a required field missing, a value oversized."""
    checks: list[tuple[Column, str | Column]] = [(F.col(CORRUPT).isNotNull(), "malformed_record"),
                                                 (F.col(LANDING_DEFECT).isNotNull(), F.col(LANDING_DEFECT))]
    checks += [(F.col(c).isNull() | (F.trim(F.col(c)) == ""), f"missing_required:{c}") for c in spec.required_columns]
    checks += [(F.length(F.col(c)) > max_value_chars, f"oversized_value:{c}") for c in [*spec.column_names, RESCUED]]
    return first_failing(checks)


def with_defects(spec: SourceSpec, max_value_chars: int):
    def step(df: DataFrame) -> DataFrame:
        return df.withColumn("_defect", defect_reason(spec, max_value_chars))
    return step


def with_lineage(spec: SourceSpec, run_id: str, ingested_at: datetime):
    """Lineage columns; the record hash covers every value, so an identical re-export has the same hash."""
    def step(df: DataFrame) -> DataFrame:
        content = F.to_json(F.struct(*[F.col(c) for c in spec.column_names], F.col(RESCUED)))
        return (
            df.withColumn("_ingested_at", F.lit(ingested_at).cast("timestamp"))
            .withColumn("_run_id", F.lit(run_id))
            .withColumn("_record_hash", F.sha2(content, 256))
        )
    return step


def bronze_rows(spec: SourceSpec, staged: DataFrame) -> DataFrame:
    return staged.where(F.col("_defect").isNull()).select(*spec.column_names, RESCUED, *LINEAGE)


@dataclass(frozen=True)
class StagedLanding:
    """One source's new files staged for bronze (stage_landing): every row with its defect and lineage, the rows
    bronze takes, the rows the quarantine takes."""
    staged: DataFrame
    bronze: DataFrame
    quarantine: DataFrame


def stage_landing(raw: DataFrame, spec: SourceSpec, max_value_chars: int, run_id: str,
                  ingested_at: datetime) -> StagedLanding:
    """The pure core of bronze: raw landing rows (read_landing) -> defects found, lineage added, split in two."""
    staged = raw.transform(with_defects(spec, max_value_chars)).transform(with_lineage(spec, run_id, ingested_at))
    return StagedLanding(staged, bronze_rows(spec, staged), quarantined_rows(spec, staged))


def landing_counts(staged: DataFrame) -> tuple[dict[str, list[int]], dict[str, int]]:
    """One small aggregate: {file: [rows landed, rows quarantined]} and {quarantine reason: rows}."""
    per_file: dict[str, list[int]] = {}
    reasons: dict[str, int] = {}
    for r in staged.groupBy("_source_file", "_defect").agg(F.count(F.lit(1)).alias("n")).collect():
        landed_q = per_file.setdefault(r["_source_file"], [0, 0])
        landed_q[0] += r["n"]
        if r["_defect"] is not None:
            landed_q[1] += r["n"]
            reasons[r["_defect"]] = reasons.get(r["_defect"], 0) + r["n"]
    return per_file, reasons


def quarantined_rows(spec: SourceSpec, staged: DataFrame) -> DataFrame:
    """Defective rows as quarantine.records rows; raw is the line as delivered where the format has one."""
    return quarantine_rows(
        staged.where(F.col("_defect").isNotNull()), stage="bronze", source=spec.name, reason=F.col("_defect"),
        record_key=F.col(spec.record_key), raw=F.coalesce(F.col("_raw"), delivered(spec.column_names)),
        run_id=F.col("_run_id"), at=F.col("_ingested_at"))


# ---------------------------------------------------------------- the writer

def ingested_files(lake: Lakehouse) -> dict[str, set[str]]:
    """Files already landed, by source (one small read per run: it grows with files, not rows)."""
    return lake.values_by(INGEST_LOG, "source", "file_path")


def _log_row(spec: SourceSpec, f: LandingFile, run_id: str, at: datetime, landed: int, quarantined: int) -> tuple:
    return (spec.name, f.path, f.size, f.modified_ms, run_id, at, landed, landed - quarantined, quarantined)


def land_source(lake: Lakehouse, spec: SourceSpec, landing_root: str, run_id: str, ingested_at: datetime,
                max_value_chars: int, done: set[str], quarantine_lock: threading.Lock | None = None,
                ) -> tuple[BronzeResult, list[tuple], list[tuple]]:
    """Land the not-yet-ingested files of one source -> (result, ingest-log rows, rejection rows).

    quarantine_lock: held while writing the shared quarantine table, when several sources land at once (two
    replaceWhere commits on one table conflict when Delta cannot tell from file statistics that they do not
    overlap)."""
    result = BronzeResult(spec.name, spec.channel)
    pattern = f"{landing_root.rstrip('/')}/{spec.path}"
    new = [f for f in list_landing_files(lake.spark, pattern) if f.path not in done]
    seen = inspect_files(lake.spark, spec, new)
    result.new_files = len(seen.readable) + len(seen.empty)
    result.rejected = [(f.path, reason) for f, reason in seen.rejected]
    rejections = [(run_id, spec.name, f.path, f.size, f.modified_ms, reason, ingested_at) for f, reason in seen.rejected]
    log_rows = [_log_row(spec, f, run_id, ingested_at, 0, 0) for f in seen.empty]
    if seen.readable:
        batch = stage_landing(read_landing(lake.spark, spec, [f.path for f in seen.readable]), spec,
                              max_value_chars, run_id, ingested_at)
        staged = batch.staged.persist()   # counted, then written twice: read from the files once
        try:
            per_file, result.reasons = landing_counts(staged)
            read_paths = sorted(per_file) or [f.path for f in seen.readable]
            lake.replace_where(batch.bronze, bronze(spec.name), in_predicate("_source_file", read_paths))
            if result.reasons:  # deterministic: files without defects now had none before either
                with quarantine_lock or nullcontext():
                    lake.replace_where(
                        batch.quarantine, QUARANTINE,
                        f"stage = 'bronze' AND source = '{spec.name}' AND {in_predicate('source_file', read_paths)}",
                    )
        finally:
            staged.unpersist()
        for f in seen.readable:
            landed, quarantined = per_file.get(f.path, [0, 0])
            log_rows.append(_log_row(spec, f, run_id, ingested_at, landed, quarantined))
            result.landed += landed
            result.quarantined += quarantined
        result.bronze = result.landed - result.quarantined
    result.table_rows = lake.row_count(bronze(spec.name))
    return result, log_rows, rejections


def land_all(lake: Lakehouse, specs: list[SourceSpec], landing_root: str, run_id: str, ingested_at: datetime,
             max_value_chars: int, on_source=None, parallelism: int = 1) -> list[BronzeResult]:
    """Land every source; a file that does not fit its source's definition is rejected alone.

    Sources are independent tables, so up to `parallelism` of them land at once (Spark schedules
    concurrent jobs from threads; on small batches this hides per-commit latency). The ingest log is
    appended once, after all bronze writes: a crash before it only means the next run re-reads those
    files and replaces their rows.
    """
    done = ingested_files(lake)
    # sources landing at once may all quarantine rows: two first writes to a missing table conflict, so it is
    # created before the threads start
    lake.ensure(QUARANTINE)
    quarantine_lock = threading.Lock()
    outcomes = in_threads(
        lambda spec: land_source(lake, spec, landing_root, run_id, ingested_at, max_value_chars,
                                 done.get(spec.name, set()), quarantine_lock),
        specs, parallelism,
        on_done=(lambda n, total, _spec, out: on_source(n, total, out[0])) if on_source else None)
    log_rows = [row for _, rows, _ in outcomes for row in rows]
    if log_rows:
        lake.append(lake.rows(INGEST_LOG, log_rows), INGEST_LOG)
    rejections = [row for _, _, rows in outcomes for row in rows]
    if rejections:
        lake.append(lake.rows(FILE_REJECTIONS, rejections), FILE_REJECTIONS)
    results = [res for res, _, _ in outcomes]
    record_reconciliation(lake, [
        Reconciliation(r.source, "bronze", bronze(r.source).qualified, r.landed, r.bronze, r.quarantined)
        for r in results if r.new_files
    ], run_id, ingested_at)
    return results
