"""Run bookkeeping: what each `cdp run` and each of its steps did, in audit.pipeline_runs.

Events are appended while the run goes (a Delta append never conflicts, and a crash leaves the events written so
far): a run row when the run starts (running) and ends (succeeded, failed, interrupted), a step row when a step
ends (succeeded, failed, skipped, not_applicable). The latest event of a (run_id, level, step) is its state.

What a step wrote is read from the Delta commits it made, not from the step's own counting: the lakehouse's tables
are listed before and after the step (their `_delta_log` folders, through the Hadoop FileSystem, so object storage
works the same), and the commitInfo of every new version gives its operation metrics.

    versions = table_versions(lake)                      # {"gold.customers": 12, ...}
    ... the step runs ...
    written = writes_between(lake, versions, after := table_versions(lake))
    book.step_ended(StepRecord("identity", "succeeded", t0, t1, written=written))
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from cdp.costs import StepCost
from cdp.io import Lakehouse
from cdp.storage import hadoop_path, read_text
from cdp.tables import LAYERS, PIPELINE_RUNS, Table

_COMMIT = re.compile(r"^(\d{20})\.json$")
_WRITES = ("WRITE", "CREATE TABLE AS SELECT", "REPLACE TABLE AS SELECT", "CREATE OR REPLACE TABLE AS SELECT",
           "STREAMING UPDATE")
FINISHED = ("succeeded", "failed", "interrupted")


@dataclass(frozen=True)
class Written:
    """Rows a step's Delta commits took in and added, changed or removed, and the versions they left."""

    rows_in: int = 0
    rows_out: int = 0
    outputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepRecord:
    step: str
    status: str                      # succeeded | failed | skipped | not_applicable
    started_at: datetime | None
    ended_at: datetime | None
    seconds: float | None = None
    written: Written = field(default_factory=Written)
    error: str | None = None
    cost: StepCost = field(default_factory=StepCost)   # Spark jobs and stages, peak memory (cdp run --json)


def commit_rows(operation: str, metrics: dict[str, str]) -> tuple[int, int]:
    """(rows in, rows out) of one Delta commit from its operation metrics; commits that move no rows (ALTER, SET
    TBLPROPERTIES, OPTIMIZE) count nothing."""
    def n(key: str) -> int:
        return int(metrics.get(key) or 0)

    if operation in _WRITES:
        return n("numOutputRows"), n("numOutputRows")
    if operation == "MERGE":
        return n("numSourceRows"), n("numTargetRowsInserted") + n("numTargetRowsUpdated") + n("numTargetRowsDeleted")
    if operation == "DELETE":
        return 0, n("numDeletedRows")
    if operation == "UPDATE":
        return 0, n("numUpdatedRows")
    return 0, 0


def _children(lake: Lakehouse, uri: str, directories: bool) -> list[str]:
    fs, path = hadoop_path(lake.spark, uri)
    if not fs.exists(path):
        return []
    return [s.getPath().getName() for s in fs.listStatus(path) if s.isDirectory() == directories]


def table_versions(lake: Lakehouse) -> dict[str, int]:
    """{layer.table: latest Delta version} of every table under the lakehouse (its commit files, listed)."""
    found: dict[str, int] = {}
    for layer in LAYERS:
        for name in _children(lake, lake.layer_location(layer), directories=True):
            commits = [int(m.group(1)) for f in _children(lake, _delta_log(lake, layer, name), directories=False)
                       if (m := _COMMIT.match(f))]
            if commits:
                found[f"{layer}.{name}"] = max(commits)
    return found


def _delta_log(lake: Lakehouse, layer: str, name: str) -> str:
    """The transaction-log folder of the table at <layer>/<name>, registered or not (a table dropped from the
    registry still has its folder)."""
    return f"{lake.location(Table(layer, name))}/_delta_log"


def _commit_info(lake: Lakehouse, table: str, version: int) -> dict:
    layer, _, name = table.partition(".")
    uri = f"{_delta_log(lake, layer, name)}/{version:020d}.json"
    try:
        text = read_text(lake.spark, uri, via_hadoop=True)
    except Exception:  # noqa: BLE001 - the commit file is gone (log cleanup, a table dropped meanwhile): uncounted
        return {}
    for line in text.splitlines():
        action = json.loads(line)
        if "commitInfo" in action:
            return action["commitInfo"]
    return {}


def writes_between(lake: Lakehouse, before: dict[str, int], after: dict[str, int]) -> Written:
    """What the commits made between two listings wrote: rows in and out, and each table's new version."""
    rows_in = rows_out = 0
    outputs = []
    for table, version in sorted(after.items()):
        first = before.get(table, -1) + 1
        if version < first or table == PIPELINE_RUNS.qualified:   # the run book's own events are not the step's
            continue
        outputs.append(f"{table}@{version}")
        for v in range(first, version + 1):
            info = _commit_info(lake, table, v)
            i, o = commit_rows(info.get("operation", ""), info.get("operationMetrics") or {})
            rows_in, rows_out = rows_in + i, rows_out + o
    return Written(rows_in, rows_out, tuple(outputs))


class RunBook:
    """Appends one run's events to audit.pipeline_runs."""

    def __init__(self, lake: Lakehouse, run_id: str, env: str):
        self.lake, self.run_id, self.env = lake, run_id, env

    def _append(self, rows: list[tuple]) -> None:
        self.lake.append(self.lake.rows(PIPELINE_RUNS, rows), PIPELINE_RUNS)

    def run_started(self, plan: list[str], started_at: datetime, as_of: date | None) -> None:
        self._append([(self.run_id, "run", None, "running", started_at, None, None, None, None, None, None,
                       ",".join(plan), as_of, self.env, datetime.now(started_at.tzinfo))])

    def step_ended(self, r: StepRecord) -> None:
        w = r.written
        self._append([(self.run_id, "step", r.step, r.status, r.started_at, r.ended_at, r.seconds, w.rows_in,
                       w.rows_out, ", ".join(w.outputs) or None, r.error, None, None, None,
                       datetime.now(r.ended_at.tzinfo if r.ended_at else None))])

    def run_ended(self, status: str, plan: list[str], started_at: datetime, ended_at: datetime, as_of: date | None,
                  error: str | None = None) -> None:
        self._append([(self.run_id, "run", None, status, started_at, ended_at, (ended_at - started_at).total_seconds(),
                       None, None, None, error, ",".join(plan), as_of, self.env, datetime.now(ended_at.tzinfo))])


def latest_events(runs: DataFrame) -> DataFrame:
    """The state of every run and step: its latest event."""
    order = Window.partitionBy("run_id", "level", "step").orderBy(F.col("recorded_at").desc())
    return runs.withColumn("_n", F.row_number().over(order)).where("_n = 1").drop("_n")


def recent_runs(lake: Lakehouse, limit: int) -> list:
    """The latest `limit` runs (newest first): state, plan, and how many steps succeeded, failed and were skipped."""
    state = latest_events(lake.read(PIPELINE_RUNS))
    runs = state.where("level = 'run'")
    steps = (state.where("level = 'step'").groupBy("run_id")
             .agg(*(F.sum((F.col("status") == s).cast("int")).alias(s) for s in ("succeeded", "failed", "skipped")),
                  F.sum("rows_out").alias("rows_out"),
                  F.min(F.when(F.col("status") == "failed", F.col("step"))).alias("failed_step")))
    return (runs.join(steps, "run_id", "left").orderBy(F.col("started_at").desc(), F.col("run_id").desc())
            .limit(limit).collect())


def run_steps(lake: Lakehouse, run_id: str) -> list:
    """One run's steps (their latest events), in the order they ended."""
    return (latest_events(lake.read(PIPELINE_RUNS)).where((F.col("run_id") == run_id) & (F.col("level") == "step"))
            .orderBy("recorded_at").collect())


@dataclass(frozen=True)
class Resumable:
    run_id: str
    plan: list[str]
    done: set[str]
    as_of: date | None
    status: str

    @property
    def remaining(self) -> list[str]:
        return [s for s in self.plan if s not in self.done]


def resumable(lake: Lakehouse, run_id: str | None = None) -> Resumable | None:
    """The latest run (or the named one): its plan, the steps that succeeded in it, its status; None if none."""
    state = latest_events(lake.read(PIPELINE_RUNS))
    runs = state.where("level = 'run'")
    if run_id is not None:
        runs = runs.where(F.col("run_id") == run_id)
    last = runs.orderBy(F.col("started_at").desc(), F.col("recorded_at").desc()).first()
    if last is None:
        return None
    done = {r.step for r in state.where((F.col("run_id") == last.run_id) & (F.col("level") == "step")
                                        & (F.col("status") == "succeeded")).select("step").collect()}
    return Resumable(last.run_id, [s for s in (last.plan or "").split(",") if s], done, last.as_of, last.status)
