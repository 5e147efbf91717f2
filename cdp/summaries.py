"""What a run prints: the bronze landing table, the reconciliation, and the closing summary of what did not go
forward (quarantined rows per source and reason, files that could not land)."""

from __future__ import annotations

from pyspark.sql import functions as F
from rich.table import Table

from cdp.io import Lakehouse
from cdp.tables import FILE_REJECTIONS, QUARANTINE, RECONCILIATION


def _table(title: str, columns: list[str], left: tuple[str, ...]) -> Table:
    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col, justify="left" if col in left else "right", no_wrap=col in left)
    return t


def bronze_summary(results) -> Table:
    """One row per source: files and rows landed this run, and the table's size."""
    t = _table("bronze landing (this run) and table sizes",
               ["source", "channel", "new files", "rejected files", "landed", "bronze", "quarantined", "table rows"],
               ("source", "channel"))
    for r in results:
        t.add_row(r.source, r.channel, str(r.new_files), f"[red]{len(r.rejected)}[/red]" if r.rejected else "0",
                  f"{r.landed:,}", f"{r.bronze:,}", f"{r.quarantined:,}", f"{r.table_rows:,}")
    t.add_row(f"[b]total ({len(results)} sources)[/b]", "", str(sum(r.new_files for r in results)),
              str(sum(len(r.rejected) for r in results)), f"{sum(r.landed for r in results):,}",
              f"{sum(r.bronze for r in results):,}", f"{sum(r.quarantined for r in results):,}",
              f"{sum(r.table_rows for r in results):,}")
    return t


def reconciliation_table(lake: Lakehouse, run_id: str) -> tuple[Table | None, list]:
    """The run's accounting, read back from audit.reconciliation (a row per source, step and table)."""
    if not lake.exists(RECONCILIATION):
        return None, []
    rows = (lake.read(RECONCILIATION).where(F.col("run_id") == run_id)
            .orderBy("source", "stage", "target_table").collect())
    t = _table(f"reconciliation for run {run_id}: in = out + quarantined + duplicates",
               ["source", "step", "target", "in", "out", "quarantined", "duplicates", "unexplained"],
               ("source", "step", "target"))
    for r in rows:
        unexplained = r.rows_in - r.rows_out - r.rows_quarantined - r.rows_duplicate
        t.add_row(r.source, r.stage, r.target_table, f"{r.rows_in:,}", f"{r.rows_out:,}", f"{r.rows_quarantined:,}",
                  f"{r.rows_duplicate:,}", f"[red]{unexplained:,}[/red]" if unexplained else "0")
    return (t if rows else None), rows


def quarantine_lines(lake: Lakehouse, run_id: str) -> list[str]:
    """'pos_sales: 1 quarantined (bad_timestamp:sold_at)', one line per source and reason of this run."""
    if not lake.exists(QUARANTINE):
        return []
    counts = (lake.read(QUARANTINE).where(F.col("run_id") == run_id).groupBy("source", "stage", "reason")
              .agg(F.count(F.lit(1)).alias("n")).orderBy("source", "stage", "reason").collect())
    return [f"{r.source}: {r.n:,} quarantined at {r.stage} ({r.reason})" for r in counts]


def rejected_files(lake: Lakehouse, run_id: str) -> list[tuple[str, str, str]]:
    """(source, file, reason) of the files this run could not land."""
    if not lake.exists(FILE_REJECTIONS):
        return []
    return [(r.source, r.file_path, r.reason) for r in
            lake.read(FILE_REJECTIONS).where(F.col("run_id") == run_id).orderBy("source", "file_path").collect()]
