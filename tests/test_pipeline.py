"""The whole pipeline on generated data (slow, end to end, real Spark + Delta + GX + MLflow): every registered
table is there, every gold table reads without Spark (delta-rs) with its contract's columns and has its verdicts
in audit.quality_results, and re-running a gold step changes nothing."""

from __future__ import annotations

import pytest
from conftest import test_settings
from frame_asserts import assert_frame_equal

from cdp.io import Lakehouse
from cdp.pipeline import run_pipeline
from cdp.quality import load_contract
from cdp.synth import generate
from cdp.tables import CUSTOMER_JOURNEY, QUALITY_RESULTS, REGISTERED

GOLD = [t for t in REGISTERED if t.layer == "gold"]


@pytest.fixture(scope="module")
def demo(spark, conf_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    generate(60, 13, root / "landing", root / "ground_truth")
    settings = test_settings(conf_dir, root)
    ctx = run_pipeline(settings, spark)
    return settings, Lakehouse.from_settings(spark, settings), ctx


@pytest.mark.slow
def test_every_registered_table_exists(demo):
    _, lake, _ = demo
    assert [t.qualified for t in REGISTERED if not lake.exists(t)] == []


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
def test_re_running_the_journeys_changes_nothing(demo, spark):
    settings, lake, _ = demo
    before = lake.read(CUSTOMER_JOURNEY).localCheckpoint()
    run_pipeline(settings, spark, ["journeys"])
    assert_frame_equal(lake.read(CUSTOMER_JOURNEY), before)
