"""Identity runs for the incremental tests: resolve a lake in full or incrementally, fork it, and compare the gold
identity tables of two lakes (what they resolved, not which run wrote it)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from frame_asserts import assert_frame_equal
from identity_records import NOW
from pyspark.sql import functions as F

from cdp.identity.writer import resolve_identities
from cdp.io import Lakehouse
from cdp.tables import (
    CUSTOMERS,
    IDENTITY_CAPPED_VALUES,
    IDENTITY_CHANGES,
    IDENTITY_CLUSTER_SIZES,
    IDENTITY_JUNK_VALUES,
    IDENTITY_LINKS,
    IDENTITY_MAP,
    IDENTITY_MATCH_SCORES,
    IDENTITY_RECORDS,
    IDENTITY_REVIEW,
)

# what a run writes that says which run wrote it, not what it resolved
BOOKKEEPING = ("run_id", "resolved_at", "updated_at", "changed_at", "reviewed_at")
COMPARED = (IDENTITY_MAP, CUSTOMERS, IDENTITY_LINKS, IDENTITY_MATCH_SCORES, IDENTITY_JUNK_VALUES,
            IDENTITY_CAPPED_VALUES, IDENTITY_REVIEW, IDENTITY_CLUSTER_SIZES)
LATER = NOW + timedelta(days=1)


def with_mode(settings, mode: str):
    return settings.model_copy(update={"identity": settings.identity.model_copy(update={"mode": mode})})


def content(lake: Lakehouse, table):
    df = lake.read(table)
    return df.drop(*[c for c in BOOKKEEPING if c in df.columns])


def run_changes(lake: Lakehouse, run_id: str):
    return lake.read(IDENTITY_CHANGES).where(F.col("run_id") == run_id).drop("changed_at")


def fork(lake: Lakehouse, root: Path) -> Lakehouse:
    """A copy of the lake at `root`: the same state for two runs to start from."""
    shutil.copytree(lake.root, root)
    return Lakehouse(lake.spark, str(root))


def incremental_and_full(spark, settings, config, tmp_path, before, after):
    """Resolve `before` in full, then `after` both incrementally and in full from copies of that state ->
    (incremental lake, full lake, the incremental run's result)."""
    first = Lakehouse(spark, str(tmp_path / "incremental"))
    first.overwrite(before, IDENTITY_RECORDS)
    resolve_identities(first, settings, "run-1", NOW, config)
    return incremental_and_full_from(first, settings, config, tmp_path / "full", after, "run-2", LATER)


def incremental_and_full_from(lake: Lakehouse, settings, config, full_root: Path, after, run_id: str, now):
    """`after` resolved incrementally on `lake` and in full on a copy of it (at `full_root`) ->
    (incremental lake, full lake, the incremental run's result)."""
    full = fork(lake, full_root)
    for each in (lake, full):
        each.overwrite(after, IDENTITY_RECORDS)
    inc = resolve_identities(lake, settings, run_id, now, config)
    rebuilt = resolve_identities(full, with_mode(settings, "full"), run_id, now, config)
    assert (inc.mode, rebuilt.mode) == ("incremental", "full")
    return lake, full, inc


def assert_same_tables(first: Lakehouse, full: Lakehouse, run_id: str = "run-2") -> None:
    for table in COMPARED:
        assert_frame_equal(content(first, table), content(full, table))
    assert_frame_equal(run_changes(first, run_id), run_changes(full, run_id))
