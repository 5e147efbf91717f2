"""The silver step's pure core: one source's bronze batch -> typed, projected, deduplicated rows, split into
the rows that go forward and the rows that go to quarantine (each table's Great Expectations verdict over the
union of the sources' rows is the writer's gate, cdp.quality.gold.published).

No reads, no writes: DataFrames and config in, DataFrames and verdicts out (`cdp.silver.step` is the writer).

    split = split_source(batch, spec, settings, contracts, run_id, now)
    split.checked[INTERACTIONS]        # deduplicated interactions, `_dq_reason` NULL when the row passes
    split.quarantine                   # quarantine.records rows: type defects, flagged values, failed expectations
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from cdp.config import Settings
from cdp.config.sources import SourceSpec
from cdp.frames import union_all
from cdp.quality import TableContract, row_failure_reason
from cdp.quality.quarantine import delivered, quarantine_rows
from cdp.silver import canonical
from cdp.silver.typed import DEFECTS, TYPE_DEFECT, plausible_window, type_defect, unparsed_checks, with_types
from cdp.tables import IDENTITY_RECORDS, INTERACTIONS, ORDER_LINES, ORDERS, Table

DELIVERED = "_delivered"
DQ_REASON = "_dq_reason"
FLAGGED = "bad_value"   # quarantine reason prefix of a value that went on as NULL (its row was not stopped)


def projections_of(spec: SourceSpec, settings: Settings) -> dict[Table, object]:
    """The silver tables this source feeds, each with the transform that projects a typed row onto it."""
    m, s = spec.silver, settings.silver
    out: dict[Table, object] = {}
    if m.interaction:
        out[INTERACTIONS] = canonical.interactions(spec, s)
    if m.identity:
        out[IDENTITY_RECORDS] = canonical.identity_records(spec, s)
    if m.detail == "orders":
        out[ORDERS] = canonical.orders(spec, s)
    if m.detail == "order_lines":
        out[ORDER_LINES] = canonical.order_lines(spec, s)
    return out


def latest_per_key(key: str):
    """Deduplicate on the natural key: the most recently ingested version wins (ties: highest record hash)."""
    def step(df: DataFrame) -> DataFrame:
        w = Window.partitionBy(key).orderBy(F.col("_ingested_at").desc(), F.col("_record_hash").desc())
        return df.withColumn("_rank", F.row_number().over(w)).where("_rank = 1").drop("_rank")
    return step


@dataclass(frozen=True)
class SourceSplit:
    """One source's batch, typed and projected onto each silver table it feeds."""

    source: str
    typed: DataFrame                    # the batch, typed; `_type_defect` NULL unless the row is quarantined,
                                        # `_defects` the values that went on as NULL
    checked: dict[Table, DataFrame]     # table -> deduplicated rows, `_dq_reason` NULL when the row passes
    quarantine: DataFrame               # quarantine.records rows of this batch, every reason


def with_delivered(rows: DataFrame, batch: DataFrame, spec: SourceSpec) -> DataFrame:
    """`rows` (a few failing rows of the batch, by `_record_hash`) with `DELIVERED`: their values as the export
    delivered them, looked up in the batch.

    Only the failing rows' hashes travel to the batch (broadcast: a hash is small, however many rows fail), and only
    the matching rows' values come back, joined without a broadcast. Joining the whole batch's values instead
    shipped hundreds of MB: Spark sizes a string column at 20 bytes, so it took a batch's JSON for a few MB and
    broadcast it through the driver (three times per source) until a 30,000-customer run lost its task results."""
    hashes = rows.select("_record_hash").distinct()
    values = (batch.join(F.broadcast(hashes), "_record_hash", "left_semi")
              .select("_record_hash", delivered(spec.column_names).alias(DELIVERED))
              .dropDuplicates(["_record_hash"]))
    return rows.join(values.hint("shuffle_hash"), "_record_hash", "left")


def flagged_values(typed: DataFrame, batch: DataFrame, spec: SourceSpec) -> DataFrame:
    """One row per value that went on as NULL (null_and_flag) on a row that was not quarantined for its type:
    `_column` and the row's `DELIVERED` values, for the quarantine (`bad_value:<column>`)."""
    flagged = (typed.where(F.col(TYPE_DEFECT).isNull() & (F.size(DEFECTS) > 0))
               .select(spec.record_key, "_source_file", "_record_hash", F.explode(F.map_keys(DEFECTS)).alias("_column")))
    return with_delivered(flagged, batch, spec)


def split_source(batch: DataFrame, spec: SourceSpec, settings: Settings, contracts: dict[Table, TableContract],
                 run_id: str, now: datetime) -> SourceSplit:
    """A bronze batch of one source -> its typed rows, the checked projection per silver table, the quarantine.

    A quarantined row's `raw` holds the bronze row's values as the export delivered them, found again in the
    batch for the failing rows only (`with_delivered`; the quarantine is only computed when there are some). A
    value that went on as NULL gets its own quarantine row (`bad_value:<column>`) while its record goes forward."""
    window = plausible_window(spec, settings.silver, now)
    checks = unparsed_checks(spec, settings.silver, window)   # the value checks' columns, built once
    typed = batch.transform(with_types(spec, settings.silver, now, checks))
    good = typed.where(F.col(TYPE_DEFECT).isNull()).drop(TYPE_DEFECT)
    stamp, run = F.lit(now), F.lit(run_id)
    quarantined = [quarantine_rows(
        batch.withColumn(TYPE_DEFECT, type_defect(spec, settings.silver, window, checks))
        .where(F.col(TYPE_DEFECT).isNotNull()),
        stage="silver", source=spec.name, reason=F.col(TYPE_DEFECT), record_key=F.col(spec.record_key),
        raw=delivered(spec.column_names), run_id=run, at=stamp)]
    quarantined.append(quarantine_rows(
        flagged_values(typed, batch, spec), stage="silver", source=spec.name,
        reason=F.concat(F.lit(f"{FLAGGED}:"), F.col("_column")), record_key=F.col(spec.record_key),
        raw=F.col(DELIVERED), run_id=run, at=stamp))
    checked: dict[Table, DataFrame] = {}
    for table, project in projections_of(spec, settings).items():
        rows = good.transform(project).transform(latest_per_key(table.key[0]))
        checked[table] = rows.withColumn(DQ_REASON, row_failure_reason(contracts[table]))
        failing = checked[table].where(F.col(DQ_REASON).isNotNull())
        key = spec.record_key if spec.record_key in rows.columns else "source_record_key"
        quarantined.append(quarantine_rows(
            with_delivered(failing, batch, spec),
            stage="silver", source=spec.name, reason=F.concat(F.lit(f"dq:{table.name}:"), F.col(DQ_REASON)),
            record_key=F.col(key), raw=F.col(DELIVERED), run_id=run, at=stamp))
    return SourceSplit(spec.name, typed, checked, union_all(quarantined))
