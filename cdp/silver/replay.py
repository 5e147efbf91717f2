"""`cdp quarantine --replay`: send quarantined silver rows through silver again, after a configuration fix.

Bronze keeps every row as delivered, so a row silver quarantined (a time format, a plausibility window, a type, an
expectation) is found again in bronze.<source> by its file and record key, and goes through the same core as a new
batch (`cdp.silver.core.split_source`) with today's configuration:

- what passes now is MERGEd into the silver tables like any batch (latest ingested version wins: a newer version of
  the record already in silver stays);
- the replayed rows' quarantine rows are replaced, in one atomic write per source, by what still fails, and why;
- audit.quarantine_replays says per old reason how many rows came back and how many are still quarantined (and for
  what), and audit.reconciliation balances the replay per source and table (stage `replay`).

Replaying again changes nothing more: the rows that came back are no longer in quarantine, and the ones still there
fail the same way. Bronze-stage rows (a malformed line, an oversized value) never reached bronze: their file must
be delivered again. The next `cdp run` carries what came back to the gold tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.audit import Reconciliation, record_reconciliation
from cdp.config import Settings
from cdp.config.sources import SourceSpec
from cdp.frames import cut_lineage, union_all
from cdp.io import Lakehouse, in_predicate
from cdp.quality import load_contract
from cdp.silver.core import DQ_REASON, FLAGGED, split_source
from cdp.silver.typed import TYPE_DEFECT
from cdp.tables import QUARANTINE, QUARANTINE_REPLAYS, SILVER_TABLES, bronze

STAGE = "silver"


@dataclass
class SourceReplay:
    source: str
    replayed: int = 0                                   # records (file, key) sent through silver again
    returned: int = 0                                   # ... of which nothing is quarantined any more
    still: dict[str, int] = field(default_factory=dict)  # reason now -> rows still quarantined


@dataclass
class ReplayResult:
    run_id: str
    sources: list[SourceReplay] = field(default_factory=list)
    not_replayable: dict[tuple[str, str], int] = field(default_factory=dict)   # (source, bronze reason) -> rows

    @property
    def replayed(self) -> int:
        return sum(s.replayed for s in self.sources)

    @property
    def returned(self) -> int:
        return sum(s.returned for s in self.sources)


def reason_matches(reason: str | None) -> Column:
    """A quarantine reason filter: the reason itself (`implausible_time:sold_at`) or its kind (`implausible_time`,
    `dq:interactions`)."""
    if reason is None:
        return F.lit(True)
    return (F.col("reason") == reason) | F.col("reason").startswith(reason + ":")


def selected(quarantine: DataFrame, source: str | None, reason: str | None) -> DataFrame:
    rows = quarantine.where(reason_matches(reason))
    return rows if source is None else rows.where(F.col("source") == source)


def replayed_rows(bronze_rows: DataFrame, chosen: DataFrame, spec: SourceSpec) -> DataFrame:
    """The bronze rows behind the chosen quarantine rows (their file and record key), every version of them."""
    keys = chosen.select(F.col("source_file").alias("_source_file"), F.col("record_key").alias("_key")).distinct()
    return (bronze_rows.withColumn("_key", F.col(spec.record_key).cast("string"))
            .join(F.broadcast(keys), ["_source_file", "_key"], "left_semi").drop("_key"))


def outcomes(before: DataFrame, after: DataFrame) -> DataFrame:
    """(reason, outcome, reason_now, rows) per old reason: `returned` when the row's key has no quarantine row
    now, else `still_quarantined` with each reason it has now."""
    now = after.select("source_file", "record_key", F.col("reason").alias("reason_now")).distinct()
    return (before.select("source_file", "record_key", "reason").distinct()
            .join(now, ["source_file", "record_key"], "left")
            .withColumn("outcome", F.when(F.col("reason_now").isNull(), "returned").otherwise("still_quarantined"))
            .groupBy("reason", "outcome", "reason_now").agg(F.count(F.lit(1)).alias("rows")))


def replay_source(lake: Lakehouse, spec: SourceSpec, chosen: DataFrame, settings: Settings, contracts: dict,
                  run_id: str, now: datetime) -> tuple[SourceReplay, list[Reconciliation], list[tuple]]:
    """Replay one source's chosen quarantine rows: (what happened, reconciliation rows, audit rows)."""
    files = sorted(r[0] for r in chosen.select("source_file").distinct().collect())   # files, not rows
    batch = replayed_rows(lake.read(bronze(spec.name)).where(F.col("_source_file").isin(files)), chosen, spec)
    batch = batch.transform(cut_lineage)
    split = split_source(batch, spec, settings, contracts, run_id, now)
    rows_in = batch.count()
    replayed_keys = batch.select(F.col("_source_file").alias("source_file"),
                                 F.col(spec.record_key).cast("string").alias("record_key")).distinct()
    result = SourceReplay(spec.name, replayed=replayed_keys.count())
    reconciliation = []
    typed = split.typed.transform(cut_lineage)
    type_bad = typed.where(F.col(TYPE_DEFECT).isNotNull()).count()
    for table, checked in split.checked.items():
        checked = checked.transform(cut_lineage)
        agg = checked.agg(F.count(F.lit(1)).alias("n"), F.count(DQ_REASON).alias("bad")).first()
        reconciliation.append(Reconciliation(spec.name, "replay", table.qualified, rows_in, agg["n"] - agg["bad"],
                                             type_bad + agg["bad"], rows_in - type_bad - agg["n"]))
        # the replayed version is the one silver had (same ingestion): it replaces it; a newer one stays
        lake.merge(checked.where(F.col(DQ_REASON).isNull()).drop(DQ_REASON), table,
                   when_newer="s._ingested_at >= t._ingested_at")
    fresh = split.quarantine.transform(cut_lineage)
    # every silver quarantine row of the replayed records goes (all their reasons were checked again), in one
    # atomic write with the rows of those files that were not replayed and what still fails
    predicate = f"stage = '{STAGE}' AND source = '{spec.name}' AND {in_predicate('source_file', files)}"
    current = lake.read(QUARANTINE).where(predicate)
    before = current.join(replayed_keys, ["source_file", "record_key"], "left_semi").transform(cut_lineage)
    kept = current.join(replayed_keys, ["source_file", "record_key"], "left_anti")
    lake.replace_where(union_all([kept, fresh]).transform(cut_lineage), QUARANTINE, predicate)
    stopped = fresh.where(~F.col("reason").startswith(f"{FLAGGED}:"))
    result.still = {r.reason: r[1] for r in stopped.groupBy("reason").count().collect()}   # a row per reason
    result.returned = result.replayed - stopped.select("source_file", "record_key").distinct().count()
    audit = [(run_id, spec.name, r.reason, r.outcome, r.reason_now, r.rows, now)
             for r in outcomes(before, fresh).collect()]   # a row per reason before and after
    return result, reconciliation, audit


def replay_quarantine(lake: Lakehouse, specs: list[SourceSpec], settings: Settings, run_id: str, now: datetime,
                      source: str | None = None, reason: str | None = None) -> ReplayResult:
    """Send the silver quarantine rows of `source` (all sources) with `reason` (a reason or its kind; all) through
    silver again with the current configuration."""
    result = ReplayResult(run_id)
    if not lake.exists(QUARANTINE):
        return result
    quarantine = selected(lake.read(QUARANTINE), source, reason)
    counts = {(r.source, r.stage, r.reason): r[3] for r in
              quarantine.groupBy("source", "stage", "reason").count().collect()}   # a row per source and reason
    result.not_replayable = {(s, r): n for (s, stage, r), n in counts.items() if stage != STAGE}
    by_name = {s.name: s for s in specs}
    wanted = sorted({s for (s, stage, _) in counts if stage == STAGE and s in by_name})
    contracts = {t: load_contract(settings, t.qualified) for t in SILVER_TABLES}
    reconciliation, audit = [], []
    for name in wanted:
        if not lake.exists(bronze(name)):
            continue
        chosen = quarantine.where((F.col("source") == name) & (F.col("stage") == STAGE))
        done, rec, rows = replay_source(lake, by_name[name], chosen, settings, contracts, run_id, now)
        result.sources.append(done)
        reconciliation += rec
        audit += rows
    if audit:
        lake.append(lake.rows(QUARANTINE_REPLAYS, audit), QUARANTINE_REPLAYS)
    record_reconciliation(lake, reconciliation, run_id, now)
    return result
