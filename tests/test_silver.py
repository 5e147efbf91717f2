"""Silver on real Spark + Delta + Great Expectations: the README's YAML-only source flows to the canonical model,
every row is accounted for, bad values and failed expectations are quarantined with the values as delivered
(a bad value in an optional column goes on as NULL, flagged, instead of taking its record with it), a critical
failure stops the run, a re-export replaces and a re-run changes nothing."""

import json
import shutil
import textwrap
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import yaml
from examples import readme_pos_source
from frame_asserts import assert_frame_equal
from lakes import land_and_build
from pyspark.sql import functions as F

from cdp.config import load_settings
from cdp.config.sources import load_source, load_sources
from cdp.errors import QualityGateFailed
from cdp.io import Lakehouse
from cdp.quality import load_contract
from cdp.silver.core import split_source
from cdp.tables import (
    IDENTITY_RECORDS,
    INTERACTIONS,
    QUALITY_RESULTS,
    QUARANTINE,
    RECONCILIATION,
    SILVER_TABLES,
    bronze,
)

HEADER = "ticket_id;sold_at;store_code;total;currency;customer_phone;customer_name;till"
FIRST = [
    "T1;01/07/2025 10:30:00;MAD01;12,50;€;612-345-678;José Muñoz;3",
    "T2;01/07/2025 11:00:00;MAD01;abc;EUR;+34 612 345 678;Ana Ruiz;3",      # wrong type, optional column
    "T3;31/02/2025 11:00:00;MAD01;5;EUR;;;1",                               # impossible date
    "T4;02/07/2025 09:15:00;BCN02;-5;EUR;0034 699 111 222;Luis Pérez;2",    # fails amount_not_negative
    "T5;02/07/2025 09:20:00;BCN02;7;eur;(699) 111 222;Luis Pérez;2",
    "T5;02/07/2025 09:20:00;BCN02;7;eur;(699) 111 222;Luis Pérez;2",        # exact duplicate
]
SECOND = ["T1;01/07/2025 10:30:00;MAD01;13,00;EUR;612-345-678;José Muñoz;3"]  # a corrected re-export


def make_project(conf_dir: Path, root: Path, extra_expectation: dict | None = None,
                 sources: dict[str, str] | None = None, folder: str = "pos", overrides: tuple[str, ...] = ()):
    """The suite's configuration with `sources` (name -> YAML; default: the README's point-of-sale source) as the
    only sources, and their landing folder."""
    conf = root / "conf"
    shutil.copytree(conf_dir, conf)
    for f in (conf / "sources").glob("*.yaml"):
        f.unlink()
    for name, text in (sources or {"pos_sales": readme_pos_source()}).items():
        (conf / "sources" / f"{name}.yaml").write_text(text, encoding="utf-8")
    if extra_expectation:
        path = conf / "tables" / "silver" / "interactions.yaml"
        contract = yaml.safe_load(path.read_text())
        contract["expectations"].append(extra_expectation)
        path.write_text(yaml.safe_dump(contract, allow_unicode=True))
    settings = load_settings("local", [f"paths.reports={root}/reports", *overrides], conf)
    (root / "landing" / folder).mkdir(parents=True)
    return settings, root / "landing"


def write(landing: Path, n: int, lines: list[str]) -> None:
    (landing / "pos" / f"sales_{n}.csv").write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")


def run(lake, settings, landing, run_id):
    return land_and_build(lake, settings, landing, run_id)


@pytest.fixture(scope="module")
def pos(spark, conf_dir, tmp_path_factory):
    """The README's example landed and built once (run-1); the tests below only read it."""
    root = tmp_path_factory.mktemp("pos")
    settings, landing = make_project(conf_dir, root)
    lake = Lakehouse(spark, str(root / "lakehouse"))
    write(landing, 1, FIRST)
    bronze, silver = run(lake, settings, landing, "run-1")
    return settings, landing, lake, bronze, {r.target_table: r for r in silver}


# (in, out, quarantined, duplicate, flagged): T3's required sold_at does not parse, T4 fails amount_not_negative,
# T5 comes twice; T2's optional total does not parse, so T2 goes on with amount NULL (flagged, counted as out)
@pytest.mark.parametrize("table, counts", [
    ("silver.interactions", (6, 3, 2, 1, 1)),
    ("silver.identity_records", (6, 4, 1, 1, 1)),    # T4 is a fine identity record
], ids=["interactions", "identity_records"])
def test_every_row_is_accounted_for(pos, table, counts):
    r = pos[4][table]
    assert (r.rows_in, r.rows_out, r.rows_quarantined, r.rows_duplicate, r.rows_flagged) == counts


def test_reconciliation_is_recorded_balanced(pos):
    _, _, lake, _, _ = pos
    audit = lake.read(RECONCILIATION).where("run_id = 'run-1'").select("stage", "target_table", "balanced",
                                                                        "rows_flagged")
    assert_frame_equal(audit, [("bronze", "bronze.pos_sales", True, 0),
                               ("silver", "silver.identity_records", True, 1),
                               ("silver", "silver.interactions", True, 1)],
                       "stage string, target_table string, balanced boolean, rows_flagged bigint")


def test_quarantine_keeps_every_value_as_delivered(pos):
    _, _, lake, _, _ = pos
    q = lake.read(QUARANTINE).where("stage = 'silver'").select("record_key", "reason", "raw")
    delivered = {line.split(";")[0]: dict(zip(HEADER.split(";"), line.split(";"), strict=True)) for line in FIRST}
    for row in delivered.values():
        for column in [c for c, v in row.items() if v == ""]:
            del row[column]   # an empty CSV field is no value
    assert_frame_equal(q, [
        ("T2", "bad_value:total", json.dumps(delivered["T2"], ensure_ascii=False, separators=(",", ":"))),
        ("T3", "bad_timestamp:sold_at", json.dumps(delivered["T3"], ensure_ascii=False, separators=(",", ":"))),
        ("T4", "dq:interactions:amount_not_negative",
         json.dumps(delivered["T4"], ensure_ascii=False, separators=(",", ":"))),
    ], "record_key string, reason string, raw string")


def test_interaction_is_typed_and_standardised(pos):
    _, _, lake, _, _ = pos
    t1 = lake.read(INTERACTIONS).where("source_record_key = 'T1'").select(
        "amount", "currency", "event_type", "channel", "event_ts", "attributes")
    assert_frame_equal(t1, [(12.5, "EUR", "store_purchase", "store", datetime(2025, 7, 1, 8, 30),   # 10:30 Madrid
                             {"store_code": "MAD01", "till": "3"})],                             # unmapped, rescued
                       "amount double, currency string, event_type string, channel string, event_ts timestamp, "
                       "attributes map<string,string>")


def test_a_bad_optional_value_goes_on_as_null_with_its_defect(pos):
    _, _, lake, _, _ = pos
    interactions = lake.read(INTERACTIONS).select("source_record_key", "amount", "defects")
    assert_frame_equal(interactions, [("T1", 12.5, {}), ("T2", None, {"total": "abc"}), ("T5", 7.0, {})],
                       "source_record_key string, amount double, defects map<string,string>")
    people = lake.read(IDENTITY_RECORDS).where("source_record_key = 'T2'").select("first_name", "defects")
    assert_frame_equal(people, [("Ana", {"total": "abc"})], "first_name string, defects map<string,string>")


def test_identity_records_are_standardised(pos):
    _, _, lake, _, _ = pos
    people = lake.read(IDENTITY_RECORDS).select("source_record_key", "phone", "first_name", "first_name_match",
                                                "last_name_match")
    assert_frame_equal(people, [("T1", "+34612345678", "José", "jose", "munoz"),
                                ("T2", "+34612345678", "Ana", "ana", "ruiz"),
                                ("T4", "+34699111222", "Luis", "luis", "perez"),
                                ("T5", "+34699111222", "Luis", "luis", "perez")],
                       "source_record_key string, phone string, first_name string, first_name_match string, "
                       "last_name_match string")


def test_verdicts_and_report_are_written(pos):
    settings, _, lake, _, _ = pos
    verdict = lake.read(QUALITY_RESULTS).where("expectation = 'amount_not_negative'").select("run_id", "success")
    assert_frame_equal(verdict, [("run-1", False)], "run_id string, success boolean")
    assert (Path(settings.path(settings.paths.reports)) / "quality" / "index.html").is_file()


def broadcast_outputs(df) -> list[list[str]]:
    """The columns each broadcast of `df`'s physical plan ships to every task (through the driver)."""
    def seq(s):
        return [s.apply(i) for i in range(s.size())]

    found: list[list[str]] = []

    def walk(node):
        if node.nodeName() == "BroadcastExchange":
            found.append(sorted(a.name() for a in seq(node.output())))
        for child in seq(node.children()):
            walk(child)

    walk(df._jdf.queryExecution().executedPlan())
    return found


def test_the_quarantine_never_ships_a_batchs_values_through_the_driver(pos):
    """30,000 customers' clickstream is 242 MB of delivered values that Spark sizes at 10 MB (a string column counts
    20 bytes): joining them whole to the failing rows broadcast them, three times per source, until the run lost its
    task results. Only the failing rows' hashes may travel (the suite's planner broadcasts everything small)."""
    settings, _, lake, _, _ = pos
    spec = load_source(Path(settings.conf_dir) / "sources" / "pos_sales.yaml")
    contracts = {t: load_contract(settings, t.qualified) for t in SILVER_TABLES}
    split = split_source(lake.read(bronze("pos_sales")), spec, settings, contracts, "run-x", datetime.now(timezone.utc))
    shipped = broadcast_outputs(split.quarantine)
    assert shipped and all(columns == ["_record_hash"] for columns in shipped), shipped
    assert sorted(r.reason for r in split.quarantine.collect()) == sorted(r.reason for r in lake.read(QUARANTINE)
                                                                          .where("stage = 'silver'").collect())


@pytest.mark.slow  # two more runs of both steps
def test_a_re_export_wins_and_a_re_run_changes_nothing(pos, tmp_path):
    settings, landing, module_lake, _, _ = pos
    shutil.copytree(module_lake.root, tmp_path / "lakehouse")      # the module's lakehouse stays as it was
    lake = Lakehouse(module_lake.spark, str(tmp_path / "lakehouse"))
    write(landing, 2, SECOND)
    try:
        _, silver2 = run(lake, settings, landing, "run-2")
        assert {r.target_table: (r.rows_in, r.rows_out) for r in silver2}["silver.interactions"] == (1, 1)
        assert lake.read(INTERACTIONS).where("source_record_key = 'T1'").first().amount == 13.0
        before = {t: lake.row_count(t) for t in (INTERACTIONS, IDENTITY_RECORDS)}
        _, silver3 = run(lake, settings, landing, "run-3")
        assert silver3 == []
        assert {t: lake.row_count(t) for t in before} == before
    finally:
        (landing / "pos" / "sales_2.csv").unlink()


@pytest.mark.slow  # a whole run of both steps (the gate itself: test_gold_gate.py)
def test_critical_expectation_stops_before_anything_is_merged(spark, conf_dir, tmp_path):
    settings, landing = make_project(
        conf_dir, tmp_path, {"name": "at_most_one_row", "type": "row_count_between", "max": 1, "level": "critical"})
    lake = Lakehouse(spark, str(tmp_path / "lakehouse"))
    write(landing, 1, FIRST)
    with pytest.raises(QualityGateFailed, match="at_most_one_row") as err:
        run(lake, settings, landing, "run-1")
    assert "\n" not in str(err.value)
    assert [lake.exists(INTERACTIONS), lake.exists(IDENTITY_RECORDS)] == [False, False]
    assert lake.read(QUALITY_RESULTS).where("expectation = 'at_most_one_row' AND NOT success").count() == 1


@pytest.mark.slow
def test_demo_sources_reach_silver(pipeline_demo):
    """Every shipped source maps onto the canonical model without quarantining generated data wholesale."""
    _, lake, ctx = pipeline_demo
    silver = ctx.outputs["silver"]
    assert all(r.balanced for r in silver)
    by_table = {}
    for r in silver:
        by_table.setdefault(r.target_table, []).append(r)
    assert set(by_table) == {"silver.interactions", "silver.identity_records", "silver.orders", "silver.order_lines"}
    total_in = sum(r.rows_in for r in by_table["silver.interactions"])
    total_q = sum(r.rows_quarantined for r in by_table["silver.interactions"])
    assert total_q <= 0.02 * total_in, [(r.source, r.rows_quarantined) for r in by_table["silver.interactions"]]
    channels = {r.channel for r in lake.read(INTERACTIONS).select("channel").distinct().collect()}
    assert len(channels) == 11
    assert lake.read(IDENTITY_RECORDS).where(F.col("phone").isNotNull() & ~F.col("phone").startswith("+")).count() == 0


def test_interactions_point_at_the_identity_record_their_identifiers_make(spark, settings, conf_dir):
    """The pure core on a tiny clickstream batch (an event stream: rows with the same identifiers are one identity
    record): every interaction's identity_record_id is the record_id its identifiers got."""
    from cdp.quality import load_contract
    from cdp.silver.core import split_source
    from cdp.tables import SILVER_TABLES

    spec = next(s for s in load_sources(settings) if s.name == "clickstream_events")
    rows = [("E1", "2025-06-01T10:00:00Z", "ck-1", "dev-1", "page_view"),
            ("E2", "2025-06-01T10:05:00Z", "ck-1", "dev-1", "product_view"),     # same identifiers as E1
            ("E3", "2025-06-02T09:00:00Z", "ck-2", "dev-1", "page_view")]
    batch = spark.createDataFrame(rows, "event_id string, event_ts string, cookie_id string, device_id string, "
                                        "event_type string").select(
        *[F.col(c) if c in ("event_id", "event_ts", "cookie_id", "device_id", "event_type") else F.lit(None).cast("string").alias(c)
          for c in spec.column_names],
        F.lit(None).cast("string").alias("_rescued_data"), F.lit("f").alias("_source_file"),
        F.lit(datetime(2025, 6, 3)).alias("_ingested_at"), F.lit("r").alias("_run_id"), F.col("event_id").alias("_record_hash"))
    split = split_source(batch, spec, settings, {t: load_contract(settings, t) for t in SILVER_TABLES}, "r",
                         datetime(2025, 6, 3))
    links = split.checked[INTERACTIONS].select("source_record_key", "identity_record_id")
    records = split.checked[IDENTITY_RECORDS].select("record_id", "cookie_id")
    joined = {r.source_record_key: r.cookie_id for r in links.join(
        records.withColumnRenamed("record_id", "identity_record_id"), "identity_record_id").collect()}
    assert joined == {"E1": "ck-1", "E2": "ck-1", "E3": "ck-2"}


# ---------------------------------------------------------------- on_bad_value: one file, two sources

MEMBERS = ["member_id,email,birth_date,updated_at",
           "M1,ana@example.com,1956-02-03,2025-07-01T10:00:00Z",
           "M2,luis@example.com,1956-02-30,2025-07-01T11:00:00Z",      # no such day
           "M3,marta.example.com,1980-05-17,2025-07-01T12:00:00Z",     # no @
           "M4,jo@@example,19560230,2025-07-01T13:00:00Z"]             # both
MEMBER_KEYS = {"M1", "M2", "M3", "M4"}


def members_source(name: str, on_bad_value: str | None = None) -> str:
    """A loyalty export of members (an interaction and an identity record per row); on_bad_value for the email
    and birth_date columns (none: their default, null_and_flag)."""
    option = f", on_bad_value: {on_bad_value}" if on_bad_value else ""
    return textwrap.dedent(f"""\
        name: {name}
        channel: loyalty
        format: csv
        path: members/*.csv
        options: {{header: "true"}}
        record_key: member_id
        columns:
          - {{name: member_id, type: string, required: true}}
          - {{name: email, type: string{option}}}
          - {{name: birth_date, type: date{option}}}
          - {{name: updated_at, type: timestamp, required: true}}
        silver:
          interaction:
            event_time: updated_at
            event_type: {{value: member_update}}
          identity:
            observed_at: updated_at
            fields: {{email: email, birth_date: birth_date}}
        """)


@pytest.fixture(scope="module")
def members(spark, conf_dir, tmp_path_factory):
    """The same members file read by two sources, flagging (the default) and quarantining bad values; run once."""
    root = tmp_path_factory.mktemp("members")
    settings, landing = make_project(conf_dir, root, sources={
        "members_flag": members_source("members_flag"),
        "members_strict": members_source("members_strict", "quarantine_row")}, folder="members",
        overrides=("silver.max_quarantine_share=1",))   # three of four members are bad on purpose
    (landing / "members" / "members_1.csv").write_text("\n".join(MEMBERS) + "\n", encoding="utf-8")
    lake = Lakehouse(spark, str(root / "lakehouse"))
    _, silver = run(lake, settings, landing, "run-1")
    return lake, {(r.source, r.target_table): r for r in silver}


def delivered_member(key: str) -> str:
    row = dict(zip(MEMBERS[0].split(","), next(m for m in MEMBERS if m.startswith(key + ",")).split(","), strict=True))
    return json.dumps(row, separators=(",", ":"))


def test_null_and_flag_keeps_the_record_with_the_value_null_and_its_defect(members):
    lake, _ = members
    people = lake.read(IDENTITY_RECORDS).where("source = 'members_flag'").select(
        "source_record_key", "email", "email_raw", "birth_date", "defects")
    assert_frame_equal(people, [
        ("M1", "ana@example.com", "ana@example.com", date(1956, 2, 3), {}),
        ("M2", "luis@example.com", "luis@example.com", None, {"birth_date": "1956-02-30"}),
        ("M3", None, "marta.example.com", date(1980, 5, 17), {"email": "marta.example.com"}),
        ("M4", None, "jo@@example", None, {"email": "jo@@example", "birth_date": "19560230"}),
    ], "source_record_key string, email string, email_raw string, birth_date date, defects map<string,string>")
    touchpoints = lake.read(INTERACTIONS).where("source = 'members_flag'").select("source_record_key", "defects")
    assert_frame_equal(touchpoints, people.select("source_record_key", "defects"))


def test_quarantine_row_stops_the_record_as_before(members):
    lake, _ = members
    people = lake.read(IDENTITY_RECORDS).where("source = 'members_strict'").select("source_record_key", "defects")
    assert_frame_equal(people, [("M1", {})], "source_record_key string, defects map<string,string>")
    assert lake.read(INTERACTIONS).where("source = 'members_strict'").select("source_record_key").collect() == [("M1",)]


def test_every_bad_value_is_in_the_quarantine_with_its_reason(members):
    lake, _ = members
    q = lake.read(QUARANTINE).where("source LIKE 'members%'").select("source", "record_key", "reason", "raw")
    assert_frame_equal(q, [
        ("members_flag", "M2", "bad_value:birth_date", delivered_member("M2")),
        ("members_flag", "M3", "bad_value:email", delivered_member("M3")),
        ("members_flag", "M4", "bad_value:email", delivered_member("M4")),
        ("members_flag", "M4", "bad_value:birth_date", delivered_member("M4")),
        ("members_strict", "M2", "bad_timestamp:birth_date", delivered_member("M2")),
        ("members_strict", "M3", "bad_email:email", delivered_member("M3")),
        ("members_strict", "M4", "bad_email:email", delivered_member("M4")),   # the first bad column in the file
    ], "source string, record_key string, reason string, raw string")


@pytest.mark.parametrize("source", ["members_flag", "members_strict"])
def test_every_landed_record_is_in_silver_or_stopped_with_a_reason(members, source):
    lake, _ = members
    kept = {r[0] for r in lake.read(IDENTITY_RECORDS).where(F.col("source") == source)
            .select("source_record_key").collect()}
    stopped = {r[0] for r in lake.read(QUARANTINE).where((F.col("source") == source) & ~F.col("reason")
               .startswith("bad_value:")).select("record_key").collect()}
    assert (kept | stopped, kept & stopped) == (MEMBER_KEYS, set())


# (in, out, quarantined, duplicate, flagged) per source, the same for both tables the members feed
@pytest.mark.parametrize("source, counts", [("members_flag", (4, 4, 0, 0, 3)), ("members_strict", (4, 1, 3, 0, 0))])
def test_the_reconciliation_balances_either_way(members, source, counts):
    lake, by_source = members
    for table in ("silver.interactions", "silver.identity_records"):
        r = by_source[(source, table)]
        assert (r.rows_in, r.rows_out, r.rows_quarantined, r.rows_duplicate, r.rows_flagged) == counts, table
        assert r.balanced
    audit = lake.read(RECONCILIATION).where((F.col("source") == source) & (F.col("stage") == "silver"))
    assert [r.balanced for r in audit.collect()] == [True, True]


def test_an_event_streams_record_keeps_the_latest_defect_per_column(spark, settings, tmp_path):
    """Rows with the same identifiers are one identity record (distinct: true); their defects are merged, the
    latest observation's value winning for a column flagged more than once."""
    from cdp.quality import load_contract
    from cdp.silver.core import split_source
    from cdp.tables import SILVER_TABLES

    path = tmp_path / "app_logins.yaml"
    path.write_text(textwrap.dedent("""\
        name: app_logins
        channel: clickstream
        format: json
        path: app/*.json
        record_key: event_id
        columns:
          - {name: event_id, type: string, required: true}
          - {name: event_ts, type: timestamp, required: true}
          - {name: device_id, type: string}
          - {name: birth_date, type: date}
        silver:
          identity:
            observed_at: event_ts
            fields: {device_id: device_id, birth_date: birth_date}
            distinct: true
        """), encoding="utf-8")
    spec = load_source(path)
    rows = [("E1", "2025-06-01T10:00:00Z", "dev-1", "1956-02-30"),
            ("E2", "2025-06-01T11:00:00Z", "dev-1", "1956-02-31"),     # later: its value wins
            ("E3", "2025-06-01T09:00:00Z", "dev-1", None),             # first seen, nothing flagged
            ("E4", "2025-06-01T12:00:00Z", "dev-2", None)]
    batch = spark.createDataFrame(rows, "event_id string, event_ts string, device_id string, birth_date string").select(
        "*", F.lit(None).cast("string").alias("_rescued_data"), F.lit("f").alias("_source_file"),
        F.lit(datetime(2025, 6, 3)).alias("_ingested_at"), F.lit("r").alias("_run_id"),
        F.col("event_id").alias("_record_hash"))
    split = split_source(batch, spec, settings, {t: load_contract(settings, t) for t in SILVER_TABLES}, "r",
                         datetime(2025, 6, 3))
    records = split.checked[IDENTITY_RECORDS].select("source_record_key", "device_id", "birth_date", "defects")
    assert_frame_equal(records, [("E3", "dev-1", None, {"birth_date": "1956-02-31"}), ("E4", "dev-2", None, {})],
                       "source_record_key string, device_id string, birth_date date, defects map<string,string>")
    flagged = split.quarantine.select("record_key", "reason")
    assert_frame_equal(flagged, [("E1", "bad_value:birth_date"), ("E2", "bad_value:birth_date")],
                       "record_key string, reason string")
