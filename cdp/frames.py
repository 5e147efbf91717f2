"""Small DataFrame helpers every layer shares: a union of frames and the first failing check of a row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F


def union_all(frames: Iterable[DataFrame], spark: SparkSession | None = None, schema: str | None = None) -> DataFrame:
    """The frames stacked by column name; with none, an empty frame of `schema` (spark and schema required then)."""
    frames = list(frames)
    if frames:
        return reduce(DataFrame.unionByName, frames)
    if spark is None or schema is None:
        raise ValueError("union_all of no frames needs spark and a schema")
    return spark.createDataFrame([], schema)


def first_failing(checks: Sequence[tuple[Column, str | Column]]) -> Column:
    """The reason of the first (condition, reason) pair whose condition is true for the row, else NULL.

    One builder for every "why does this row not go forward" column: bronze defects, type defects and the
    row-level expectations of a contract. A NULL condition counts as passing."""
    if not checks:
        return F.lit(None).cast("string")
    return F.coalesce(*[F.when(cond, reason if isinstance(reason, Column) else F.lit(reason))
                        for cond, reason in checks])
