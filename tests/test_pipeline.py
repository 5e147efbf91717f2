"""The whole pipeline on generated data (slow, end to end, real Spark + Delta + GX + MLflow): every registered
table is there, every gold table reads without Spark (delta-rs) with its contract's columns and has its verdicts
in audit.quality_results, is queryable by name in the catalog the publish step registered it in, and re-running
a gold step changes nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import DEMO_CATALOG as CATALOG
from conftest import test_settings
from examples import readme_python_blocks
from frame_asserts import assert_frame_equal

from cdp.errors import QualityGateFailed
from cdp.pipeline import run_pipeline
from cdp.quality import load_contract
from cdp.tables import CUSTOMER_JOURNEY, CUSTOMER_PROFILE, QUALITY_RESULTS, REGISTERED

GOLD = [t for t in REGISTERED if t.layer == "gold"]


@pytest.fixture()
def demo(pipeline_demo):
    return pipeline_demo


@pytest.mark.slow
def test_every_registered_table_exists(demo):
    _, lake, _ = demo
    assert [t.qualified for t in REGISTERED if not lake.exists(t)] == []


@pytest.mark.slow
def test_every_step_that_ran_reports_its_spark_jobs_stages_and_peak_memory(demo):
    """What `cdp run --json` and the pipeline benchmark report per step (cdp.costs): every step that ran counted,
    the ones that read and write tables launched Spark jobs, each job at least one stage."""
    _, _, ctx = demo
    ran = {r.step: r.cost for r in ctx.records if r.status == "succeeded"}
    assert len(ran) == len(ctx.records) and all(c.jvm_peak_mb and c.python_peak_mb for c in ran.values())
    for step in ("bronze", "silver", "identity", "journeys", "profiles", "churn_model", "customer_value"):
        assert 0 < ran[step].spark_jobs <= ran[step].spark_stages, (step, ran[step])


@pytest.mark.slow
@pytest.mark.parametrize("table", GOLD, ids=[t.qualified for t in GOLD])
def test_gold_tables_read_without_spark(demo, table):
    from deltalake import DeltaTable

    settings, lake, _ = demo
    arrow = DeltaTable(lake.location(table)).to_pyarrow_table()
    assert arrow.column_names == load_contract(settings, table).column_names


@pytest.mark.slow
def test_every_gold_table_has_its_verdicts(demo):
    _, lake, ctx = demo
    checked = {r.table_name for r in lake.read(QUALITY_RESULTS).where(f"run_id = '{ctx.run_id}'").collect()}
    assert [t.qualified for t in GOLD if t.qualified not in checked] == []


@pytest.mark.slow
def test_every_gold_table_is_queryable_by_name_in_the_catalog(demo, spark):
    _, lake, _ = demo
    names = sorted(r.tableName for r in spark.sql(f"SHOW TABLES IN {CATALOG}").collect() if not r.isTemporary)
    assert names == sorted(t.name for t in GOLD)
    assert spark.table(f"{CATALOG}.customer_profile").count() == lake.read(CUSTOMER_PROFILE).count()


@pytest.mark.slow
def test_re_running_the_gold_steps_changes_no_journey_and_leaves_nothing_cached(demo_copy, spark):
    # the steps cache the frames many jobs read (touchpoints, the journey, gated gold frames) and release them
    settings, lake, _ = demo_copy
    before = lake.read(CUSTOMER_JOURNEY).localCheckpoint()
    spark.catalog.clearCache()
    run_pipeline(settings, spark, ["journeys", "profiles", "segments"])
    assert spark._jsparkSession.sharedState().cacheManager().isEmpty()
    assert_frame_equal(lake.read(CUSTOMER_JOURNEY), before)


@pytest.mark.slow
@pytest.mark.process
@pytest.mark.parametrize("block, printed", [(0, "customer_id"), (1, "clickstream")], ids=["delta-rs", "spark-sql"])
def test_the_readmes_table_reading_examples_run_in_the_project_folder(demo, block, printed):
    _, lake, _ = demo
    code = readme_python_blocks("Reading the tables")[block]
    # a process of its own, from the folder that holds lakehouse/, as a user runs it after `make run`
    proc = subprocess.run([sys.executable, "-c", code], cwd=lake.root.rsplit("/", 1)[0], capture_output=True,
                          text=True, timeout=300)
    assert printed in proc.stdout, proc.stderr[-2000:]


@pytest.mark.slow
def test_a_failed_gate_leaves_nothing_cached(demo_copy, spark, tmp_path):
    settings, lake, _ = demo_copy   # the failed run records its verdicts and unattributed counts in the copy
    conf = tmp_path / "conf"
    shutil.copytree(settings.conf_dir, conf)
    path = conf / "tables" / "gold" / "funnels.yaml"
    contract = yaml.safe_load(path.read_text())
    contract["expectations"].append({"name": "never", "type": "row_count_between", "min": 0, "max": 0,
                                     "level": "critical"})
    path.write_text(yaml.safe_dump(contract))
    spark.catalog.clearCache()
    with pytest.raises(QualityGateFailed, match="gold.funnels: never"):
        run_pipeline(test_settings(conf, Path(lake.root).parent), spark, ["journeys"])
    assert spark._jsparkSession.sharedState().cacheManager().isEmpty()
