"""Segments: conf/segments.yaml (cdp.config.segments) names each segment and its Spark SQL condition over
gold.customer_profile's columns; gold.segments holds each run's membership and gold.segment_sizes the counts.

The conditions are analysed by Spark against the profile's columns before any customer is assigned, so a typo is
one line naming the file and the segment, not a stack trace in the middle of a run.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from cdp.config.segments import SegmentsConfig
from cdp.errors import ConfigError, first_line


def check_segment_conditions(profile: DataFrame | StructType, config: SegmentsConfig, path: str | Path) -> None:
    """Spark analyses every condition against the profile's columns (no job runs); the first one that does not
    resolve, parse or give a boolean is a one-line ConfigError naming the file, the segment and its key."""
    if isinstance(profile, StructType):
        spark = SparkSession.getActiveSession()
        if spark is None:
            raise ValueError("no active SparkSession to analyse the segment conditions with")
        profile = spark.createDataFrame([], profile)
    empty = profile.where(F.lit(False))
    for i, segment in enumerate(config.segments):
        try:
            empty.where(F.expr(segment.condition)).schema  # noqa: B018 - .schema forces analysis, even on Connect
        except PySparkException as exc:
            raise ConfigError(f"{path}: segment '{segment.name}' (key 'segments.{i}.condition'): "
                              f"{first_line(exc)}") from None


def segment_membership(profile: DataFrame, config: SegmentsConfig, run_id: str,
                       assigned_at: datetime) -> tuple[DataFrame, DataFrame]:
    """(membership, sizes) of one run. membership: (run_id, segment, customer_id, assigned_at), a row per
    customer and segment it meets (a customer can be in several); sizes: (run_id, segment, customers,
    share_of_customers) for every configured segment, empty ones included. A condition that is null for a
    customer (a missing value) does not make it a member, as in SQL's WHERE."""
    # One pass over the profile: each customer's matching segment names, exploded.
    matches = F.array_compact(F.array(*(F.when(F.expr(s.condition), F.lit(s.name)) for s in config.segments)))
    membership = profile.select(F.lit(run_id).alias("run_id"), F.explode(matches).alias("segment"), "customer_id",
                                F.lit(assigned_at).alias("assigned_at"))
    names = profile.sparkSession.createDataFrame([(s.name,) for s in config.segments], "segment string")
    counts = membership.groupBy("segment").agg(F.count(F.lit(1)).alias("_members"))
    total = profile.agg(F.count(F.lit(1)).alias("_total"))
    customers = F.coalesce(F.col("_members"), F.lit(0)).cast("long")
    sizes = (names.join(counts, "segment", "left").crossJoin(total)
             .select(F.lit(run_id).alias("run_id"), "segment", customers.alias("customers"),
                     # no customers at all: the share is undefined (null), not 0
                     F.when(F.col("_total") > 0, customers / F.col("_total")).alias("share_of_customers")))
    return membership, sizes
