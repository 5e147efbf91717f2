"""Data quality: contracts, per-row quarantine reasons, GX validation, gate, history and docs (real Spark + GX)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from cdp.config import load_yaml_model
from cdp.errors import ConfigError, QualityGateFailed
from cdp.quality import (
    TableContract,
    gx_runner,
    load_contract,
    load_contracts,
    quality_history_rows,
    record_quality,
    render_quality_docs,
    row_failure_reason,
    validate,
)
from cdp.tables import QUALITY_RESULTS

CONTRACT_YAML = """
table: silver.people
description: test table
columns:
  - {name: id, type: string}
  - {name: email, type: string}
  - {name: csat, type: int}
  - {name: channel, type: string}
expectations:
  - {name: has_rows, type: row_count_between, min: 1, level: critical}
  - {name: id_not_null, type: not_null, column: id, level: critical}
  - {name: id_unique, type: unique, column: id, level: critical}
  - {name: csat_in_range, type: between, column: csat, min: 1, max: 5, level: row}
  - {name: channel_known, type: in_set, column: channel, values: [crm, email], level: row}
  - {name: email_looks_valid, type: regex, column: email, pattern: "^[^@\\\\s]+@[^@\\\\s]+\\\\.[^@\\\\s]+$", level: row}
"""

ROWS = [
    ("1", "a@x.com", 5, "crm"),
    ("2", "b@x.com", 9, "crm"),        # csat out of range (and checked first)
    ("3", None, None, None),           # nulls pass every row-level check
    ("4", "not-an-email", 3, "email"),  # bad email
    ("5", "e@x.com", 1, "email"),
    ("6", "f@x.com", 2, "crm"),
]
SCHEMA = "id string, email string, csat int, channel string"


@pytest.fixture(scope="module")
def contract(tmp_path_factory) -> TableContract:
    path = tmp_path_factory.mktemp("contracts") / "people.yaml"
    path.write_text(CONTRACT_YAML, encoding="utf-8")
    return load_yaml_model(path, TableContract)


@pytest.fixture(scope="module")
def good_report(spark, contract):
    return validate(spark.createDataFrame(ROWS, SCHEMA), contract, run_id="run-1")


@pytest.fixture(scope="module")
def bad_report(spark, contract):
    rows = [*ROWS, ("1", "dup@x.com", 4, "crm")]  # a duplicate key
    return validate(spark.createDataFrame(rows, SCHEMA), contract, run_id="run-2")


@pytest.mark.parametrize("rows", [ROWS, [*ROWS, ("1", "dup@x.com", 4, "crm")], ROWS[:1]],
                         ids=["row failures", "and a critical one", "all pass"])
def test_samples_on_failure_gives_the_same_verdicts_counts_and_failing_values(spark, contract, rows):
    # the fast path (failing values sought only for the expectations that failed) changes no result
    df = spark.createDataFrame(rows, SCHEMA)
    fast = validate(df, contract, "r")
    assert [(x.name, x.success, x.unexpected_count, x.details) for x in fast.results] == [
        (x.name, x.success, x.unexpected_count, x.details)
        for x in validate(df, contract, "r", samples_on_failure=False).results]


def test_row_failure_reason_names_the_first_failing_expectation(spark, contract):
    df = spark.createDataFrame(ROWS, SCHEMA).withColumn("_dq_reason", row_failure_reason(contract))
    got = {r["id"]: r["_dq_reason"] for r in df.collect()}
    assert got == {"1": None, "2": "csat_in_range", "3": None, "4": "email_looks_valid", "5": None, "6": None}
    both = spark.createDataFrame([("9", "bad", 0, "fax")], SCHEMA).select(row_failure_reason(contract)).first()[0]
    assert both == "csat_in_range"  # declared order decides


def test_validate_counts_row_failures_without_failing_the_gate(good_report):
    r = good_report
    assert (r.table, r.run_id, r.validated_at.tzinfo is not None) == ("silver.people", "run-1", True)
    assert (r.success, r.critical_failures) == (True, [])
    assert [x.name for x in r.results] == [
        "columns_match_contract", "has_rows", "id_not_null", "id_unique", "csat_in_range", "channel_known",
        "email_looks_valid"]
    csat = r.result("csat_in_range")
    assert (csat.success, csat.unexpected_count, csat.element_count, csat.level) == (False, 1, 6, "row")
    assert csat.details["partial_unexpected_list"] == [9]
    assert r.result("email_looks_valid").unexpected_count == 1
    assert sum(x.unexpected_count for x in r.row_failures) == 2  # the two bad rows
    assert (r.result("channel_known").success, r.result("has_rows").element_count) == (True, 6)
    r.raise_for_critical()  # nothing critical failed: no exception


def test_duplicate_key_fails_the_critical_gate_with_one_line(bad_report, spark, contract):
    assert bad_report.success is False
    assert [x.name for x in bad_report.critical_failures] == ["id_unique"]
    assert bad_report.result("id_unique").unexpected_count == 2
    # validating again reuses the GX assets, suites and validation definitions (the whole suite's, the failing
    # expectations'): none is added
    known = set(gx_runner._VALIDATIONS)
    validate(spark.createDataFrame([*ROWS, ("1", "dup@x.com", 4, "crm")], SCHEMA), contract, run_id="run-3")
    assert set(gx_runner._VALIDATIONS) == known
    with pytest.raises(QualityGateFailed) as err:
        bad_report.raise_for_critical("/tmp/reports/quality/index.html")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg == ("quality gate failed on silver.people: id_unique (2 unexpected of 7 rows); "
                   "see /tmp/reports/quality/index.html")


@pytest.mark.parametrize("expectation, fragment", [
    ("{name: x, type: no_such_type, column: id, level: row}", "expectations.0.type"),
    ("{name: x, type: unique, column: id, level: row}", "level must be critical"),
    ("{name: x, type: between, column: id, level: row}", "needs min, max or both"),
    ("{name: x, type: not_null, column: id, level: row, min: 1}", "'min' does not apply"),
    ("{name: x, type: not_null, column: nope, level: row}", "'nope', which is not declared"),
])
def test_bad_contract_is_a_one_line_config_error(settings, tmp_path, expectation, fragment):
    folder = tmp_path / "conf" / "tables" / "silver"
    folder.mkdir(parents=True)
    (folder / "t.yaml").write_text(
        f"table: silver.t\ncolumns: [{{name: id}}]\nexpectations:\n  - {expectation}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_contract(settings.model_copy(update={"conf_dir": str(tmp_path / "conf")}), "silver.t")
    message = str(err.value)
    assert "\n" not in message
    assert fragment in message
    assert "t.yaml" in message


def test_shipped_contracts_load(settings):
    tables = {c.table: c for c in load_contracts(settings, "silver")}
    assert {"silver.interactions", "silver.identity_records", "silver.orders", "silver.order_lines"} <= set(tables)
    for name in ("silver.interactions", "silver.identity_records", "silver.orders", "silver.order_lines"):
        c = load_contract(settings, name)
        assert [bool(x) for x in (c.description, c.columns, c.critical_expectations, c.row_expectations)] == [True] * 4
        assert any(e.type == "unique" for e in c.expectations)
    country = next(e for e in tables["silver.identity_records"].expectations if e.name == "country_iso2")
    assert {"NO", "ES"} <= set(country.values)


def test_shipped_identity_contract_quarantines_bad_phones(spark, settings):
    c = load_contract(settings, "silver.identity_records")
    df = spark.createDataFrame(
        [("a:1", "+34600111222", "ES", datetime(1980, 1, 1).date()),
         ("a:2", "600111222", "NO", datetime(1980, 1, 1).date()),
         ("a:3", "+34600111222", "Spain", None),
         ("a:4", None, None, datetime(1850, 1, 1).date())],
        "record_id string, phone string, country string, birth_date date")
    narrow = c.model_copy(update={"expectations": [e for e in c.row_expectations if e.column in df.columns]})
    reasons = [r[0] for r in df.select(row_failure_reason(narrow)).collect()]
    assert reasons == [None, "phone_e164", "country_iso2", "birth_date_plausible"]


def test_record_quality_appends_history(lake, good_report, bad_report):
    assert record_quality(lake, good_report) == len(good_report.results)
    record_quality(lake, [bad_report])
    df = lake.read(QUALITY_RESULTS)
    assert df.schema.fieldNames() == lake.rows(QUALITY_RESULTS, []).schema.fieldNames()
    failed = {(r["run_id"], r["expectation"]) for r in df.where(~F.col("success")).collect()}
    assert {("run-2", "id_unique"), ("run-1", "csat_in_range")} <= failed
    assert df.count() == len(quality_history_rows(good_report)) + len(quality_history_rows(bad_report))


def test_render_quality_docs_writes_self_contained_html(tmp_path, good_report, bad_report):
    index = render_quality_docs([good_report, bad_report], str(tmp_path / "reports"))
    assert index == str(tmp_path / "reports" / "quality" / "index.html")
    html = Path(index).read_text(encoding="utf-8")
    for name in ("id_unique", "csat_in_range", "email_looks_valid", "silver.people", "run-1", "run-2", "fail"):
        assert name in html
    assert [marker for marker in ("http://", "https://", "<script") if marker in html] == []
    assert (tmp_path / "reports" / "quality" / "run-1.html").is_file()
    later = render_quality_docs([good_report.__class__(**{**good_report.__dict__, "run_id": "run-9"})],
                                str(tmp_path / "reports"))
    assert 'href="run-1.html"' in Path(later).read_text(encoding="utf-8")


def test_shipped_contract_validates_a_conforming_batch(spark, settings):
    c = load_contract(settings, "silver.interactions")
    values = {
        "interaction_id": F.sha2(F.concat(F.lit("crm"), F.col("id").cast("string")), 256), "source": F.lit("crm"),
        "channel": F.lit("crm"), "event_type": F.lit("visit"), "event_ts": F.lit(datetime(2024, 5, 1, 12)),
        "amount": F.lit(12.5), "currency": F.lit("EUR"), "csat": F.lit(4), "nps": F.lit(9), "stars": F.lit(5),
    }
    df = spark.range(3).select(
        *[values.get(col.name, F.lit(None)).cast(col.type).alias(col.name) for col in c.columns])
    report = validate(df, c, run_id="run-shipped")
    assert report.success, report.gate_message()
    assert [(r.name, r.details) for r in report.results if not r.success or r.details.get("error")] == []
    assert df.where(row_failure_reason(c).isNotNull()).count() == 0
