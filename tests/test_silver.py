"""Silver on real Spark + Delta + Great Expectations: a YAML-only source flows to the canonical model,
every row is accounted for, bad values and failed expectations are quarantined, a critical failure stops."""

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from pyspark.sql import functions as F

from cdp.audit import RECONCILIATION
from cdp.config import DEFAULT_CONF_DIR, load_settings
from cdp.errors import QualityGateFailed
from cdp.ingest.bronze import QUARANTINE, land_all
from cdp.ingest.sources import load_sources
from cdp.io import Lakehouse
from cdp.silver.step import build_silver

POS_SOURCE = """
name: pos_sales
channel: store
description: Point-of-sale export from the store tills, one row per ticket.
format: csv
path: pos/sales_*.csv
options: {header: "true", sep: ";"}
record_key: ticket_id
timestamp_format: "dd/MM/yyyy HH:mm:ss"
timezone: Europe/Madrid
columns:
  - {name: ticket_id, type: string, required: true}
  - {name: sold_at, type: timestamp, required: true}
  - {name: store_code, type: string}
  - {name: total, type: double}
  - {name: currency, type: string}
  - {name: customer_phone, type: string}
  - {name: customer_name, type: string}
silver:
  interaction:
    event_time: sold_at
    event_type: {value: store_purchase}
    fields: {amount: total, currency: currency}
  identity:
    observed_at: sold_at
    fields: {phone: customer_phone, full_name: customer_name}
"""

HEADER = "ticket_id;sold_at;store_code;total;currency;customer_phone;customer_name;till"
FIRST = [
    "T1;01/07/2025 10:30:00;MAD01;12,50;€;612-345-678;José Muñoz;3",
    "T2;01/07/2025 11:00:00;MAD01;abc;EUR;+34 612 345 678;Ana Ruiz;3",      # wrong type
    "T3;31/02/2025 11:00:00;MAD01;5;EUR;;;1",                               # impossible date
    "T4;02/07/2025 09:15:00;BCN02;-5;EUR;0034 699 111 222;Luis Pérez;2",    # fails amount_not_negative
    "T5;02/07/2025 09:20:00;BCN02;7;eur;(699) 111 222;Luis Pérez;2",
    "T5;02/07/2025 09:20:00;BCN02;7;eur;(699) 111 222;Luis Pérez;2",        # exact duplicate
]
SECOND = ["T1;01/07/2025 10:30:00;MAD01;13,00;EUR;612-345-678;José Muñoz;3"]  # a corrected re-export


def make_project(tmp_path: Path, extra_expectation: dict | None = None):
    conf = tmp_path / "conf"
    shutil.copytree(DEFAULT_CONF_DIR, conf)
    for f in (conf / "sources").glob("*.yaml"):
        f.unlink()
    (conf / "sources" / "pos_sales.yaml").write_text(POS_SOURCE)
    if extra_expectation:
        path = conf / "tables" / "silver" / "interactions.yaml"
        contract = yaml.safe_load(path.read_text())
        contract["expectations"].append(extra_expectation)
        path.write_text(yaml.safe_dump(contract, allow_unicode=True))
    settings = load_settings("local", [f"paths.reports={tmp_path}/reports"], conf)
    (tmp_path / "landing" / "pos").mkdir(parents=True)
    return settings, tmp_path / "landing"


def write(landing: Path, n: int, lines: list[str]) -> None:
    (landing / "pos" / f"sales_{n}.csv").write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")


def run(lake, settings, landing, run_id):
    now = datetime.now(timezone.utc)
    specs = load_sources(settings)
    bronze = land_all(lake, specs, str(landing), run_id, now, settings.ingest.max_value_chars)
    return bronze, build_silver(lake, specs, settings, run_id, now)


def test_yaml_only_source_flows_to_silver_and_reconciles(spark, tmp_path):
    settings, landing = make_project(tmp_path)
    lake = Lakehouse(spark, str(tmp_path / "lakehouse"))
    write(landing, 1, FIRST)
    bronze, silver = run(lake, settings, landing, "run-1")
    assert (bronze[0].landed, bronze[0].bronze, bronze[0].quarantined) == (6, 6, 0)

    recon = {r.target_table: r for r in silver}
    inter = recon["silver.interactions"]
    assert (inter.rows_in, inter.rows_out, inter.rows_quarantined, inter.rows_duplicate) == (6, 2, 3, 1)
    ident = recon["silver.identity_records"]
    assert (ident.rows_in, ident.rows_out, ident.rows_quarantined, ident.rows_duplicate) == (6, 3, 2, 1)
    assert all(r.balanced for r in silver)

    reasons = {(r.record_key, r.reason) for r in lake.read(QUARANTINE).where("stage = 'silver'").collect()}
    assert reasons == {("T2", "bad_type:total"), ("T3", "bad_timestamp:sold_at"),
                       ("T4", "dq:interactions:amount_not_negative")}

    t1 = lake.read("silver.interactions").where("source_record_key = 'T1'").first()
    assert (t1.amount, t1.currency, t1.event_type, t1.channel) == (12.5, "EUR", "store_purchase", "store")
    assert t1.event_ts == datetime(2025, 7, 1, 8, 30)          # 10:30 Madrid summer time = 08:30 UTC
    assert t1.attributes == {"store_code": "MAD01", "till": "3"}  # unmapped and rescued columns kept
    people = {r.source_record_key: r for r in lake.read("silver.identity_records").collect()}
    assert people["T1"].phone == "+34612345678" and people["T1"].first_name_match == "jose"
    assert people["T1"].last_name_match == "munoz" and people["T1"].first_name == "José"
    assert people["T4"].phone == people["T5"].phone == "+34699111222"

    audit = lake.read(RECONCILIATION).where("run_id = 'run-1'")
    assert audit.where("NOT balanced").count() == 0 and audit.count() == 3  # bronze + two silver tables
    assert lake.read("audit.quality_results").where("run_id = 'run-1' AND expectation = 'amount_not_negative'").count() == 1
    assert (Path(settings.path(settings.paths.reports)) / "quality" / "index.html").is_file()

    # a corrected re-export of T1 wins; running again on nothing new changes nothing
    write(landing, 2, SECOND)
    _, silver2 = run(lake, settings, landing, "run-2")
    assert {r.target_table: (r.rows_in, r.rows_out) for r in silver2}["silver.interactions"] == (1, 1)
    assert lake.read("silver.interactions").where("source_record_key = 'T1'").first().amount == 13.0
    before = {t: lake.row_count(t) for t in ("silver.interactions", "silver.identity_records")}
    _, silver3 = run(lake, settings, landing, "run-3")
    assert silver3 == [] and before == {t: lake.row_count(t) for t in before}
    assert before == {"silver.interactions": 2, "silver.identity_records": 3}


def test_critical_expectation_stops_before_anything_is_merged(spark, tmp_path):
    settings, landing = make_project(
        tmp_path, {"name": "at_most_one_row", "type": "row_count_between", "max": 1, "level": "critical"})
    lake = Lakehouse(spark, str(tmp_path / "lakehouse"))
    write(landing, 1, FIRST)
    with pytest.raises(QualityGateFailed) as err:
        run(lake, settings, landing, "run-1")
    assert "at_most_one_row" in str(err.value) and "\n" not in str(err.value)
    assert not lake.exists("silver.interactions") and not lake.exists("silver.identity_records")
    assert lake.read("audit.quality_results").where("expectation = 'at_most_one_row' AND NOT success").count() == 1


def test_demo_sources_reach_silver(spark, settings, tmp_path):
    """Every shipped source maps onto the canonical model without quarantining generated data wholesale."""
    from cdp.synth import generate

    generate(40, 3, tmp_path / "landing", tmp_path / "truth")
    lake = Lakehouse(spark, str(tmp_path / "lakehouse"))
    _, silver = run(lake, settings, tmp_path / "landing", "run-demo")
    assert all(r.balanced for r in silver)
    by_table = {}
    for r in silver:
        by_table.setdefault(r.target_table, []).append(r)
    assert set(by_table) == {"silver.interactions", "silver.identity_records", "silver.orders", "silver.order_lines"}
    total_in = sum(r.rows_in for r in by_table["silver.interactions"])
    total_q = sum(r.rows_quarantined for r in by_table["silver.interactions"])
    assert total_q <= 0.02 * total_in, [(r.source, r.rows_quarantined) for r in by_table["silver.interactions"]]
    channels = {r.channel for r in lake.read("silver.interactions").select("channel").distinct().collect()}
    assert len(channels) == 11
    assert lake.read("silver.identity_records").where(F.col("phone").isNotNull() & ~F.col("phone").startswith("+")).count() == 0
