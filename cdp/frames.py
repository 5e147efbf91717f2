"""Small DataFrame helpers every layer shares: a union of frames, the first failing check of a row, and the two ways
a frame several jobs read is materialised once (cut_lineage, cache_columns) and released (uncache), and big literal
Columns built once per SparkContext (literal_once)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from functools import reduce
from weakref import WeakKeyDictionary

from pyspark import SparkContext, StorageLevel
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


def cut_lineage(df, reliable: bool = False):
    """Materialise `df` (local checkpoint, or a reliable one in the checkpoint directory) and return a frame
    reading it with neither its lineage nor its size estimate.

    A checkpointed frame keeps its plan's size estimate, and an inner join estimates the product of its inputs'
    sizes: through rounds of checkpointed joins (connected components, the identity guards) the estimate's
    digits double every round, and at a million records the planner spent most of the identity step
    multiplying integers of millions of digits. A frame over the checkpointed rows has the default estimate
    instead; adaptive query execution sizes the joins from the real shuffle statistics.
    """
    done = df.checkpoint() if reliable else df.localCheckpoint()
    jdf = done._jdf
    fresh = df.sparkSession._jsparkSession.internalCreateDataFrame(jdf.queryExecution().toRdd(), jdf.schema(), False)
    return DataFrame(fresh, df.sparkSession)


def cache_columns(df):
    """Materialise `df` in Spark's columnar cache (memory, spilling to disk) and return it: a frame that several
    jobs read (a gold table's contract checks, then its write; the touchpoints every fact reads) is computed once,
    and each later job reads only the columns it uses, where a checkpoint's rows are read whole every time.

    For frames whose plan stays small (not the rounds of joins cut_lineage is for). Release with `uncache`."""
    df = df.persist(StorageLevel.MEMORY_AND_DISK)
    df.count()   # fills the whole cache: every column of every row
    return df


def is_cached(df) -> bool:
    """df is in Spark's cache (cache_columns, persist): reading it reads the cached rows."""
    level = df.storageLevel
    return level.useMemory or level.useDisk


def uncache(*frames) -> None:
    """Release the cache of frames made by cache_columns (None and uncached frames are skipped)."""
    for df in frames:
        if df is not None and is_cached(df):
            df.unpersist()


def is_materialised(df) -> bool:
    """df reads rows already computed (a cut_lineage frame, a cache_columns frame, Python rows), so materialising it
    again only copies."""
    if is_cached(df):
        return True
    return df._jdf.queryExecution().analyzed().getClass().getSimpleName() in ("LogicalRDD", "LocalRelation")


_LITERALS: WeakKeyDictionary = WeakKeyDictionary()   # SparkContext -> {key: Column}


def literal_once(key: Hashable, build: Callable[[], Column]) -> Column:
    """The literal Column `build()` makes (a map or an array of hundreds of entries, each a JVM call to build),
    built once per SparkContext and reused by every expression that needs it."""
    sc = SparkContext._active_spark_context
    if sc is None:
        return build()
    built = _LITERALS.setdefault(sc, {})
    if key not in built:
        built[key] = build()
    return built[key]
