"""quarantine.records: every row that does not go forward, with its stage, reason and the values as delivered.

One builder for every stage (bronze defects, silver type defects, failed row-level expectations), so a
quarantined row always has the same shape and `raw` always holds what the export delivered.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

RESCUED = "_rescued_data"


def delivered(columns: list[str]) -> Column:
    """The row's values exactly as the export delivered them (bronze strings), as one JSON object: every
    declared column that had a value, plus the undeclared ones it rescued."""
    declared = F.struct(*[F.col(f"`{c}`").cast("string").alias(c) for c in columns])
    rescued = F.coalesce(F.from_json(F.col(RESCUED), "map<string,string>"), F.create_map().cast("map<string,string>"))
    as_map = F.map_filter(F.from_json(F.to_json(declared), "map<string,string>"), lambda k, v: v.isNotNull())
    return F.to_json(F.map_concat(as_map, F.map_filter(rescued, lambda k, v: ~k.isin(columns))))


def quarantine_rows(df: DataFrame, *, stage: str, source: str, reason: Column, record_key: Column, raw: Column,
                    run_id: Column, at: Column) -> DataFrame:
    """Rows of `df` (which carries `_source_file`) in the shape of quarantine.records."""
    return df.select(
        run_id.cast("string").alias("run_id"), F.lit(stage).alias("stage"), F.lit(source).alias("source"),
        F.col("_source_file").alias("source_file"), record_key.cast("string").alias("record_key"),
        reason.alias("reason"), raw.alias("raw"), at.cast("timestamp").alias("quarantined_at"),
    )
