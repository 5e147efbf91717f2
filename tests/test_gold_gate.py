"""The gold gate on real Spark + Great Expectations: a step's output frames are checked against their contracts
(schema, suite, relationships) before anything is written; verdicts land in audit.quality_results."""

from __future__ import annotations

import shutil
from datetime import datetime

import pytest
import yaml
from conftest import test_settings
from frame_asserts import assert_frame_equal

from cdp.errors import QualityGateFailed
from cdp.quality import load_contract, validate
from cdp.quality.gold import gate_tables
from cdp.tables import CUSTOMERS, IDENTITY_CLUSTER_SIZES, IDENTITY_MAP, QUALITY_RESULTS

T = datetime(2025, 1, 1)
MAP_SCHEMA = ("record_id string, source string, source_record_key string, customer_id string, minted_from string, "
              "match_group string, run_id string, resolved_at timestamp")
CUSTOMER_COLUMNS = ("customer_id string, first_name string, last_name string, email string, phone string, "
                    "birth_date date, gender string, street string, postal_code string, city string, country string, "
                    "loyalty_id string, custom_attributes map<string,string>, records long, sources array<string>, "
                    "first_seen timestamp, last_seen timestamp, run_id string, updated_at timestamp")
ANN = "C0123456789abcdef"


def customer(customer_id: str) -> tuple:
    return (customer_id, "Ann", None, None, None, None, None, None, None, None, None, None, {}, 1, ["crm"], T, T, "r", T)


def map_row(record_id: str, customer_id: str) -> tuple:
    return (record_id, "crm", record_id, customer_id, record_id, record_id, "r", T)


@pytest.fixture()
def frames(spark):
    return {CUSTOMERS: spark.createDataFrame([customer(ANN)], CUSTOMER_COLUMNS),
            IDENTITY_MAP: spark.createDataFrame([map_row("crm:1", ANN)], MAP_SCHEMA)}


def test_conforming_frames_pass_and_are_recorded(lake, settings, frames):
    gate_tables(lake, settings, frames, "run-1", "identity")
    failed = lake.read(QUALITY_RESULTS).where("NOT success").select("table_name", "expectation")
    assert_frame_equal(failed, [], "table_name string, expectation string")


def test_every_expectation_of_each_table_is_recorded(lake, settings, frames):
    gate_tables(lake, settings, frames, "run-1", "identity")
    recorded = {(r.table_name, r.expectation) for r in lake.read(QUALITY_RESULTS).collect()}
    expected = {(t.qualified, e.name) for t in frames for e in load_contract(settings, t).expectations}
    assert expected - recorded == set()


def test_an_orphan_customer_id_fails_the_relationship(spark, settings, frames):
    orphan = spark.createDataFrame([map_row("crm:1", ANN), map_row("crm:2", "C_not_a_customer")], MAP_SCHEMA)
    report = validate(orphan, load_contract(settings, IDENTITY_MAP), "r", {"gold.customers": frames[CUSTOMERS]})
    result = next(r for r in report.results if r.type == "relationship")
    assert (result.success, result.unexpected_count, result.details["partial_unexpected_list"]) == (
        False, 1, ["C_not_a_customer"])


def test_a_frame_drifting_from_its_contract_fails_the_schema_check(spark, settings):
    drifted = spark.createDataFrame([(1, 2, "extra")], "size long, clusters int, note string")
    report = validate(drifted, load_contract(settings, IDENTITY_CLUSTER_SIZES), "r")
    assert report.results[0].details == {"missing": [], "undeclared": ["note"],
                                         "type_differs": ["clusters: int (contract: long)"]}


def test_a_critical_failure_stops_the_step_before_anything_is_written(lake, settings, frames, tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(settings.conf_dir, conf)
    path = conf / "tables" / "gold" / "customers.yaml"
    contract = yaml.safe_load(path.read_text())
    contract["expectations"].append({"name": "no_ann", "type": "regex", "column": "first_name",
                                     "pattern": "^(?!Ann$)", "level": "critical"})
    path.write_text(yaml.safe_dump(contract))
    with pytest.raises(QualityGateFailed, match=r"gold.customers: no_ann \(1 unexpected of 1 rows\)") as err:
        gate_tables(lake, test_settings(conf, tmp_path), frames, "run-1", "identity")
    assert "\n" not in str(err.value)
    assert lake.read(QUALITY_RESULTS).where("expectation = 'no_ann' AND NOT success").count() == 1
