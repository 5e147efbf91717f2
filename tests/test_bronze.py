"""Bronze landing on real Spark + Delta: every source lands with lineage, exactly once, incrementally,
with defects quarantined (never dropped) and a broken source failing alone."""

import csv
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from cdp.ingest.bronze import INGEST_LOG, LINEAGE, QUARANTINE, land_all
from cdp.ingest.sources import load_sources
from cdp.io import Lakehouse
from cdp.synth import generate

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def truth_counts(truth: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in sorted((truth / "record_owners").glob("*.csv")):
        with f.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                counts[row["source"]] = counts.get(row["source"], 0) + 1
    return counts


@pytest.fixture(scope="module")
def landed(spark, settings, tmp_path_factory):
    """60 generated customers landed once into a module-scoped lakehouse."""
    root = tmp_path_factory.mktemp("bronze")
    generate(60, 11, root / "landing", root / "truth")
    lake = Lakehouse(spark, str(root / "lakehouse"))
    specs = load_sources(settings)
    results = land_all(lake, specs, str(root / "landing"), "run-1", NOW, settings.ingest.max_value_chars)
    return root, lake, specs, {r.source: r for r in results}


def test_every_source_lands_and_reconciles_with_ground_truth(landed):
    root, lake, specs, results = landed
    expected = truth_counts(root / "truth")
    assert set(results) == {s.name for s in specs} == set(expected)
    assert len({s.channel for s in specs}) == 11
    for name, res in results.items():
        assert res.error is None, res.error
        assert res.landed == expected[name], name
        assert res.landed == res.bronze + res.quarantined
        assert res.table_rows == res.bronze
        assert lake.row_count(f"bronze.{name}") == res.bronze


def test_lineage_columns_are_filled(landed):
    _, lake, _, _ = landed
    df = lake.read("bronze.crm_customers")
    assert set(LINEAGE) <= set(df.columns)
    row = df.agg(*[F.count(c).alias(c) for c in LINEAGE], F.count(F.lit(1)).alias("n"),
                 F.countDistinct("_record_hash").alias("hashes")).first()
    assert all(row[c] == row["n"] for c in LINEAGE) and row["hashes"] == row["n"]
    assert df.where(~F.col("_source_file").endswith(".csv")).count() == 0


def test_second_run_on_same_files_adds_nothing(landed, settings):
    root, lake, specs, first = landed
    again = land_all(lake, specs, str(root / "landing"), "run-2", NOW, settings.ingest.max_value_chars)
    assert all(r.new_files == 0 and r.landed == 0 for r in again)
    assert {r.source: r.table_rows for r in again} == {n: r.table_rows for n, r in first.items()}


def test_new_file_with_defects_is_picked_up_and_quarantined(landed, settings):
    root, lake, specs, first = landed
    spec = next(s for s in specs if s.name == "clickstream_events")
    good = {"event_id": "E-new-1", "event_ts": "2025-06-01T10:00:00Z", "event_type": "page_view", "utm_source": "newsletter"}
    lines = [
        json.dumps(good),
        json.dumps({**good, "event_id": "E-new-2"}),
        '{"event_id": "E-broken", "event_ts": ',                       # malformed JSON
        json.dumps({**good, "event_id": None}),                         # required key missing
        json.dumps({**good, "event_id": "E-big", "page_url": "x" * (settings.ingest.max_value_chars + 1)}),
        "",                                                             # blank line: not a record
    ]
    (root / "landing" / "clickstream" / "events_99999.jsonl").write_text("\n".join(lines) + "\n")
    res = next(r for r in land_all(lake, [spec], str(root / "landing"), "run-3", NOW, settings.ingest.max_value_chars))
    assert (res.new_files, res.landed, res.bronze, res.quarantined) == (1, 5, 2, 3)
    assert res.reasons == {"malformed_record": 1, "missing_required:event_id": 1, "oversized_value:page_url": 1}
    assert res.table_rows == first["clickstream_events"].table_rows + 2
    rescued = lake.read("bronze.clickstream_events").where("event_id = 'E-new-1'").first()["_rescued_data"]
    assert json.loads(rescued) == {"utm_source": "newsletter"}
    q = lake.read(QUARANTINE).where("run_id = 'run-3'")
    assert q.where("reason = 'malformed_record' AND raw LIKE '%E-broken%'").count() == 1
    log = lake.read(INGEST_LOG).where("run_id = 'run-3'").first()
    assert (log.rows_landed, log.rows_bronze, log.rows_quarantined) == (5, 2, 3)


def test_rerun_after_crash_replaces_instead_of_duplicating(landed, settings):
    root, lake, specs, _ = landed
    spec = next(s for s in specs if s.name == "loyalty_members")
    before = lake.row_count("bronze.loyalty_members")
    # the crash: bronze was written but the ingest log never recorded the files
    lake.delta_table(INGEST_LOG).delete("source = 'loyalty_members'")
    res = land_all(lake, [spec], str(root / "landing"), "run-4", NOW, settings.ingest.max_value_chars)[0]
    assert res.new_files >= 1 and res.landed == before
    assert lake.row_count("bronze.loyalty_members") == before


def test_missing_required_column_fails_that_source_alone(spark, settings, tmp_path):
    landing = tmp_path / "landing"
    (landing / "crm").mkdir(parents=True)
    (landing / "crm" / "customers_00000.csv").write_text("first_name,last_name,updated_at\nAna,Ruiz,2025-01-01 00:00:00\n")
    (landing / "loyalty").mkdir()
    (landing / "loyalty" / "members_00000.csv").write_text(
        "loyalty_id,first_name,last_name,email,phone,postal_code,tier,points_balance,enrolled_at,updated_at\n"
        "LOY1,Ana,Ruiz,ana@x.es,600000000,28001,gold,10,2024-01-01,2025-01-01 00:00:00\n"
    )
    lake = Lakehouse(spark, str(tmp_path / "lakehouse"))
    specs = [s for s in load_sources(settings) if s.name in ("crm_customers", "loyalty_members")]
    results = {r.source: r for r in land_all(lake, specs, str(landing), "run-x", NOW, settings.ingest.max_value_chars)}
    assert results["crm_customers"].error.startswith("source 'crm_customers': file ")
    assert "lacks required column(s) customer_ref" in results["crm_customers"].error
    assert results["loyalty_members"].error is None and results["loyalty_members"].bronze == 1
    shutil.rmtree(landing)
