"""Stable customer ids across runs: clusters keep the ids their records carried, merges keep the oldest.

Minting: customer_id = "C" + first 16 hex chars of sha2(<smallest record_id of the cluster>), and the
identity map remembers that record as `minted_from`. "Oldest" = smallest minted_from (ties: smallest
customer_id). Because a fresh cluster always mints from its smallest record, a full rebuild of the same
input gives the same ids as the incremental path, and a merge keeps the id a full rebuild would give,
as long as the minting records are still there. A minted id already used by an earlier customer
(a split-off part whose smallest record once minted the parent's id) is re-minted from
"<record_id>|<run_id>" instead, so ids are never reused.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp.frames import cut_lineage

CHANGES_SCHEMA = ("run_id string, change_type string, customer_ids_before array<string>, "
                  "customer_id_after string, records long, reason string")


def mint(seed: Column) -> Column:
    return F.concat(F.lit("C"), F.substring(F.sha2(seed, 256), 1, 16))


def assign_customer_ids(components: DataFrame, previous_map: DataFrame | None,
                        run_id: str, known_ids: DataFrame | None = None) -> tuple[DataFrame, DataFrame]:
    """components(record_id, component) + previous map(record_id, customer_id[, minted_from]) ->
    (identity_map(record_id, customer_id, minted_from), changes(run_id, change_type, customer_ids_before,
    customer_id_after, records, reason)); change_type in {new, merge, split}.
    known_ids (customer_id): every id in use, when previous_map holds only some customers' records (an
    incremental run's region): a freshly minted id must not be any of them."""
    spark = components.sparkSession
    comp = components.select("record_id", "component")
    if previous_map is None:
        prev = spark.createDataFrame([], "record_id string, customer_id string, minted_from string")
    else:
        minted = F.col("minted_from") if "minted_from" in previous_map.columns else F.col("customer_id")
        prev = previous_map.select("record_id", "customer_id", F.coalesce(minted, F.col("customer_id")).alias("minted_from"))
    sizes = comp.groupBy("component").agg(F.count("*").alias("size"))
    joined = comp.join(prev, "record_id", "left")

    # each previous id's parts; its largest part (tie: smallest component = smallest record id) keeps it
    parts = (
        joined.where(F.col("customer_id").isNotNull())
        .groupBy("component", "customer_id").agg(F.min("minted_from").alias("minted_from"), F.count("*").alias("n"))
        .withColumn("_rank", F.row_number().over(
            Window.partitionBy("customer_id").orderBy(F.col("n").desc(), F.col("component").asc())))
        .withColumn("n_parts", F.count("*").over(Window.partitionBy("customer_id")))
        .transform(cut_lineage)
    )
    kept = parts.where(F.col("_rank") == 1)
    survivors = kept.groupBy("component").agg(
        F.min(F.struct("minted_from", "customer_id")).alias("_oldest"),
        F.array_sort(F.collect_list("customer_id")).alias("candidates"),
    ).select("component", F.col("_oldest.customer_id").alias("customer_id"),
             F.col("_oldest.minted_from").alias("minted_from"), "candidates")

    used = (prev if known_ids is None else known_ids).select(F.col("customer_id").alias("_cand")).distinct() \
        .withColumn("_used", F.lit(True))
    reseed = F.concat_ws("|", F.col("component"), F.lit(run_id))
    fresh = (
        sizes.select("component").join(survivors.select("component"), "component", "left_anti")
        .withColumn("_cand", mint(F.col("component"))).join(used, "_cand", "left")
        .select("component",
                F.when(F.col("_used"), mint(reseed)).otherwise(F.col("_cand")).alias("customer_id"),
                F.when(F.col("_used"), reseed).otherwise(F.col("component")).alias("minted_from"))
    )
    final = survivors.select("component", "customer_id", "minted_from").unionByName(fresh).transform(cut_lineage)
    identity_map = comp.join(final, "component").select("record_id", "customer_id", "minted_from")

    had_prev = joined.groupBy("component").agg(F.max(F.col("customer_id").isNotNull()).alias("had_prev"))
    new = (
        fresh.join(had_prev, "component").where(~F.col("had_prev")).join(sizes, "component")
        .select(F.lit(run_id).alias("run_id"), F.lit("new").alias("change_type"),
                F.array().cast("array<string>").alias("customer_ids_before"), F.col("customer_id").alias("customer_id_after"),
                F.col("size").alias("records"), F.lit("new cluster: none of its records had a customer id").alias("reason"))
    )
    merges = (
        survivors.where(F.size("candidates") > 1).join(sizes, "component")
        .select(F.lit(run_id).alias("run_id"), F.lit("merge").alias("change_type"),
                F.col("candidates").alias("customer_ids_before"), F.col("customer_id").alias("customer_id_after"),
                F.col("size").alias("records"),
                F.concat(F.lit("previous customers linked by new evidence; the oldest id "), F.col("customer_id"),
                         F.lit(" survives")).alias("reason"))
    )
    splits = (
        parts.where((F.col("n_parts") > 1) & (F.col("_rank") > 1))
        .join(final.select("component", F.col("customer_id").alias("after")), "component")
        .select(F.lit(run_id).alias("run_id"), F.lit("split").alias("change_type"),
                F.array(F.col("customer_id")).alias("customer_ids_before"), F.col("after").alias("customer_id_after"),
                F.col("n").alias("records"),
                F.concat(F.lit("the evidence linking these records to "), F.col("customer_id"),
                         F.lit(" is gone; its largest part kept the id")).alias("reason"))
    )
    changes = new.unionByName(merges).unionByName(splits)
    return identity_map, changes
