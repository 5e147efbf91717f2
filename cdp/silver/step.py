"""Silver step, the writer: new bronze batches -> the canonical silver tables, with quality gates and accounting.

Per source, the batch is every bronze row whose `_run_id` is not yet in audit.silver_batches; `core.split_source`
types, projects, deduplicates and checks it. Per table, the rows of all sources are validated with Great
Expectations (a critical failure stops the run before anything is merged) and MERGEd (latest wins); the
quarantine is replaced per source file. Per source and table: rows_in = rows_out + rows_quarantined +
rows_duplicate, written to audit.reconciliation. A value that went on as NULL (null_and_flag) stops no row: its
record is counted where it went (usually rows_out), and rows_flagged counts the rows_out that carry such values
(each value also has a `bad_value:<column>` row in the quarantine).

A source whose batch would lose more than silver.max_quarantine_share of its rows to the quarantine is refused:
its quarantine rows are written (so `cdp quarantine` shows them), nothing of it is merged, its batch stays
pending, and the step fails with one line naming the source, the count, the commonest reason and the key to
change; the other sources go forward. After the fix, `cdp run --resume` takes the batch again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.audit import Reconciliation, record_reconciliation
from cdp.config import Settings
from cdp.config.project import ProjectConfig
from cdp.config.sources import SourceSpec
from cdp.errors import QualityGateFailed
from cdp.frames import union_all
from cdp.io import Lakehouse, in_predicate
from cdp.parallel import in_threads
from cdp.quality.gold import published
from cdp.silver.core import DQ_REASON, FLAGGED, SourceSplit, split_source
from cdp.silver.remedies import remedy
from cdp.silver.typed import DEFECTS, TYPE_DEFECT
from cdp.tables import QUARANTINE, SILVER_BATCHES, SILVER_TABLES, Table, bronze


@dataclass
class PreparedSource:
    """One source's split, materialised, with its counts."""

    split: SourceSplit
    bronze_runs: list[str]
    files: list[str]
    quarantined: int                    # quarantine rows of the batch (stopped rows and flagged values)
    reconciliation: list[Reconciliation] = field(default_factory=list)
    persisted: list[DataFrame] = field(default_factory=list)
    refused: str | None = None          # why none of the batch goes forward (too much of it quarantined)

    def release(self) -> None:
        for df in self.persisted:
            df.unpersist()


def _merge_clean(lake: Lakehouse, table: Table, rows: DataFrame) -> None:
    """The rows without a DQ reason MERGEd into their silver table (latest wins)."""
    lake.merge(rows.where(F.col(DQ_REASON).isNull()).drop(DQ_REASON), table,
               when_newer="s._ingested_at >= t._ingested_at AND s._record_hash <> t._record_hash")


def _replace_quarantine(lake: Lakehouse, prepared: list[PreparedSource]) -> None:
    """The silver quarantine rows of every batch's files replaced in one commit (a re-run replaces, never adds)."""
    read = [p for p in prepared if p.files]
    if not read:
        return
    predicate = "stage = 'silver' AND (" + " OR ".join(
        f"(source = '{p.split.source}' AND {in_predicate('source_file', p.files)})" for p in read) + ")"
    rows = [p.split.quarantine for p in read if p.quarantined]
    if rows:
        lake.replace_where(union_all(rows), QUARANTINE, predicate)
    else:
        lake.delete(QUARANTINE, predicate)


def _as_is(df: DataFrame) -> DataFrame:
    """Silver's batches are unions of frames each source persisted already: nothing to materialise again."""
    return df


def processed_batches(lake: Lakehouse) -> dict[str, set[str]]:
    """The bronze runs silver has taken, by source (audit.silver_batches: one small read per run)."""
    return lake.values_by(SILVER_BATCHES, "source", "bronze_run_id")


def pending_bronze_runs(lake: Lakehouse, spec: SourceSpec, processed: set[str]) -> list[str]:
    """The bronze runs of the source silver has not taken yet."""
    if not lake.exists(bronze(spec.name)):
        return []
    runs = {r[0] for r in lake.read(bronze(spec.name)).select("_run_id").distinct().collect()}
    return sorted(runs - processed)


def goes_on_flagged(checked: DataFrame) -> Column:
    """A checked row that goes forward carrying values set to NULL (tables without `defects`: none)."""
    if "defects" not in checked.columns:
        return F.lit(False)
    return F.col(DQ_REASON).isNull() & (F.size("defects") > 0)


def prepare_source(lake: Lakehouse, spec: SourceSpec, settings: Settings, contracts: dict, run_id: str,
                   now: datetime, processed: set[str]) -> PreparedSource | None:
    """Split the source's pending batch and count it (typed rows and each projection materialised once)."""
    runs = pending_bronze_runs(lake, spec, processed)
    if not runs:
        return None
    batch = lake.read(bronze(spec.name)).where(F.col("_run_id").isin(runs))
    split = split_source(batch, spec, settings, contracts, run_id, now)
    prepared = PreparedSource(split, runs, [], 0, persisted=[split.typed.persist()])
    try:
        flagged_values = F.sum(F.when(F.col(TYPE_DEFECT).isNull(), F.size(DEFECTS)).otherwise(0))
        counts = split.typed.groupBy("_source_file").agg(F.count(F.lit(1)).alias("n"),
                                                         F.count(TYPE_DEFECT).alias("bad"),
                                                         flagged_values.alias("flagged")).collect()
        prepared.files = sorted(r["_source_file"] for r in counts)
        rows_in, type_bad = sum(r["n"] for r in counts), sum(r["bad"] for r in counts)
        prepared.quarantined = type_bad + sum(r["flagged"] for r in counts)
        for table, checked in split.checked.items():
            prepared.persisted.append(checked.persist())
            agg = checked.agg(F.count(F.lit(1)).alias("n"), F.count(DQ_REASON).alias("bad"),
                              F.count_if(goes_on_flagged(checked)).alias("flagged")).first()
            deduped, dq_bad = agg["n"], agg["bad"]
            prepared.quarantined += dq_bad
            prepared.reconciliation.append(Reconciliation(
                spec.name, "silver", table.qualified, rows_in, deduped - dq_bad, type_bad + dq_bad,
                rows_in - type_bad - deduped, rows_flagged=agg["flagged"]))
        prepared.refused = refusal(prepared, spec, settings)
        return prepared
    except BaseException:
        prepared.release()
        raise


def refusal(prepared: PreparedSource, spec: SourceSpec, settings: Settings) -> str | None:
    """One line when more of the batch is quarantined than silver.max_quarantine_share allows (in any table it
    feeds): the source, the count, the commonest reason and what to change. A wholesale rejection is nearly always
    the configuration's fault (a date format, a history older than the source says), not the data's."""
    limit = settings.silver.max_quarantine_share
    worst = max(prepared.reconciliation, key=lambda r: r.rows_quarantined / max(r.rows_in, 1), default=None)
    if worst is None or worst.rows_in == 0 or worst.rows_quarantined / worst.rows_in <= limit:
        return None
    top = (prepared.split.quarantine.where(~F.col("reason").startswith(f"{FLAGGED}:")).groupBy("reason").count()
           .orderBy(F.desc("count"), "reason").first())
    reason, n = (top["reason"], top["count"]) if top else ("?", worst.rows_quarantined)
    return (f"{spec.name}: {worst.rows_quarantined:,} of {worst.rows_in:,} rows of its new batch "
            f"({worst.rows_quarantined / worst.rows_in:.0%}) would be quarantined, more than "
            f"silver.max_quarantine_share ({limit:.0%}) allows; the most for {reason} ({n:,} rows): change "
            f"{remedy(reason, spec, settings)}; nothing of the batch went forward "
            f"(`cdp quarantine --source {spec.name} --show 5` shows them)")


def _prepare_all(lake: Lakehouse, specs: list[SourceSpec], settings: Settings, contracts: dict, run_id: str,
                 now: datetime, on_source=None) -> list[PreparedSource]:
    """Sources are independent until the per-table validation and MERGE: prepared in parallel threads."""
    processed = processed_batches(lake)
    prepared = in_threads(lambda spec: prepare_source(lake, spec, settings, contracts, run_id, now,
                                                      processed.get(spec.name, set())), specs,
                          settings.ingest.parallelism,
                          on_done=(lambda n, total, spec, p: on_source(n, total, spec.name, p)) if on_source else None,
                          release=PreparedSource.release)
    return [p for p in prepared if p is not None]


def build_silver(lake: Lakehouse, conf: ProjectConfig | Settings, run_id: str, now: datetime,
                 on_source=None) -> list[Reconciliation]:
    """Process every pending bronze batch into silver; QualityGateFailed (before any MERGE) on a critical failure."""
    conf = ProjectConfig.of(conf)
    contracts = {t: conf.contract(t) for t in SILVER_TABLES}
    prepared = _prepare_all(lake, conf.sources, conf.settings, contracts, run_id, now, on_source)
    going = [p for p in prepared if p.refused is None]   # a refused batch stays pending: a re-run takes it again
    try:
        batches: dict[Table, DataFrame] = {}
        for table in SILVER_TABLES:
            parts = [p.split.checked[table] for p in going if table in p.split.checked]
            if parts:
                batches[table] = union_all(parts)
        # every row of the batch is validated (row-level failures counted, with samples); the clean ones MERGEd
        with published(lake, conf, batches, run_id, "silver", write=_merge_clean, materialise=_as_is,
                       internal=(DQ_REASON,)):
            _replace_quarantine(lake, prepared)
    finally:
        for p in prepared:
            p.release()
    results = [r for p in going for r in p.reconciliation]
    if going:
        lake.append(lake.rows(SILVER_BATCHES, [(p.split.source, r, run_id, now) for p in going for r in p.bronze_runs]),
                    SILVER_BATCHES)
        record_reconciliation(lake, results, run_id, now)
    refused = [p.refused for p in prepared if p.refused]
    if refused:
        more = f" (and {len(refused) - 1} more source(s) alike)" if len(refused) > 1 else ""
        raise QualityGateFailed(refused[0] + more)
    return results
