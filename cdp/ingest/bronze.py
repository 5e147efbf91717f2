"""Bronze: land new files of each source into bronze.<source> exactly once, with lineage; defects to quarantine.

Exactly-once: audit.ingest_log records every file landed. A run reads only files not in the log and
writes bronze and quarantine rows with replaceWhere on those files, then logs them; a run that dies
between the two is repaired by the next, which replaces instead of duplicating.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from cdp.audit import Reconciliation, record_reconciliation
from cdp.errors import SourceError
from cdp.ingest.landing import CORRUPT, list_landing_files, read_landing
from cdp.ingest.sources import SourceSpec
from cdp.io import Lakehouse, in_predicate

INGEST_LOG = "audit.ingest_log"
QUARANTINE = "quarantine.records"
LINEAGE = ["_source_file", "_ingested_at", "_run_id", "_record_hash"]

INGEST_LOG_SCHEMA = StructType([
    StructField("source", StringType()), StructField("file_path", StringType()),
    StructField("file_size", LongType()), StructField("file_modified_ms", LongType()),
    StructField("run_id", StringType()), StructField("ingested_at", TimestampType()),
    StructField("rows_landed", LongType()), StructField("rows_bronze", LongType()),
    StructField("rows_quarantined", LongType()),
])


@dataclass
class BronzeResult:
    source: str
    channel: str
    new_files: int = 0
    landed: int = 0
    bronze: int = 0
    quarantined: int = 0
    table_rows: int = 0
    error: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------- pure transforms

def defect_reason(spec: SourceSpec, max_value_chars: int) -> Column:
    """Why a raw row cannot enter bronze, or null: malformed, a required field missing, a value oversized."""
    checks = [F.when(F.col(CORRUPT).isNotNull(), F.lit("malformed_record"))]
    checks += [
        F.when(F.col(c).isNull() | (F.trim(F.col(c)) == ""), F.lit(f"missing_required:{c}")) for c in spec.required_columns
    ]
    checks += [
        F.when(F.length(F.col(c)) > max_value_chars, F.lit(f"oversized_value:{c}"))
        for c in [*spec.column_names, "_rescued_data"]
    ]
    return F.coalesce(*checks)


def with_defects(spec: SourceSpec, max_value_chars: int):
    def step(df: DataFrame) -> DataFrame:
        return df.withColumn("_defect", defect_reason(spec, max_value_chars))
    return step


def with_lineage(spec: SourceSpec, run_id: str, ingested_at: datetime):
    """Lineage columns; the record hash covers every value, so an identical re-export has the same hash."""
    def step(df: DataFrame) -> DataFrame:
        content = F.to_json(F.struct(*[F.col(c) for c in spec.column_names], F.col("_rescued_data")))
        return (
            df.withColumn("_ingested_at", F.lit(ingested_at).cast("timestamp"))
            .withColumn("_run_id", F.lit(run_id))
            .withColumn("_record_hash", F.sha2(content, 256))
        )
    return step


def bronze_rows(spec: SourceSpec, df: DataFrame) -> DataFrame:
    return df.where(F.col("_defect").isNull()).select(*spec.column_names, "_rescued_data", *LINEAGE)


def quarantine_rows(spec: SourceSpec, df: DataFrame, stage: str = "bronze") -> DataFrame:
    raw = F.coalesce(F.col("_raw"), F.to_json(F.struct(*[F.col(c) for c in spec.column_names], F.col("_rescued_data"))))
    return df.where(F.col("_defect").isNotNull()).select(
        F.col("_run_id").alias("run_id"),
        F.lit(stage).alias("stage"),
        F.lit(spec.name).alias("source"),
        F.col("_source_file").alias("source_file"),
        F.col(spec.record_key).alias("record_key"),
        F.col("_defect").alias("reason"),
        raw.alias("raw"),
        F.col("_ingested_at").alias("quarantined_at"),
    )


# ---------------------------------------------------------------- the step

def ingested_files(lake: Lakehouse) -> dict[str, set[str]]:
    """Files already landed, by source (one small read per run: it grows with files, not rows)."""
    if not lake.exists(INGEST_LOG):
        return {}
    done: dict[str, set[str]] = {}
    for r in lake.read(INGEST_LOG).select("source", "file_path").distinct().collect():
        done.setdefault(r.source, set()).add(r.file_path)
    return done


def land_source(lake: Lakehouse, spec: SourceSpec, landing_root: str, run_id: str, ingested_at: datetime,
                max_value_chars: int, done: set[str]) -> tuple[BronzeResult, list[tuple]]:
    """Land the not-yet-ingested files of one source; returns its result and its ingest-log rows.

    Raises SourceError when its files do not fit its definition.
    """
    result = BronzeResult(spec.name, spec.channel)
    pattern = f"{landing_root.rstrip('/')}/{spec.path}"
    new = [f for f in list_landing_files(lake.spark, pattern) if f.path not in done]
    result.new_files = len(new)
    log_rows: list[tuple] = []
    if new:
        staged = (
            read_landing(lake.spark, spec, [f.path for f in new])
            .transform(with_defects(spec, max_value_chars))
            .transform(with_lineage(spec, run_id, ingested_at))
            .persist()
        )
        try:
            # one small aggregate gives per-file counts and per-reason counts
            counts = staged.groupBy("_source_file", "_defect").agg(F.count(F.lit(1)).alias("n")).collect()
            per_file: dict[str, list[int]] = {}
            for r in counts:
                landed_q = per_file.setdefault(r["_source_file"], [0, 0])
                landed_q[0] += r["n"]
                if r["_defect"] is not None:
                    landed_q[1] += r["n"]
                    result.reasons[r["_defect"]] = result.reasons.get(r["_defect"], 0) + r["n"]
            read_paths = sorted(per_file) or [f.path for f in new]
            lake.replace_where(bronze_rows(spec, staged), f"bronze.{spec.name}", in_predicate("_source_file", read_paths))
            if result.reasons:  # deterministic: files without defects now had none before either
                lake.replace_where(
                    quarantine_rows(spec, staged), QUARANTINE,
                    f"stage = 'bronze' AND source = '{spec.name}' AND {in_predicate('source_file', read_paths)}",
                )
        finally:
            staged.unpersist()
        for f in new:
            landed, quarantined = per_file.get(f.path, [0, 0])
            log_rows.append((spec.name, f.path, f.size, f.modified_ms, run_id, ingested_at, landed, landed - quarantined, quarantined))
            result.landed += landed
            result.quarantined += quarantined
        result.bronze = result.landed - result.quarantined
    result.table_rows = lake.row_count(f"bronze.{spec.name}")
    return result, log_rows


def land_all(lake: Lakehouse, specs: list[SourceSpec], landing_root: str, run_id: str, ingested_at: datetime,
             max_value_chars: int, on_source=None, parallelism: int = 1) -> list[BronzeResult]:
    """Land every source; a source whose files do not fit its definition fails alone, the others proceed.

    Sources are independent tables, so up to `parallelism` of them land at once (Spark schedules
    concurrent jobs from threads; on small batches this hides per-commit latency). The ingest log is
    appended once, after all bronze writes: a crash before it only means the next run re-reads those
    files and replaces their rows.
    """
    from concurrent.futures import ThreadPoolExecutor

    done = ingested_files(lake)
    finished = 0

    def one(spec: SourceSpec) -> tuple[BronzeResult, list[tuple]]:
        nonlocal finished
        try:
            out = land_source(lake, spec, landing_root, run_id, ingested_at, max_value_chars, done.get(spec.name, set()))
        except SourceError as exc:
            out = (BronzeResult(spec.name, spec.channel, error=str(exc)), [])
        finished += 1
        if on_source:
            on_source(finished, len(specs), out[0])
        return out

    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        outcomes = list(pool.map(one, specs))
    log_rows = [row for _, rows in outcomes for row in rows]
    if log_rows:
        lake.append(lake.spark.createDataFrame(log_rows, INGEST_LOG_SCHEMA), INGEST_LOG)
    results = [res for res, _ in outcomes]
    record_reconciliation(lake, [
        Reconciliation(r.source, "bronze", f"bronze.{r.source}", r.landed, r.bronze, r.quarantined)
        for r in results if r.new_files
    ], run_id, ingested_at)
    return results
