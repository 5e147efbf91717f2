"""gold.customer_profile_history: the profile as slowly changing dimension type 2, so a question about the past
('how many customers were at risk last month') has an answer.

Each version of a customer's profile is valid from `valid_from` (the as_of of the run that saw it first) until
`valid_to` (the as_of of the run that saw it change or disappear; null while current). A new version opens only
when a tracked column changes (compared null-safely); the other columns keep the values of the snapshot that
opened the version, so a daily run does not rewrite every customer whose recency moved by a day. A customer
missing from a new snapshot (merged into another by identity resolution, or erased) has its current version
closed and none opened. All changes of a run land in ONE Delta MERGE (Delta's staged-updates SCD2 pattern).

Re-running an as_of is safe: with the same snapshot nothing changes (no commit at all); with a corrected
snapshot, the versions that as_of opened are corrected in place (`corrected`) or removed (`withdrawn`), so
no zero-length or duplicate version appears. An as_of earlier than the history's latest change is refused
(when it would write anything).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp import faults
from cdp.errors import CdpError
from cdp.frames import cut_lineage
from cdp.io import Lakehouse
from cdp.tables import CUSTOMER_PROFILE_HISTORY

# The columns SCD2 adds after the profile's own (the history's contract lists these).
SCD2_COLUMNS = ("valid_from", "valid_to", "is_current", "run_id")
CHANGES = ("new", "changed", "corrected", "unchanged", "gone", "withdrawn")
# What the MERGE does for each kind of change: insert a version, close the current one, correct it in place,
# delete it. A changed customer needs two staged rows: the insert (null merge key, so it never matches) and the
# close (matches the current version on customer_id).
_ACTIONS = {"new": ["insert"], "changed": ["insert", "close"], "corrected": ["correct"], "gone": ["close"],
            "withdrawn": ["delete"]}


def profile_columns(snapshot: DataFrame) -> list[str]:
    """The snapshot's columns kept in the history: customer_id first, SCD2 names left out (a profile's own
    run_id is the run that built it; the history's is the run that wrote the version, the same run in a pipeline)."""
    if "customer_id" not in snapshot.columns:
        raise ValueError("the profile snapshot has no customer_id column")
    return ["customer_id", *(c for c in snapshot.columns if c != "customer_id" and c not in SCD2_COLUMNS)]


def _check_tracked(columns: Sequence[str], tracked_columns: Sequence[str]) -> None:
    if not tracked_columns:
        raise ValueError("give at least one tracked column: a change in one of them opens a new version")
    unknown = [c for c in tracked_columns if c not in columns or c == "customer_id"]
    if unknown:
        raise ValueError(f"tracked column(s) {', '.join(unknown)} are not profile columns (other than customer_id)")


def profile_changes(current_history: DataFrame, snapshot: DataFrame, tracked_columns: Sequence[str],
                    as_of: datetime) -> DataFrame:
    """Each customer of the snapshot or of the history's current versions, with its snapshot columns,
    `change` (one of CHANGES) and `current_valid_from` (when its current version opened; null if none).

    new: no current version; changed: a tracked column differs from the current version, opened before as_of;
    corrected: same, but the current version was opened by this as_of (a re-run); unchanged: no tracked column
    differs; gone: not in the snapshot any more; withdrawn: gone, and its version was opened by this as_of."""
    columns = profile_columns(snapshot)
    _check_tracked(columns, tracked_columns)
    # A tracked column the history does not have yet (added to the profile since) compares as null: customers
    # with a value for it open a version, which is when that value became known to the history.
    previous = {c: F.col(c) if c in current_history.columns else F.lit(None).cast(snapshot.schema[c].dataType)
                for c in tracked_columns}
    current = current_history.where(F.col("is_current")).select(
        "customer_id", F.col("valid_from").alias("current_valid_from"),
        *(value.alias(f"_previous_{c}") for c, value in previous.items()))
    same = reduce(lambda a, b: a & b, [F.col(c).eqNullSafe(F.col(f"_previous_{c}")) for c in tracked_columns])
    opened_now = F.col("current_valid_from") == F.lit(as_of)
    change = (F.when(F.col("_in_snapshot").isNull() & opened_now, "withdrawn")
              .when(F.col("_in_snapshot").isNull(), "gone")
              .when(F.col("current_valid_from").isNull(), "new")
              .when(same, "unchanged")
              .when(opened_now, "corrected")
              .otherwise("changed"))
    return (snapshot.select(*columns, F.lit(True).alias("_in_snapshot"))
            .join(current, "customer_id", "full")
            .select(*columns, change.alias("change"), "current_valid_from"))


def staged_history_updates(changes: DataFrame, as_of: datetime, run_id: str) -> DataFrame:
    """The MERGE source: one row per action (insert, close, correct, delete) with `_merge_key` (null for an
    insert), `_action` and the history's columns (valid_from = as_of on every row: the close sets valid_to to it)."""
    columns = [c for c in changes.columns if c not in ("change", "current_valid_from")]
    actions = F.create_map(*(x for kind, acts in _ACTIONS.items() for x in (F.lit(kind), F.array(*map(F.lit, acts)))))
    return (changes.select("*", F.explode(actions[F.col("change")]).alias("_action"))   # unchanged: no row
            .select(F.when(F.col("_action") != "insert", F.col("customer_id")).alias("_merge_key"), "_action",
                    *columns, F.lit(as_of).alias("valid_from"), F.lit(None).cast("timestamp").alias("valid_to"),
                    F.lit(True).alias("is_current"), F.lit(run_id).alias("run_id")))


def profile_as_of(history: DataFrame, when: datetime) -> DataFrame:
    """The profile as it was at `when`: the version of each customer with valid_from <= when < valid_to (or open)."""
    moment = F.lit(when)
    return history.where((F.col("valid_from") <= moment)
                         & (F.col("valid_to").isNull() | (moment < F.col("valid_to"))))


def history_after_merge(history: DataFrame, staged: DataFrame) -> DataFrame:
    """The history as the MERGE of `staged` (staged_history_updates) leaves it: current versions closed, corrected
    or deleted, new versions inserted; a column new to the history is null in the versions it had. What the
    profile step's quality gate checks before the MERGE writes anything."""
    versions = staged.drop("_merge_key", "_action")
    changes = staged.where(F.col("_action") != "insert").select(
        F.col("_merge_key").alias("_key"), F.col("_action").alias("_act"),
        *(F.col(c).alias(f"_s_{c}") for c in versions.columns))
    act = F.col("_act")
    matched = history.join(changes, (F.col("customer_id") == F.col("_key")) & F.col("is_current"), "left")

    def after(c: str):
        before = F.col(c) if c in history.columns else F.lit(None).cast(versions.schema[c].dataType)
        if c == "valid_to":
            return F.when(act == "close", F.col("_s_valid_from")).otherwise(before).alias(c)
        if c == "is_current":
            return F.when(act == "close", F.lit(False)).otherwise(before).alias(c)
        if c in ("customer_id", "valid_from") or c not in versions.columns:
            return before.alias(c)
        return F.when(act == "correct", F.col(f"_s_{c}")).otherwise(before).alias(c)

    columns = [*history.columns, *(c for c in versions.columns if c not in history.columns)]
    kept = matched.where(act.isNull() | (act != "delete")).select(*map(after, columns))
    return kept.unionByName(staged.where(F.col("_action") == "insert").select(*versions.columns),
                            allowMissingColumns=True)


def merge_profile_history(lake: Lakehouse, snapshot: DataFrame, tracked_columns: Sequence[str], as_of: datetime,
                          run_id: str, gate: Callable[[DataFrame], object] | None = None) -> dict[str, int]:
    """SCD2 of the profile snapshot into gold.customer_profile_history in one Delta MERGE; returns the rows
    staged per action ({} when nothing changed, and then nothing is written). gate: called with the history as
    the MERGE would leave it (history_after_merge) before anything is written; it raises to stop the write."""
    table = CUSTOMER_PROFILE_HISTORY
    exists = lake.exists(table)
    if not exists:
        history = snapshot.where(F.lit(False)).select(
            *profile_columns(snapshot), F.lit(None).cast("timestamp").alias("valid_from"),
            F.lit(None).cast("timestamp").alias("valid_to"), F.lit(True).alias("is_current"))
    else:
        history = lake.read(table)
    changes = profile_changes(history, snapshot, tracked_columns, as_of)
    # Materialised once: the counts and the MERGE see the same rows, and the MERGE's source no longer reads the
    # table it writes.
    staged = cut_lineage(staged_history_updates(changes, as_of, run_id))
    counts = {r["_action"]: r["rows"] for r in staged.groupBy("_action").agg(F.count(F.lit(1)).alias("rows")).collect()}
    # Checked only when there is something to write: a history with a later change would get versions that end
    # before they start.
    later = (F.col("valid_from") > F.lit(as_of)) | (F.col("valid_to") > F.lit(as_of))
    if counts and exists and not history.where(later).isEmpty():
        raise CdpError(f"{table} already has versions after as_of {as_of:%Y-%m-%d %H:%M:%S}; "
                       "runs must go forward in time (re-run the latest as_of, or rebuild the history)")
    if gate is not None and (counts or exists):
        gate(history_after_merge(history, staged))
    if not counts:
        return {}
    versions = staged.drop("_merge_key", "_action")
    if not exists:
        lake.overwrite(versions, table)   # the first run only inserts
        return counts
    lake.add_new_columns(versions, table)   # a profile column added since the last run
    values = {c: f"s.`{c}`" for c in versions.columns}
    corrected = {c: v for c, v in values.items() if c not in ("customer_id", "valid_from", "valid_to", "is_current")}
    (lake.delta_table(table).alias("t")
     .merge(faults.writing(staged, table).alias("s"), "t.customer_id = s._merge_key AND t.is_current")
     .whenMatchedUpdate(condition="s._action = 'close'", set={"valid_to": "s.valid_from", "is_current": "false"})
     .whenMatchedUpdate(condition="s._action = 'correct'", set=corrected)
     .whenMatchedDelete(condition="s._action = 'delete'")
     .whenNotMatchedInsert(condition="s._action = 'insert'", values=values)
     .execute())
    faults.written(table)
    return counts
