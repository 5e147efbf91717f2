"""Silver step: new bronze batches -> typed, standardized, deduplicated canonical tables, with quality gates.

Per source, the batch is every bronze row whose `_run_id` is not yet in audit.silver_batches. Rows that do
not parse go to quarantine (`bad_type:<col>`), then each silver projection is deduplicated on its key
(latest `_ingested_at` wins) and checked with the table's row-level expectations (failures quarantined as
`dq:<table>:<expectation>`). Per table, the passing rows of all sources are validated with Great
Expectations (a critical failure stops the run before anything is merged) and MERGEd (latest wins).
Per source and table: rows_in = rows_out + rows_quarantined + rows_duplicate, written to audit.reconciliation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from cdp.audit import Reconciliation, record_reconciliation
from cdp.config import Settings
from cdp.ingest.bronze import QUARANTINE
from cdp.ingest.sources import SourceSpec
from cdp.io import Lakehouse, in_predicate
from cdp.quality import load_contract, record_quality, render_quality_docs, row_failure_reason, validate
from cdp.silver import canonical
from cdp.silver.typed import with_types

SILVER_BATCHES = "audit.silver_batches"
TABLE_KEYS = {
    "silver.interactions": "interaction_id",
    "silver.identity_records": "record_id",
    "silver.orders": "order_id",
    "silver.order_lines": "order_line_id",
}
@dataclass
class SilverSourceBatch:
    source: str
    bronze_runs: list[str]
    files: list[str]
    checked: dict[str, DataFrame] = field(default_factory=dict)  # table -> deduplicated rows with `_dq_reason`
    quarantine: list[DataFrame] = field(default_factory=list)
    reconciliation: list[Reconciliation] = field(default_factory=list)
    persisted: list[DataFrame] = field(default_factory=list)

    def release(self) -> None:
        for df in self.persisted:
            df.unpersist()


def projections_of(spec: SourceSpec, settings: Settings) -> dict:
    m, s = spec.silver, settings.silver
    out = {}
    if m.interaction:
        out["silver.interactions"] = canonical.interactions(spec)
    if m.identity:
        out["silver.identity_records"] = canonical.identity_records(spec, s)
    if m.detail == "orders":
        out["silver.orders"] = canonical.orders(spec, s)
    if m.detail == "order_lines":
        out["silver.order_lines"] = canonical.order_lines(spec, s)
    return out


def latest_per_key(key: str):
    """Deduplicate on the natural key: the most recently ingested version wins (ties: highest record hash)."""
    def step(df: DataFrame) -> DataFrame:
        w = Window.partitionBy(key).orderBy(F.col("_ingested_at").desc(), F.col("_record_hash").desc())
        return df.withColumn("_rank", F.row_number().over(w)).where("_rank = 1").drop("_rank")
    return step


def quarantine_frame(df: DataFrame, spec: SourceSpec, reason, run_id: str, now: datetime, raw_cols: list[str]) -> DataFrame:
    return df.select(
        F.lit(run_id).alias("run_id"), F.lit("silver").alias("stage"), F.lit(spec.name).alias("source"),
        F.col("_source_file").alias("source_file"), F.col(spec.record_key).cast("string").alias("record_key")
        if spec.record_key in df.columns else F.col("source_record_key").alias("record_key"),
        reason.alias("reason"), F.to_json(F.struct(*raw_cols)).alias("raw"), F.lit(now).cast("timestamp").alias("quarantined_at"),
    )


def pending_bronze_runs(lake: Lakehouse, spec: SourceSpec) -> list[str]:
    name = f"bronze.{spec.name}"
    if not lake.exists(name):
        return []
    runs = {r[0] for r in lake.read(name).select("_run_id").distinct().collect()}
    if lake.exists(SILVER_BATCHES):
        runs -= {r[0] for r in lake.read(SILVER_BATCHES).where(F.col("source") == spec.name).select("bronze_run_id").collect()}
    return sorted(runs)


def prepare_source(lake: Lakehouse, spec: SourceSpec, settings: Settings, contracts: dict, run_id: str, now: datetime) -> SilverSourceBatch | None:
    runs = pending_bronze_runs(lake, spec)
    if not runs:
        return None
    bronze = lake.read(f"bronze.{spec.name}").where(F.col("_run_id").isin(runs))
    typed = bronze.transform(with_types(spec)).persist()
    batch = SilverSourceBatch(spec.name, runs, [], persisted=[typed])
    try:
        return _check_source(batch, typed, spec, settings, contracts, run_id, now)
    except BaseException:
        batch.release()
        raise


def _check_source(batch: SilverSourceBatch, typed: DataFrame, spec: SourceSpec, settings: Settings, contracts: dict,
                  run_id: str, now: datetime) -> SilverSourceBatch:
    counts = typed.groupBy("_source_file").agg(F.count(F.lit(1)).alias("n"), F.count("_type_defect").alias("bad")).collect()
    batch.files = sorted(r["_source_file"] for r in counts)
    rows_in, type_bad = sum(r["n"] for r in counts), sum(r["bad"] for r in counts)
    if type_bad:
        batch.quarantine.append(quarantine_frame(typed.where(F.col("_type_defect").isNotNull()), spec,
                                                 F.col("_type_defect"), run_id, now, spec.column_names))
    good = typed.where(F.col("_type_defect").isNull()).drop("_type_defect")
    for table, project in projections_of(spec, settings).items():
        key = TABLE_KEYS[table]
        checked = (
            good.transform(project).transform(latest_per_key(key))
            .withColumn("_dq_reason", row_failure_reason(contracts[table])).persist()
        )
        batch.persisted.append(checked)
        agg = checked.agg(F.count(F.lit(1)).alias("n"), F.count("_dq_reason").alias("bad")).first()
        deduped, dq_bad = agg["n"], agg["bad"]
        if dq_bad:
            cols = [c for c in checked.columns if not c.startswith("_") or c == "_record_hash"]
            batch.quarantine.append(quarantine_frame(
                checked.where(F.col("_dq_reason").isNotNull()), spec,
                F.concat(F.lit(f"dq:{table.split('.')[1]}:"), F.col("_dq_reason")), run_id, now, cols))
        batch.checked[table] = checked
        batch.reconciliation.append(Reconciliation(
            spec.name, "silver", table, rows_in, deduped - dq_bad, type_bad + dq_bad, rows_in - type_bad - deduped))
    return batch


def build_silver(lake: Lakehouse, specs: list[SourceSpec], settings: Settings, run_id: str, now: datetime,
                 on_source=None) -> list[Reconciliation]:
    """Process every pending bronze batch into silver; QualityGateFailed (before any MERGE) on a critical failure."""
    from concurrent.futures import ThreadPoolExecutor

    contracts = {t: load_contract(settings, t) for t in TABLE_KEYS}
    finished = 0

    def prepare(spec: SourceSpec) -> SilverSourceBatch | None:
        nonlocal finished
        b = prepare_source(lake, spec, settings, contracts, run_id, now)
        finished += 1
        if on_source:
            on_source(finished, len(specs), spec.name, b)
        return b

    # sources are independent until the per-table validation and MERGE below
    with ThreadPoolExecutor(max_workers=settings.ingest.parallelism) as pool:
        futures = [pool.submit(prepare, spec) for spec in specs]
    batches = [f.result() for f in futures if f.exception() is None and f.result()]
    failure = next((f.exception() for f in futures if f.exception() is not None), None)
    if failure is not None:
        for b in batches:
            b.release()
        raise failure
    try:
        reports, merges = [], {}
        for table in TABLE_KEYS:
            parts = [b.checked[table] for b in batches if table in b.checked]
            if not parts:
                continue
            checked = parts[0]
            for p in parts[1:]:
                checked = checked.unionByName(p)
            # GX sees the whole batch, so row-level failures are counted in the history too
            report = validate(checked, contracts[table], run_id)
            reports.append(report)
            merges[table] = (checked.where(F.col("_dq_reason").isNull()).drop("_dq_reason"), report)
        docs = render_quality_docs(reports, settings.path(settings.paths.reports)) if reports else None
        if reports:
            record_quality(lake, reports)
        for _, report in merges.values():
            report.raise_for_critical(docs)
        for table, (union, _) in merges.items():
            lake.merge(union, table, [TABLE_KEYS[table]],
                       when_newer="s._ingested_at >= t._ingested_at AND s._record_hash <> t._record_hash")
        for b in batches:
            if b.quarantine or b.files:
                q = b.quarantine[0] if b.quarantine else None
                for extra in b.quarantine[1:]:
                    q = q.unionByName(extra)
                predicate = f"stage = 'silver' AND source = '{b.source}' AND {in_predicate('source_file', b.files)}"
                if q is not None:
                    lake.replace_where(q, QUARANTINE, predicate)
                elif lake.exists(QUARANTINE):
                    lake.delta_table(QUARANTINE).delete(predicate)
    finally:
        for b in batches:
            b.release()
    results = [r for b in batches for r in b.reconciliation]
    if batches:
        lake.append(lake.spark.createDataFrame(
            [(b.source, r, run_id, now) for b in batches for r in b.bronze_runs],
            "source string, bronze_run_id string, run_id string, processed_at timestamp"), SILVER_BATCHES)
        record_reconciliation(lake, results, run_id, now)
    return results
