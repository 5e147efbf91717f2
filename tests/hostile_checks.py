"""Where every hostile record went (tests/test_hostile_input.py): the manifest of cdp.synth.hostile against
quarantine.records, the source's main silver table, audit.file_rejections and audit.ingest_log, as aggregates."""

from __future__ import annotations

from dataclasses import asdict

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.config.sources import SourceSpec
from cdp.frames import union_all
from cdp.io import Lakehouse
from cdp.synth.hostile import Case
from cdp.tables import FILE_REJECTIONS, INGEST_LOG, INTERACTIONS, ORDER_LINES, ORDERS, QUARANTINE

MANIFEST_SCHEMA = "kind string, source string, file string, record_key string, outcome string, stage string, reason string"


def base_name(col: str):
    return F.element_at(F.split(F.col(col), "/"), -1)


def main_rows(lake: Lakehouse, spec: SourceSpec) -> DataFrame:
    """(source, file, record_key) of the source's rows in its main silver table."""
    if spec.silver.interaction:
        df = lake.read(INTERACTIONS).where(F.col("source") == spec.name).withColumnRenamed("source_record_key", "k")
    elif spec.silver.detail == "orders":
        df = lake.read(ORDERS).withColumnRenamed("source_record_key", "k")
    else:
        df = lake.read(ORDER_LINES).withColumn("k", F.col(spec.record_key))
    folder = spec.path.rsplit("/", 1)[0]
    df = df.where(F.col("_source_file").contains(f"/{folder}/"))
    return df.select(F.lit(spec.name).alias("source"), base_name("_source_file").alias("file"), F.col("k").alias("record_key"))


def manifest_frame(spark, cases: list[Case]) -> DataFrame:
    rows = [(c.kind, c.source, c.file.rsplit("/", 1)[-1], c.record_key, c.outcome, c.stage, c.reason) for c in cases]
    return spark.createDataFrame(rows, MANIFEST_SCHEMA)


def destinations(lake: Lakehouse, specs: list[SourceSpec], cases: list[Case]) -> DataFrame:
    """Every manifest record with where it went: `dest` (silver | flagged | quarantine:<stage> | rejected | empty |
    missing) and `ok` (the outcome the manifest expects)."""
    spark = lake.spark
    m = manifest_frame(spark, cases)
    silver = union_all([main_rows(lake, s) for s in specs]).select("source", "record_key").distinct() \
        .withColumn("in_silver", F.lit(True))
    q = lake.read(QUARANTINE).select("source", "record_key", "stage", "reason", base_name("source_file").alias("file"))
    q_key = q.where(F.col("record_key").isNotNull())
    matched = q_key.select("source", "record_key", "stage", "reason").distinct().withColumn("q_match", F.lit(True))
    any_q = q_key.groupBy("source", "record_key").agg(F.min("stage").alias("q_stage"))
    rejected = lake.read(FILE_REJECTIONS).select("source", base_name("file_path").alias("file"),
                                                 F.col("reason").alias("rejected_reason")).distinct()
    empty = lake.read(INGEST_LOG).where("rows_landed = 0").select("source", base_name("file_path").alias("file")) \
        .distinct().withColumn("is_empty", F.lit(True))
    keyed = (m.where(F.col("record_key").isNotNull())
             .join(silver, ["source", "record_key"], "left")
             .join(matched, ["source", "record_key", "stage", "reason"], "left")
             .join(any_q, ["source", "record_key"], "left"))
    keyed = keyed.join(rejected, ["source", "file"], "left").join(empty, ["source", "file"], "left")
    dest = (F.when(F.col("rejected_reason").isNotNull(), "rejected")
            .when(F.col("in_silver") & F.col("q_stage").isNotNull(), "flagged")
            .when(F.col("in_silver"), "silver")
            .when(F.col("q_stage").isNotNull(), F.concat(F.lit("quarantine:"), F.col("q_stage")))
            .otherwise("missing"))
    ok = (F.when(F.col("outcome") == "flows", F.col("in_silver") & F.col("q_stage").isNull())
          .when(F.col("outcome") == "flagged", F.col("in_silver") & F.col("q_match"))
          .when(F.col("outcome") == "quarantined", F.col("in_silver").isNull() & F.col("q_match"))
          .when(F.col("outcome") == "rejected", F.col("rejected_reason").contains(F.col("reason"))
                & F.col("in_silver").isNull() & F.col("q_stage").isNull())
          .otherwise(False))
    keyed = keyed.select("kind", "source", "file", "record_key", "outcome", dest.alias("dest"),
                         F.coalesce(ok, F.lit(False)).alias("ok"))
    # records whose key is the damage: matched by count per file and reason; files that land whole or not at all
    keyless = m.where(F.col("record_key").isNull())
    q_null = q.where(F.col("record_key").isNull()).groupBy("source", "file", "stage", "reason") \
        .agg(F.count(F.lit(1)).alias("q_n"))
    per_file = keyless.groupBy("kind", "source", "file", "outcome", "stage", "reason").agg(F.count(F.lit(1)).alias("n"))
    expected_n = keyless.groupBy("source", "file", "stage", "reason").agg(F.count(F.lit(1)).alias("n_all"))
    per_file = (per_file.join(expected_n, ["source", "file", "stage", "reason"], "left")
                .join(q_null, ["source", "file", "stage", "reason"], "left")
                .join(empty, ["source", "file"], "left"))
    keyless_dest = (F.when(F.col("is_empty"), "empty")
                    .when(F.col("q_n").isNotNull(), F.concat(F.lit("quarantine:"), F.col("stage"))).otherwise("missing"))
    keyless_ok = (F.when(F.col("outcome") == "empty", F.coalesce(F.col("is_empty"), F.lit(False)))
                  .otherwise(F.coalesce(F.col("q_n") == F.col("n_all"), F.lit(False))))
    expanded = per_file.select("kind", "source", "file", F.lit(None).cast("string").alias("record_key"), "outcome",
                               keyless_dest.alias("dest"), keyless_ok.alias("ok"),
                               F.explode(F.array_repeat(F.lit(1), F.col("n").cast("int"))).alias("_one")).drop("_one")
    return keyed.unionByName(expanded)


def unexplained_quarantine(lake: Lakehouse, cases: list[Case]) -> DataFrame:
    """Quarantine rows of hostile files whose record the manifest does not expect anywhere near the quarantine."""
    m = manifest_frame(lake.spark, cases)
    hostile_keys = m.where("outcome <> 'flows' AND record_key IS NOT NULL").select("source", "record_key").distinct()
    q = lake.read(QUARANTINE).where(base_name("source_file").contains("hostile_") & F.col("record_key").isNotNull())
    return q.join(hostile_keys, ["source", "record_key"], "left_anti")


def as_dicts(cases: list[Case]) -> list[dict]:
    return [asdict(c) for c in cases]
