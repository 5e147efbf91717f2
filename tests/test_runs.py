"""The DAG and its run book: plans (--steps, --from), a failed step stopping only its dependants, audit.pipeline_runs
events with the rows each step's Delta commits moved, `cdp run --resume` and `cdp status`, on real Spark and Delta
with small steps of our own standing in for the pipeline's."""

from __future__ import annotations

import argparse
import json

import pytest
from conftest import test_settings
from rich.console import Console

from cdp import pipeline
from cdp.errors import ConfigError
from cdp.pipeline import STEPS, Step, StepFailed, check_dag, dependants, plan, run_pipeline
from cdp.runs import commit_rows, latest_events
from cdp.tables import PIPELINE_RUNS


@pytest.mark.parametrize("operation, metrics, expected", [
    ("WRITE", {"numOutputRows": "7"}, (7, 7)),
    ("CREATE OR REPLACE TABLE AS SELECT", {"numOutputRows": "3"}, (3, 3)),
    ("MERGE", {"numSourceRows": "10", "numTargetRowsInserted": "4", "numTargetRowsUpdated": "2",
               "numTargetRowsDeleted": "1"}, (10, 7)),
    ("DELETE", {"numDeletedRows": "5"}, (0, 5)),
    ("UPDATE", {"numUpdatedRows": "2"}, (0, 2)),
    ("SET TBLPROPERTIES", {}, (0, 0)),
    ("MERGE", {}, (0, 0)),
])
def test_rows_of_a_commit(operation, metrics, expected):
    assert commit_rows(operation, metrics) == expected


def test_the_dag_runs_in_list_order_and_from_takes_every_dependant():
    check_dag(STEPS)
    assert [s.name for s in plan(start_from="churn_model")] == ["churn_model", "churn_scores", "next_best_action",
                                                               "publish", "report"]
    assert "reconcile" not in dependants("identity") and "journeys" in dependants("identity")
    assert [s.name for s in plan(["silver", "bronze"])] == ["bronze", "silver"]


@pytest.mark.parametrize("steps, message", [
    ([Step("a", "", print, ("b",)), Step("b", "", print)], "depends on b, not declared before it"),
    ([Step("a", "", print), Step("a", "", print)], "declared twice"),
    ([Step("a", "", print, run_if="sometimes")], "run_if is all_succeeded or all_done"),
])
def test_a_malformed_dag_is_refused(steps, message):
    with pytest.raises(ValueError, match=message):
        check_dag(steps)


@pytest.mark.parametrize("only, start, message", [
    (["nope"], None, "unknown step"), (None, "nope", "unknown step"), (["bronze"], "silver", "not both")])
def test_plan_mistakes_are_one_line(only, start, message):
    with pytest.raises(ConfigError, match=message):
        plan(only, start)


@pytest.fixture()
def toy_dag(monkeypatch, spark):
    """source -> flaky -> downstream, and source -> independent; flaky fails until `fixed` is set."""
    state = {"fixed": False}

    def source(ctx):
        ctx.lake.spark.range(5).write.format("delta").mode("overwrite").save(f"{ctx.lake.root}/silver/toy")

    def flaky(ctx):
        if not state["fixed"]:
            raise ValueError("the toy failed\nsecond line")
        from delta.tables import DeltaTable

        table = DeltaTable.forPath(ctx.lake.spark, f"{ctx.lake.root}/silver/toy")
        table.alias("t").merge(ctx.lake.spark.range(3, 8).alias("s"), "t.id = s.id") \
            .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()

    def downstream(ctx):
        ctx.lake.spark.range(2).write.format("delta").mode("overwrite").save(f"{ctx.lake.root}/gold/toy")

    steps = [Step("source", "", source), Step("flaky", "", flaky, ("source",)),
             Step("downstream", "", downstream, ("flaky",)), Step("independent", "", lambda ctx: None, ("source",)),
             Step("report", "", lambda ctx: None, ("downstream", "independent"), run_if="all_done")]
    monkeypatch.setattr(pipeline, "STEPS", steps)
    return state


@pytest.mark.slow   # two runs of a toy DAG with their run book: ~10 s, over the fast tier's budget
def test_a_failed_step_stops_its_dependants_only_and_resume_finishes_the_run(toy_dag, spark, conf_dir, tmp_path):
    from cdp.commands.runs import cmd_status
    from cdp.io import Lakehouse

    settings = test_settings(conf_dir, tmp_path)
    quiet = Console(quiet=True)
    with pytest.raises(StepFailed, match="step 'flaky' failed: ValueError: the toy failed") as failed:
        run_pipeline(settings, spark, console=quiet, run_id="toy-1", heartbeat=0)
    assert failed.value.skipped == ["downstream"]
    lake = Lakehouse.from_settings(spark, settings)
    state = {(r.level, r.step): r for r in latest_events(lake.read(PIPELINE_RUNS)).collect()}
    assert {k: r.status for k, r in state.items()} == {
        ("run", None): "failed", ("step", "source"): "succeeded", ("step", "flaky"): "failed",
        ("step", "downstream"): "skipped", ("step", "independent"): "succeeded", ("step", "report"): "succeeded"}
    assert state[("step", "source")].rows_out == 5 and state[("step", "source")].outputs == "silver.toy@0"
    assert state[("step", "downstream")].error == "not run: step 'flaky' failed"
    assert state[("step", "independent")].outputs is None   # the run book's own appends are not the step's
    assert state[("run", None)].error == "step 'flaky' failed: ValueError: the toy failed"

    toy_dag["fixed"] = True
    ctx = run_pipeline(settings, spark, console=quiet, resume=True, heartbeat=0)
    assert (ctx.run_id, ctx.plan, ctx.status) == ("toy-1", ["flaky", "downstream"], "succeeded")   # report ran
    merged = next(r for r in ctx.records if r.step == "flaky").written
    assert (merged.rows_in, merged.rows_out, merged.outputs) == (5, 5, ("silver.toy@1",))   # 2 updated, 3 inserted
    assert sorted(r.id for r in spark.read.format("delta").load(f"{lake.root}/silver/toy").collect()) == list(range(8))
    with pytest.raises(ConfigError, match="nothing to resume: the latest run toy-1 succeeded"):
        run_pipeline(settings, spark, console=quiet, resume=True, heartbeat=0)

    args = argparse.Namespace(runs=5, run_id=None, json=True, quiet=False, log=None, verbose=False)
    runs = json.loads(capsys_text(cmd_status, args, settings))
    assert [(r["run_id"], r["status"], r["succeeded"], r["failed"], r["skipped"]) for r in runs] == [
        ("toy-1", "succeeded", 5, 0, 0)]


def capsys_text(command, args, settings) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert command(args, settings) == 0
    return out.getvalue()


def test_a_long_step_says_in_a_log_what_it_is_doing(spark):
    import io
    import time
    from types import SimpleNamespace

    from cdp.progress import step_progress

    log = Console(file=io.StringIO(), width=200)   # not a terminal: a line every `heartbeat` seconds
    with step_progress(SimpleNamespace(console=log, spark=spark), "identity", heartbeat=0.05):
        time.sleep(0.3)
    lines = log.file.getvalue().splitlines()
    assert len(lines) >= 2 and all(line.startswith("  ... identity: 0m00s") for line in lines), lines
    quiet = Console(file=io.StringIO(), quiet=True)
    with step_progress(SimpleNamespace(console=quiet, spark=spark), "identity", heartbeat=0.05):
        time.sleep(0.1)
    assert quiet.file.getvalue() == ""


@pytest.mark.parametrize("work, jobs, stages", [
    (lambda spark: None, 0, 0),                                                              # no Spark work
    (lambda spark: spark.range(3).collect(), 1, 1),                                          # one job, one stage
    (lambda spark: spark.range(0, 10, 1, 2).selectExpr("id % 2 AS k").groupBy("k").count().collect(), 1, 2),  # a shuffle
])
def test_a_steps_cost_counts_its_spark_jobs_and_stages_and_its_peak_memory(spark, work, jobs, stages):
    """cdp.costs: what `cdp run --json` reports per step (the pipeline benchmark's jobs, stages and peaks)."""
    from cdp.costs import step_cost

    with step_cost(spark) as measured:
        work(spark)
    cost = measured.cost
    assert (cost.spark_jobs, cost.spark_stages) == (jobs, stages)
    assert cost.jvm_peak_mb > 100 and cost.python_peak_mb > 10   # the JVM and this process, both on this host
