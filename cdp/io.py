"""Reading, writing and merging lakehouse tables: the one place that knows where tables live."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from cdp.config import Settings

LAYERS = ("bronze", "silver", "gold", "quarantine", "audit")


def in_predicate(column: str, values: list[str]) -> str:
    """SQL `column IN ('a', 'b')` with quotes escaped, for replaceWhere / delete predicates."""
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


@dataclass(frozen=True)
class Lakehouse:
    """Tables are Delta directories at <root>/<layer>/<table>; `name` is 'layer.table'."""

    spark: SparkSession
    root: str

    @classmethod
    def from_settings(cls, spark: SparkSession, settings: Settings) -> Lakehouse:
        return cls(spark, settings.path(settings.paths.lakehouse))

    def location(self, name: str) -> str:
        layer, _, table = name.partition(".")
        if layer not in LAYERS or not table:
            raise ValueError(f"table name must be '<layer>.<table>' with layer in {LAYERS}: {name!r}")
        return f"{self.root.rstrip('/')}/{layer}/{table}"

    def exists(self, name: str) -> bool:
        from delta.tables import DeltaTable

        return DeltaTable.isDeltaTable(self.spark, self.location(name))

    def read(self, name: str) -> DataFrame:
        return self.spark.read.format("delta").load(self.location(name))

    def delta_table(self, name: str):
        from delta.tables import DeltaTable

        return DeltaTable.forPath(self.spark, self.location(name))

    def append(self, df: DataFrame, name: str) -> None:
        df.write.format("delta").mode("append").save(self.location(name))

    def overwrite(self, df: DataFrame, name: str) -> None:
        df.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(self.location(name))

    def replace_where(self, df: DataFrame, name: str, predicate: str) -> None:
        """Atomically replace the rows matching predicate with df: re-running a step replaces, never duplicates."""
        (
            df.write.format("delta").mode("overwrite").option("replaceWhere", predicate)
            .save(self.location(name))
        )

    def merge(self, df: DataFrame, name: str, keys: list[str], when_newer: str | None = None) -> None:
        """Upsert df into the table on keys (created on first use); when_newer limits updates, e.g. 's.ts > t.ts'."""
        if not self.exists(name):
            self.overwrite(df, name)
            return
        condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
        (
            self.delta_table(name).alias("t").merge(df.alias("s"), condition)
            .whenMatchedUpdateAll(condition=when_newer)
            .whenNotMatchedInsertAll()
            .execute()
        )

    def last_commit_metrics(self, name: str) -> dict[str, str]:
        """operationMetrics of the table's latest commit (numOutputRows, numTargetRowsInserted, ...)."""
        row = self.delta_table(name).history(1).select("operationMetrics").first()
        return dict(row["operationMetrics"] or {}) if row else {}

    def row_count(self, name: str) -> int:
        return self.read(name).count() if self.exists(name) else 0
