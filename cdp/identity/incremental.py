"""True incremental identity resolution, the pure core: the records that changed since the last run -> the region
of whole clusters they can reach -> `resolve` on that region alone -> the gold identity tables with the region
replaced.

    delta = resolve_increment(state, config, settings, run_id=run_id, now=now)
    write_increment(lake, delta)                        # cdp.identity.writer: the only I/O

Why a region gives exactly the full run's answer (docs/identity.md "Incremental runs"). Everything `resolve` does
is local to a cluster before the guards (a *match group*: the records the rules and the model linked), given
three things that depend on all records: which values are junk, whether a blocking value is shared by a
household, and the model's term frequencies (saved with the model, so a pair's score never depends on the other
records of a run). So:

1. dirty records: new, changed (a different fingerprint) and deleted ones, and the holders of a value whose junk
   status flipped (counted over all records for the dirty records' values only); none: the run stops here;
2. touched records: every record sharing a rule's blocking key with a dirty record (its old or new version):
   those blocks' stars and household splits may change;
3. the region: the previous match groups of the dirty and touched records, the dirty records themselves, and the
   match groups of the records the saved model links to a dirty record (Splink scores only dirty x existing
   pairs, from the same blocking rules). Any other group keeps its records, edges and scores: its blocks have
   no dirty member, and its pairs' scores are the ones it had;
4. `resolve` on the region's current records with the junk values, the block names (of the household-guarded
   rules; none without one) and the ids in use passed in; the region's rows of each gold table are replaced,
   every other row stays.

Nothing here may assume the demo's configuration: a company's rules may name only custom attributes, guard no
value, and match nothing probabilistically (tests/test_identity_configs.py runs every shipped configuration).

A full rebuild with the same saved model gives the same customers, ids, links and scores (tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import MapType

from cdp.config import Settings
from cdp.config.identity import IdentityConfig
from cdp.frames import cut_lineage
from cdp.identity.junk import junk_pairs, junk_report, mark_junk
from cdp.identity.probabilistic import SCORE_SCHEMA, SavedModel, links_of, score_against
from cdp.identity.resolve import IdentityTables, Progress, identified, resolve, stopwatch
from cdp.identity.rules import block_names, rule_keys, with_derived_attributes

JUNK_COLUMNS = ["attribute", "value", "records", "reason"]


@dataclass(frozen=True)
class IdentityState:
    """What an incremental run starts from: the records as the last run resolved them and as they are now, and
    what that run wrote."""

    previous_records: DataFrame   # silver.identity_records at the version the last run read
    records: DataFrame            # silver.identity_records now
    identity_map: DataFrame       # gold.identity_map (record_id, customer_id, minted_from, match_group, ...)
    junk_values: DataFrame        # gold.identity_junk_values
    saved: SavedModel | None      # the model the last full run trained or loaded (None: no probabilistic matching)


@dataclass(frozen=True)
class Increment:
    """One incremental resolution: the region's new rows of each gold table and what they replace."""

    tables: IdentityTables | None  # the region's frames (junk_values: the whole new junk report); None: no change
    region_before: DataFrame       # record_id of the region's records in the last run's map (deleted ones too)
    region_after: DataFrame        # record_id of the region's records now (and of its deleted records)
    dirty_scores: DataFrame        # SCORE_SCHEMA: dirty record x record outside the region, at or above the floor
    dirty: DataFrame               # record_id of the dirty records (new, changed, deleted, junk flipped)
    counts: dict[str, int] = field(default_factory=dict)   # records, dirty, region (for audit.identity_runs)


def fingerprint(records: DataFrame) -> Column:
    """A record's content (every identity column, lineage excluded by the caller) as one 64-bit hash (maps as
    JSON text: Spark does not hash maps), with which columns are null (a null adds nothing to Spark's hash, so a
    value moving to another column would otherwise hash the same). Two versions colliding: about 1 in 10^19."""
    fields = [f for f in sorted(records.schema.fields, key=lambda f: f.name) if f.name != "record_id"]
    columns = [F.to_json(F.col(f.name)) if isinstance(f.dataType, MapType) else F.col(f.name) for f in fields]
    nulls = F.concat(*[F.when(F.col(f.name).isNull(), F.lit("1")).otherwise(F.lit("0")) for f in fields])
    return F.xxhash64(nulls, *columns)


def dirty_records(current: DataFrame, previous: DataFrame) -> DataFrame:
    """(record_id) of every record added, changed or deleted between `previous` and `current`."""
    now = current.select("record_id", fingerprint(current).alias("_now"))
    before = previous.select("record_id", fingerprint(previous).alias("_before"))
    return (now.join(before, "record_id", "full_outer").where(~F.col("_now").eqNullSafe(F.col("_before")))
            .select("record_id"))


def update_junk(current: DataFrame, changed: DataFrame, old_report: DataFrame,
                config: IdentityConfig) -> tuple[DataFrame, DataFrame]:
    """-> (the junk report over all current records, record_id of the current records holding a value whose junk
    status flipped). Only the values the changed records (`changed`: their old and new versions) hold are
    counted again; every other value keeps its count."""
    values = junk_pairs(changed, config).select("attribute", "value").distinct().transform(cut_lineage)
    holders = junk_pairs(current, config).join(F.broadcast(values), ["attribute", "value"], "left_semi") \
        .transform(cut_lineage)
    counted = holders.groupBy("attribute", "value", "blocklisted").agg(F.count("*").alias("records"))
    recounted = junk_report(counted, config)
    old = old_report.select(*JUNK_COLUMNS)
    report = old.join(values, ["attribute", "value"], "left_anti").unionByName(recounted).transform(cut_lineage)
    before = old.join(values, ["attribute", "value"], "left_semi").select("attribute", "value")
    after = recounted.select("attribute", "value")
    flipped = before.exceptAll(after).unionByName(after.exceptAll(before))
    return report, holders.join(F.broadcast(flipped), ["attribute", "value"], "left_semi").select("record_id").distinct()


def matchable(records: DataFrame, junk: DataFrame, config: IdentityConfig) -> DataFrame:
    """Records as the rules and the model see them: junk values nulled (by this report), anonymous ones out,
    derived attributes added."""
    clean, _ = mark_junk(records, config, junk)
    return identified(with_derived_attributes(clean, config), config)


def _records_of_groups(identity_map: DataFrame, seeds: DataFrame) -> DataFrame:
    """record_id of every record of the previous match groups holding one of `seeds` (record_id)."""
    groups = identity_map.join(seeds, "record_id").select("match_group").distinct()
    return identity_map.join(groups, "match_group").select("record_id")


def resolve_increment(state: IdentityState, config: IdentityConfig, settings: Settings, *, run_id: str,
                      now: datetime, progress: Progress | None = None) -> Increment:
    """Resolve the records that changed since the last run (see the module doc)."""
    seconds: dict[str, float] = {}
    lap = stopwatch(seconds, progress)
    current, previous = state.records, state.previous_records
    changed_ids = dirty_records(current, previous).transform(cut_lineage)
    changed = (current.join(changed_ids, "record_id", "left_semi")
               .unionByName(previous.join(changed_ids, "record_id", "left_semi")))
    junk, flipped = update_junk(current, changed, state.junk_values, config)
    dirty = changed_ids.unionByName(flipped).distinct().transform(cut_lineage)
    lap("changed records and junk values")
    if dirty.isEmpty():   # the region would be empty: the last run's tables are already this run's answer
        return Increment(tables=None, region_before=dirty, region_after=dirty, dirty=dirty,
                         dirty_scores=current.sparkSession.createDataFrame([], SCORE_SCHEMA),
                         counts={"records": current.count(), "dirty": 0, "region": 0})

    # touched: records sharing a blocking key with a dirty record's old or new version
    now_clean = matchable(current, junk, config).transform(cut_lineage)   # read four times below
    dirty_now = now_clean.join(dirty, "record_id", "left_semi").transform(cut_lineage)
    dirty_before = matchable(previous.join(dirty, "record_id", "left_semi"), state.junk_values.select(*JUNK_COLUMNS),
                             config)
    dirty_keys = (rule_keys(dirty_now, config).unionByName(rule_keys(dirty_before, config))
                  .select("rule", "key").distinct().transform(cut_lineage))
    all_keys = rule_keys(now_clean, config)
    touched = all_keys.join(F.broadcast(dirty_keys), ["rule", "key"], "left_semi").select("record_id")
    seeds = dirty.unionByName(touched).distinct().transform(cut_lineage)
    region = _records_of_groups(state.identity_map, seeds).unionByName(dirty_now.select("record_id")) \
        .unionByName(touched)
    lap("blocks the changes touch")

    # the model's links from a dirty record into a group outside: that group joins the region
    p = config.matching
    outside_scores = now_clean.sparkSession.createDataFrame([], SCORE_SCHEMA)
    if p and state.saved is not None:
        scores = score_against(dirty_now, now_clean, p, state.saved, config.household_guard.max_edit_distance)
        partners = links_of(scores, p).select(F.explode(F.array("src", "dst")).alias("record_id")).distinct()
        region = region.unionByName(_records_of_groups(state.identity_map, partners)).unionByName(partners)
        region = region.distinct().transform(cut_lineage)
        inside = region.withColumn("_in", F.lit(True))
        # dirty x outside pairs: a full run scores them; the region run scores only the pairs inside it
        outside_scores = (scores.join(inside.withColumnRenamed("record_id", "src"), "src", "left")
                          .join(inside.withColumnRenamed("_in", "_in_r").withColumnRenamed("record_id", "dst"), "dst", "left")
                          .where(~(F.coalesce("_in", F.lit(False)) & F.coalesce("_in_r", F.lit(False))))
                          .select(*scores.columns).transform(cut_lineage))
    else:
        region = region.distinct().transform(cut_lineage)
    lap("probabilistic matches of the changed records")

    region_before = (state.identity_map.join(region, "record_id", "left_semi").select("record_id")
                     .unionByName(_records_of_groups(state.identity_map, region)).distinct().transform(cut_lineage))
    region_records = current.join(region, "record_id", "left_semi")
    region_keys = rule_keys(now_clean.join(region, "record_id", "left_semi"), config).select("rule", "key").distinct()
    names = block_names(all_keys.join(region_keys, ["rule", "key"], "left_semi")).transform(cut_lineage)
    known = state.identity_map.select("customer_id").distinct()
    previous_map = state.identity_map.join(region_before, "record_id", "left_semi") \
        .select("record_id", "customer_id", "minted_from").transform(cut_lineage)
    lap("the region's context")
    tables = resolve(region_records, previous_map, config, settings, run_id=run_id, now=now, progress=progress,
                     saved=state.saved, junk=junk, names=names, known_ids=known)
    counts = {"records": current.count(), "dirty": dirty.count(), "region": region.count()}
    return Increment(
        tables=replace(tables, junk_values=junk.withColumn("run_id", F.lit(run_id)),
                       seconds={**seconds, **tables.seconds}),
        region_before=region_before, region_after=region, dirty_scores=outside_scores, dirty=dirty, counts=counts,
    )
