"""Pairwise evaluation of a clustering against the generator's ground truth, with Spark aggregations only.

Pairs of a group of n records = n(n-1)/2. Predicted pairs come from cluster sizes, true pairs from person
sizes, true-positive pairs from the (cluster, person) contingency table; nothing per record is collected.
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp.config import GraphSettings
from cdp.identity.config import IdentityConfig
from cdp.identity.graph import connected_components
from cdp.identity.rules import blocking_keys, star, with_derived_attributes


def _pairs(col: str = "n"):
    return F.sum(F.col(col) * (F.col(col) - 1) / 2).cast("long")


def load_truth(spark: SparkSession, truth_dir: str | Path) -> DataFrame:
    """truth_dir/record_owners/*.csv -> (source, record_key, person_id)."""
    path = f"{str(truth_dir).rstrip('/')}/record_owners"  # a folder, not a glob: no metadata-probe warning
    return spark.read.option("header", "true").schema("source string, record_key string, person_id string").csv(path)


def truth_for_records(records: DataFrame, truth: DataFrame) -> DataFrame:
    """Identity records (record_id, source, source_record_key) -> (record_id, person_id) via the ground truth."""
    return records.select("record_id", "source", "source_record_key").join(
        truth.select("source", F.col("record_key").alias("source_record_key"), "person_id"),
        ["source", "source_record_key"],
    ).select("record_id", "person_id")


def pairwise_metrics(assignments: DataFrame, truth: DataFrame) -> dict:
    """assignments(record_id, cluster) + truth(record_id, person_id), over the records both know."""
    both = assignments.select("record_id", "cluster").join(truth.select("record_id", "person_id"), "record_id")
    cells = both.groupBy("cluster", "person_id").agg(F.count("*").alias("n")).persist()
    try:
        clusters = cells.groupBy("cluster").agg(F.sum("n").alias("n"), F.count("*").alias("persons"))
        persons = cells.groupBy("person_id").agg(F.sum("n").alias("n"), F.count("*").alias("clusters"))
        c = clusters.agg(_pairs().alias("pairs"), F.count("*").alias("count"),
                         F.sum(F.when(F.col("persons") > 1, 1).otherwise(0)).alias("over")).first()
        p = persons.agg(_pairs().alias("pairs"), F.count("*").alias("count"),
                        F.sum(F.when(F.col("clusters") > 1, 1).otherwise(0)).alias("under")).first()
        tp = cells.agg(_pairs().alias("pairs")).first()["pairs"] or 0
    finally:
        cells.unpersist()
    predicted, true = c["pairs"] or 0, p["pairs"] or 0
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision, "recall": recall, "f1": f1,
        "predicted_pairs": predicted, "true_pairs": true, "true_positive_pairs": tp,
        "clusters": c["count"], "persons": p["count"],
        "over_merged_clusters": c["over"] or 0, "under_merged_persons": p["under"] or 0,
    }


def evidence_ceiling(records: DataFrame, truth: DataFrame, config: IdentityConfig, graph: GraphSettings) -> DataFrame:
    """(record_id, cluster): the clustering of an oracle that links two records only when they are one person
    AND share a value some enabled deterministic rule links on (an email, a device, a pooled handle, name and
    birth date, ...). No resolver working from exact shared evidence can find more true pairs, so its recall is
    the ceiling the data allows: a device that never logged in, or a social post known by a display name and a
    handle used nowhere else, shares nothing with the rest of its person. Probabilistic links can pass it only
    through typos. `records`: identity records after junk removal (mark_junk), the ones given a customer id.
    """
    keys = (blocking_keys(with_derived_attributes(records, config), config.enabled_rules, config.junk)
            .select("record_id", "rule", "key").join(truth.select("record_id", "person_id"), "record_id"))
    edges = star(keys, ["person_id", "rule", "key"]).select("src", F.col("record_id").alias("dst")).distinct()
    cc = connected_components(records.select(F.col("record_id").alias("id")), edges, graph)
    return cc.select(F.col("id").alias("record_id"), F.col("component").alias("cluster"))
