"""Bronze landing on real Spark + Delta: every source lands with lineage, exactly once, incrementally, with
defects quarantined (never dropped, their delivered values kept) and a file that cannot land rejected alone."""

import csv
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from frame_asserts import assert_frame_equal
from pyspark.sql import functions as F

from cdp.config.sources import load_sources
from cdp.ingest.bronze import land_all
from cdp.io import Lakehouse
from cdp.tables import FILE_REJECTIONS, INGEST_LOG, LINEAGE, QUARANTINE, bronze

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def truth_counts(truth: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in sorted((truth / "record_owners").glob("*.csv")):
        with f.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                counts[row["source"]] = counts.get(row["source"], 0) + 1
    return counts


def land(lake, settings, landing, run_id, only=None):
    specs = [s for s in load_sources(settings) if only is None or s.name in only]
    return {r.source: r for r in land_all(lake, specs, str(landing), run_id, NOW, settings.ingest.max_value_chars,
                                          parallelism=settings.ingest.parallelism)}


@pytest.fixture(scope="module")
def landed(pipeline_demo):
    """The demo pipeline's bronze step (60 generated customers): its folder, lakehouse and results, read only."""
    _, lake, ctx = pipeline_demo
    return Path(lake.root).parent, lake, {r.source: r for r in ctx.outputs["bronze"]}


@pytest.mark.slow  # the whole generator's output, landed
def test_every_generated_record_lands(landed):
    root, _, results = landed
    assert {name: r.landed for name, r in results.items()} == truth_counts(root / "ground_truth")


@pytest.mark.slow  # the whole generator's output, landed
def test_generated_data_has_no_defects(landed):
    _, _, results = landed
    assert {name: (r.bronze, r.quarantined, r.rejected) for name, r in results.items()} == {
        name: (r.landed, 0, []) for name, r in results.items()}


@pytest.mark.slow  # the whole generator's output, landed
def test_table_rows_are_the_landed_rows(landed):
    _, lake, results = landed
    assert {name: lake.row_count(bronze(name)) for name in results} == {name: r.bronze for name, r in results.items()}


@pytest.mark.slow  # the whole generator's output, landed
def test_lineage_columns_are_filled(landed):
    _, lake, _ = landed
    df = lake.read(bronze("crm_customers"))
    row = df.agg(*[F.count(c).alias(c) for c in LINEAGE], F.count(F.lit(1)).alias("n"),
                 F.countDistinct("_record_hash").alias("hashes")).first()
    assert row.asDict() == {**{c: row["n"] for c in LINEAGE}, "n": row["n"], "hashes": row["n"]}


@pytest.mark.slow  # the whole generator's output, landed
def test_second_run_on_same_files_adds_nothing(landed, demo_copy):
    root, _, first = landed
    settings, lake, _ = demo_copy   # the ingest log of the copy names the demo's landing files
    again = land(lake, settings, root / "landing", "run-2")
    assert {n: (r.new_files, r.landed, r.table_rows) for n, r in again.items()} == {
        n: (0, 0, r.table_rows) for n, r in first.items()}


CLICK = {"event_id": "E-1", "event_ts": "2025-06-01T10:00:00Z", "event_type": "page_view", "utm_source": "newsletter"}


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def clicks(spark, settings, tmp_path_factory):
    """A clickstream file with good rows and one of each defect, landed once; the tests below only read it."""
    root = tmp_path_factory.mktemp("clicks")
    big = "x" * (settings.ingest.max_value_chars + 1)
    lines = [
        json.dumps(CLICK), json.dumps({**CLICK, "event_id": "E-2"}),
        '{"event_id": "E-broken", "event_ts": ',                           # malformed JSON
        json.dumps({**CLICK, "event_id": None}),                            # required key missing
        json.dumps({**CLICK, "event_id": "E-big", "page_url": big}),
        "",                                                                 # blank line: not a record
    ]
    write_lines(root / "landing" / "clickstream" / "events_00001.jsonl", lines)
    lake = Lakehouse(spark, str(root / "lakehouse"))
    res = land(lake, settings, root / "landing", "run-1", ["clickstream_events"])["clickstream_events"]
    return root, lake, res, lines


def test_defects_are_counted(clicks):
    _, _, res, _ = clicks
    assert (res.new_files, res.landed, res.bronze, res.quarantined) == (1, 5, 2, 3)


def test_defects_are_counted_by_reason(clicks):
    _, _, res, _ = clicks
    assert res.reasons == {"malformed_record": 1, "missing_required:event_id": 1, "oversized_value:page_url": 1}


def test_defects_are_quarantined_with_the_delivered_values(clicks):
    _, lake, _, lines = clicks
    assert_frame_equal(lake.read(QUARANTINE).select("reason", "record_key", "raw"), [
        ("malformed_record", None, lines[2]),
        ("missing_required:event_id", None, lines[3]),
        ("oversized_value:page_url", "E-big", lines[4]),
    ], "reason string, record_key string, raw string")


def test_undeclared_columns_are_rescued(clicks):
    _, lake, _, _ = clicks
    rescued = lake.read(bronze("clickstream_events")).where("event_id = 'E-1'").first()["_rescued_data"]
    assert json.loads(rescued) == {"utm_source": "newsletter"}


def copy_of(lake: Lakehouse, dest: Path) -> Lakehouse:
    """A copy of a module's lakehouse for a test that changes it (the module's stays as it was)."""
    shutil.copytree(lake.root, dest)
    return Lakehouse(lake.spark, str(dest))


@pytest.mark.slow  # a second landing run
def test_a_new_file_is_picked_up_alone(clicks, settings, tmp_path):
    root, module_lake, first, _ = clicks
    lake = copy_of(module_lake, tmp_path / "lakehouse")
    new_file = root / "landing" / "clickstream" / "events_00002.jsonl"
    write_lines(new_file, [json.dumps({**CLICK, "event_id": "E-9"})])
    try:
        second = land(lake, settings, root / "landing", "run-2", ["clickstream_events"])["clickstream_events"]
    finally:
        new_file.unlink()
    assert (second.new_files, second.landed, second.table_rows) == (1, 1, first.table_rows + 1)


@pytest.mark.slow  # a crashed run, then a second landing run
def test_rerun_after_crash_replaces_instead_of_duplicating(clicks, settings, tmp_path):
    root, module_lake, first, _ = clicks
    lake = copy_of(module_lake, tmp_path / "lakehouse")
    lake.delete(INGEST_LOG, "source = 'clickstream_events'")    # the crash: bronze written, the log never was
    again = land(lake, settings, root / "landing", "run-2", ["clickstream_events"])["clickstream_events"]
    assert (again.new_files, again.landed, lake.row_count(bronze("clickstream_events"))) == (1, 5, first.table_rows)


LOYALTY_HEADER = "loyalty_id,first_name,last_name,email,phone,postal_code,tier,points_balance,enrolled_at,updated_at"
LOYALTY_ROW = "LOY1,Ana,Ruiz,ana@x.es,600000000,28001,gold,10,2024-01-01,2025-01-01 00:00:00"


@pytest.fixture(scope="module")
def loyalty(spark, settings, tmp_path_factory):
    """loyalty: one good file, one lacking a required column, one empty (0 bytes), one header-only; landed once."""
    root = tmp_path_factory.mktemp("loyalty")
    landing = root / "landing"
    write_lines(landing / "loyalty" / "members_00001.csv", [LOYALTY_HEADER, LOYALTY_ROW])
    write_lines(landing / "loyalty" / "members_00002.csv", ["first_name,last_name", "Ana,Ruiz"])
    (landing / "loyalty" / "members_00003.csv").write_bytes(b"")
    write_lines(landing / "loyalty" / "members_00004.csv", [LOYALTY_HEADER])
    lake = Lakehouse(spark, str(root / "lakehouse"))
    return landing, lake, land(lake, settings, landing, "run-1", ["loyalty_members"])["loyalty_members"]


def test_a_file_lacking_a_required_column_is_rejected_alone(loyalty):
    _, _, res = loyalty
    assert (res.new_files, res.landed, [Path(p).name for p, _ in res.rejected]) == (3, 1, ["members_00002.csv"])


def test_a_rejected_file_is_recorded_with_its_reason(loyalty):
    _, lake, _ = loyalty
    rejected = lake.read(FILE_REJECTIONS).where("run_id = 'run-1'").select("run_id", "source", F.element_at(F.split("file_path", "/"), -1).alias("file"),
                                                 "reason")
    assert_frame_equal(rejected, [("run-1", "loyalty_members", "members_00002.csv",
                                   "lacks required column(s) loyalty_id, updated_at; fix the export or the columns in "
                                   "conf/sources/loyalty_members.yaml")],
                       "run_id string, source string, file string, reason string", check_schema=False)


def test_a_rejected_file_is_looked_at_again_every_run(loyalty, settings, tmp_path):
    landing, module_lake, _ = loyalty
    again = land(copy_of(module_lake, tmp_path / "lakehouse"), settings, landing, "run-2", ["loyalty_members"])[
        "loyalty_members"]
    assert ([Path(p).name for p, _ in again.rejected], again.new_files) == (["members_00002.csv"], 0)


def test_empty_and_header_only_files_land_as_zero_rows(loyalty):
    _, lake, _ = loyalty
    logged = lake.read(INGEST_LOG).select(F.element_at(F.split("file_path", "/"), -1).alias("file"), "rows_landed")
    assert_frame_equal(logged, [("members_00001.csv", 1), ("members_00003.csv", 0), ("members_00004.csv", 0)],
                       "file string, rows_landed long")
