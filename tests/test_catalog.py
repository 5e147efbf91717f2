"""The publish step's catalog registration: gold tables by name in the session's metastore, over their Delta
locations; registering again changes nothing; a name pointing elsewhere is one clear error."""

import uuid

import pytest
from frame_asserts import assert_frame_equal

from cdp.catalog import register_tables
from cdp.config import load_settings
from cdp.errors import ConfigError
from cdp.tables import CUSTOMERS, INTERACTIONS, SEGMENT_SIZES

SIZES = [("run-1", "champions", 2, None), ("run-1", "at_risk", 1, None)]


@pytest.fixture()
def database(spark):
    name = f"cdp_gold_{uuid.uuid4().hex[:8]}"
    yield name
    spark.sql(f"DROP DATABASE IF EXISTS {name} CASCADE")   # external tables: the Delta data stays


@pytest.fixture()
def published(lake):
    lake.append(lake.spark.createDataFrame([("C1", "Madrid"), ("C2", "Lima")], "customer_id string, city string"),
                CUSTOMERS)
    lake.append(lake.spark.createDataFrame(SIZES, "run_id string, segment string, customers long, recorded_at timestamp"),
                SEGMENT_SIZES)
    lake.append(lake.spark.createDataFrame([("i1",)], "interaction_id string"), INTERACTIONS)
    return lake


def test_gold_tables_are_registered_by_name_over_their_locations(spark, published, database):
    done = register_tables(published, database, ["gold"])
    assert sorted((r.name, r.created) for r in done) == [(f"{database}.customers", True), (f"{database}.segment_sizes", True)]
    assert not spark.catalog.tableExists(f"{database}.interactions")          # silver is not in the layers asked for
    assert_frame_equal(spark.table(f"{database}.customers"), [("C1", "Madrid"), ("C2", "Lima")],
                       "customer_id string, city string")


@pytest.mark.slow  # two registrations and a write
def test_registering_again_changes_nothing_and_later_writes_show_through_the_name(spark, published, database):
    register_tables(published, database, ["gold"])
    again = register_tables(published, database, ["gold"])
    assert [r.created for r in again] == [False, False]
    published.append(spark.createDataFrame([("C3", "Quito")], "customer_id string, city string"), CUSTOMERS)
    assert spark.table(f"{database}.customers").count() == 3


@pytest.mark.slow  # two lakehouses registered
def test_a_name_registered_at_another_location_is_one_clear_error(spark, published, database, tmp_path):
    register_tables(published, database, ["gold"])
    other = type(published)(spark, str(tmp_path / "other_lakehouse"))
    other.append(spark.createDataFrame([("C9", "Oslo")], "customer_id string, city string"), CUSTOMERS)
    with pytest.raises(ConfigError, match=rf"catalog table {database}.customers already points at .*lakehouse/gold/"
                                          r"customers, not at this lakehouse's .*other_lakehouse/gold/customers; drop it"):
        register_tables(other, database, ["gold"])


@pytest.mark.parametrize("value, ok", [("cdp_gold", True), ("main.cdp_gold", True), ("cdp-gold", False),
                                       ("a.b.c", False)])
def test_the_catalog_database_is_a_schema_name(value, ok, conf_dir):
    if ok:
        assert load_settings("local", [f"catalog.database={value}"], conf_dir).catalog.database == value
    else:
        with pytest.raises(ConfigError, match=r"key 'catalog.database' has a bad value .*give a schema name such as "
                                              r"cdp_gold \(or catalog.schema\)"):
            load_settings("local", [f"catalog.database={value}"], conf_dir)
