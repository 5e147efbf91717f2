"""Reading, writing and merging lakehouse tables: the one place that knows where tables live."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from cdp import faults
from cdp.config import Settings
from cdp.storage import hadoop_path
from cdp.tables import Table, table


def in_predicate(column: str, values: list[str]) -> str:
    """SQL `column IN ('a', 'b')` with quotes escaped, for replaceWhere / delete predicates."""
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


def _table(name: Table | str) -> Table:
    return name if isinstance(name, Table) else table(name)


@dataclass(frozen=True)
class Lakehouse:
    """Tables are Delta directories at <root>/<layer>/<table>; each is named by the registry (cdp.tables)."""

    spark: SparkSession
    root: str

    @classmethod
    def from_settings(cls, spark: SparkSession, settings: Settings) -> Lakehouse:
        return cls(spark, settings.path(settings.paths.lakehouse))

    def layer_location(self, layer: str) -> str:
        """<root>/<layer>: the folder holding a layer's tables."""
        return f"{self.root.rstrip('/')}/{layer}"

    def location(self, name: Table | str) -> str:
        t = _table(name)
        return f"{self.layer_location(t.layer)}/{t.name}"

    def exists(self, name: Table | str) -> bool:
        from delta.tables import DeltaTable

        return DeltaTable.isDeltaTable(self.spark, self.location(name))

    def read(self, name: Table | str, version: int | None = None) -> DataFrame:
        """The table as it stands, or as it stood at a Delta version (time travel)."""
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(self.location(name))

    def enable_deletion_vectors(self, name: Table | str) -> None:
        """A MERGE or DELETE then marks the rows it removes in a deletion vector instead of rewriting every file
        that holds one (the files keep them until `REORG TABLE ... APPLY (PURGE)` or a rewrite and VACUUM)."""
        detail = self.spark.sql(f"DESCRIBE DETAIL delta.`{self.location(name)}`").select("properties").first()
        if (detail["properties"] or {}).get("delta.enableDeletionVectors") != "true":
            self.spark.sql(f"ALTER TABLE delta.`{self.location(name)}` "
                           "SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")

    def version_readable(self, name: Table | str, version: int) -> bool:
        """Can the table still be read as of this version: its log entry kept and every data file of that version
        still there (VACUUM removes the files only older versions use)."""
        try:
            files = self.read(name, version=version).inputFiles()
        except Exception:  # noqa: BLE001 - the version's log entry is gone (log retention) or never was
            return False
        return all(fs.exists(path) for fs, path in (hadoop_path(self.spark, f) for f in files))

    def version(self, name: Table | str) -> int:
        """The table's current Delta version."""
        return self.delta_table(name).history(1).select("version").first()[0]

    def delta_table(self, name: Table | str):
        from delta.tables import DeltaTable

        return DeltaTable.forPath(self.spark, self.location(name))

    def ensure(self, name: Table | str) -> None:
        """Create the table, empty, from its registered schema when it does not exist yet."""
        t = _table(name)
        if t.schema is None:
            raise ValueError(f"{t} has no registered schema to create it from")
        if not self.exists(t):
            self.spark.createDataFrame([], t.schema).write.format("delta").mode("append").save(self.location(t))

    def values_by(self, name: Table | str, key: str, value: str) -> dict[str, set[str]]:
        """{key: its distinct values} of a small bookkeeping table (one collect: audit tables that grow with
        files and batches, not rows); {} when the table does not exist yet."""
        if not self.exists(name):
            return {}
        found: dict[str, set[str]] = {}
        for r in self.read(name).select(key, value).distinct().collect():
            found.setdefault(r[0], set()).add(r[1])
        return found

    def rows(self, name: Table | str, rows: list[tuple]) -> DataFrame:
        """A frame of Python rows in the table's registered schema."""
        t = _table(name)
        if t.schema is None:
            raise ValueError(f"{t} has no registered schema for Python rows")
        return self.spark.createDataFrame(rows, t.schema)

    def append(self, df: DataFrame, name: Table | str) -> None:
        faults.writing(df, _table(name)).write.format("delta").mode("append").save(self.location(name))
        faults.written(_table(name))

    def overwrite(self, df: DataFrame, name: Table | str) -> None:
        (faults.writing(df, _table(name)).write.format("delta").mode("overwrite").option("overwriteSchema", "true")
         .save(self.location(name)))
        faults.written(_table(name))

    def replace_where(self, df: DataFrame, name: Table | str, predicate: str) -> None:
        """Atomically replace the rows matching predicate with df (the table created with df on first use):
        re-running a step replaces, never duplicates."""
        writer = faults.writing(df, _table(name)).write.format("delta").mode("overwrite")
        if self.exists(name):
            writer = writer.option("replaceWhere", predicate)
        writer.save(self.location(name))
        faults.written(_table(name))

    def delete(self, name: Table | str, predicate: str) -> None:
        if self.exists(name):
            self.delta_table(name).delete(predicate)

    def merge(self, df: DataFrame, name: Table | str, keys: list[str] | tuple[str, ...] | None = None,
              when_newer: str | None = None) -> None:
        """Upsert df into the table on keys (default: the registered key; created on first use); when_newer
        limits updates, e.g. 's.ts > t.ts'."""
        keys = list(keys or _table(name).key)
        if not self.exists(name):
            self.overwrite(df, name)
            return
        self.add_new_columns(df, name)
        condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
        (
            self.delta_table(name).alias("t").merge(faults.writing(df, _table(name)).alias("s"), condition)
            .whenMatchedUpdateAll(condition=when_newer)
            .whenNotMatchedInsertAll()
            .execute()
        )
        faults.written(_table(name))

    def add_new_columns(self, df: DataFrame, name: Table | str) -> list[str]:
        """Columns `df` has and the table lacks are added to it (NULL in its existing rows): a table written by an
        earlier version of the code takes the columns a newer version adds. Returns the columns added."""
        existing = set(self.read(name).columns)
        new = [f for f in df.schema.fields if f.name not in existing]
        if new:
            spec = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in new)
            self.spark.sql(f"ALTER TABLE delta.`{self.location(name)}` ADD COLUMNS ({spec})")
        return [f.name for f in new]

    def last_commit_metrics(self, name: Table | str) -> dict[str, str]:
        """operationMetrics of the table's latest commit (numOutputRows, numTargetRowsInserted, ...)."""
        row = self.delta_table(name).history(1).select("operationMetrics").first()
        return dict(row["operationMetrics"] or {}) if row else {}

    def row_count(self, name: Table | str) -> int:
        return self.read(name).count() if self.exists(name) else 0
