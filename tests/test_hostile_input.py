"""Hostile input (issue #17): every kind of hostile record of cdp.synth.hostile, in every format, through bronze and
silver on real Spark + Delta. Nothing crashes; each record ends where its case says (silver verbatim, silver with
the value NULL and flagged, quarantined with its reason, its file rejected or landed empty); the good rows flow;
the reconciliation balances. One record of each kind per format (slow tier: its bronze + silver run costs ~25 s), and
>= 10,000 over every source (slow); the pure checks (amounts, text, headers) are fast."""

from __future__ import annotations

import time

import pytest
from hostile_checks import destinations, main_rows, unexplained_quarantine
from lakes import land_and_build
from pyspark.sql import functions as F

from cdp.config import DEFAULT_CONF_DIR
from cdp.config.sources import load_source, load_sources
from cdp.ingest.landing import repeated_columns
from cdp.io import Lakehouse
from cdp.silver.standardize import to_amount
from cdp.silver.typed import unclean_text
from cdp.synth import generate
from cdp.synth.hostile import KINDS, TEXT_VALUES, applies, text_column
from cdp.synth.hostile_files import write_hostile
from cdp.tables import RECONCILIATION, bronze

FAST_SOURCES = ("callcenter_contacts", "ecommerce_orders", "store_visits")   # csv, json lines, parquet
SPECS = {n: load_source(DEFAULT_CONF_DIR / "sources" / f"{n}.yaml") for n in FAST_SOURCES}
CASES = [(k, s) for k in KINDS for s in FAST_SOURCES if applies(KINDS[k], SPECS[s])]


@pytest.fixture(scope="module")
def fast(spark, settings, tmp_path_factory):
    """One record of each kind (one file of each file kind) per format, landed and built once."""
    root = tmp_path_factory.mktemp("hostile")
    specs = [s for s in load_sources(settings) if s.name in FAST_SOURCES]
    cases = write_hostile(specs, root / "landing", per_kind=1, seed=3)
    lake = Lakehouse(spark, str(root / "lakehouse"))
    land_and_build(lake, settings, root / "landing", "run-1", specs=specs, lenient=True)   # hostile on purpose
    found = destinations(lake, specs, cases).groupBy("kind", "source").agg(
        F.bool_and("ok").alias("ok"), F.sort_array(F.collect_list("dest")).alias("dests")).collect()
    return lake, specs, cases, {(r["kind"], r["source"]): (r["ok"], r["dests"]) for r in found}


@pytest.mark.slow   # one bronze + silver run of every kind in three formats (~25 s): the slow tier
@pytest.mark.parametrize("kind, source", CASES, ids=[f"{k}-{s}" for k, s in CASES])
def test_each_hostile_record_ends_where_its_case_says(fast, kind, source):
    _, _, cases, found = fast
    wanted = sorted({(c.outcome, c.stage, c.reason) for c in cases if (c.kind, c.source) == (kind, source)})
    ok, dests = found[(kind, source)]
    assert ok, f"{kind} in {source}: expected {wanted}, went to {dests}"


@pytest.mark.slow   # one bronze + silver run of every kind in three formats (~25 s): the slow tier
def test_nothing_else_is_quarantined(fast):
    lake, _, cases, _ = fast
    assert unexplained_quarantine(lake, cases).count() == 0


@pytest.mark.slow   # one bronze + silver run of every kind in three formats (~25 s): the slow tier
def test_reconciliation_balances_for_every_source_and_stage(fast):
    lake, specs, _, _ = fast
    audit = lake.read(RECONCILIATION).groupBy("source", "stage").agg(F.bool_and("balanced").alias("balanced"))
    assert {(r["source"], r["stage"]): r["balanced"] for r in audit.collect()} == {
        (s.name, stage): True for s in specs for stage in ("bronze", "silver")}


@pytest.mark.slow   # one bronze + silver run of every kind in three formats (~25 s): the slow tier
@pytest.mark.parametrize("kind", ["emoji", "rtl_text", "sql_text", "html_text"])
def test_hostile_but_valid_text_is_stored_verbatim(fast, kind):
    lake, specs, cases, _ = fast
    for spec in specs:
        keys = [c.record_key for c in cases if (c.kind, c.source) == (kind, spec.name)]
        col = text_column(spec)
        stored = lake.read(bronze(spec.name)).where(F.col(spec.record_key).isin(keys)).select(col).distinct().collect()
        assert [r[0] for r in stored] == [TEXT_VALUES[kind]], spec.name


@pytest.mark.parametrize("text, amount", [
    ("1.0E7", 1.0e7), ("1e+30", 1e30), ("-2.5e3", -2500.0), ("12,50", 12.5), ("NaN", None), ("Infinity", None),
    ("9" * 400, None), ("1e999", None), ("{\"value\": 1}", None),
])
def test_amounts_read_scientific_notation_and_refuse_what_is_not_a_finite_number(spark, text, amount):
    assert spark.range(1).select(to_amount(F.lit(text)).alias("a")).first()["a"] == amount


@pytest.mark.parametrize("text, unclean", [
    ("Zoë 👩🏽‍💻", False), ("tab\tand\nnewline", False), ("nul\x00", True), ("bell\x07", True),
    ("replaced \ufffd byte", True), ("مرحبا \u202eשלום", False),
])
def test_unclean_text_is_told_from_unusual_text(spark, text, unclean):
    assert spark.range(1).select(unclean_text(F.lit(text)).alias("u")).first()["u"] is unclean


def test_a_repeated_header_column_is_a_one_line_rejection():
    spec = SPECS["callcenter_contacts"]
    reason = repeated_columns(spec, ["contact_id", "Notes", "notes", "phone"])
    assert reason.startswith("repeats column(s) Notes, notes in its header") and "\n" not in reason
    assert repeated_columns(spec, ["contact_id", "notes"]) is None


# ---------------------------------------------------------------- the fuzz run

HOSTILE_RECORDS = 10_000


def count_table(rows: list, kinds: list[str], dests: list[str]) -> str:
    counts = {(r["kind"], r["dest"]): r["n"] for r in rows}
    width = max(len(k) for k in kinds)
    lines = [f"{'kind':<{width}} " + " ".join(f"{d:>17}" for d in dests) + f" {'total':>7}"]
    for k in kinds:
        cells = [counts.get((k, d), 0) for d in dests]
        lines.append(f"{k:<{width}} " + " ".join(f"{n:>17,}" for n in cells) + f" {sum(cells):>7,}")
    totals = [sum(counts.get((k, d), 0) for k in kinds) for d in dests]
    lines.append(f"{'total':<{width}} " + " ".join(f"{n:>17,}" for n in totals) + f" {sum(totals):>7,}")
    return "\n".join(lines)


@pytest.mark.slow  # >= 10,000 hostile records over every source and format, with generated ones, bronze + silver
def test_ten_thousand_hostile_records_over_every_source(spark, settings, tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    specs = load_sources(settings)
    generate(15, 17, root / "landing", root / "truth")         # good rows (of every source) that must flow through
    cases = write_hostile(specs, root / "landing", per_kind=37, seed=17)
    assert len(cases) >= HOSTILE_RECORDS
    assert {c.source for c in cases} == {s.name for s in specs}
    lake = Lakehouse(spark, str(root / "lakehouse"))
    t0 = time.monotonic()
    land_and_build(lake, settings, root / "landing", "fuzz-1", specs=specs, lenient=True)
    seconds = time.monotonic() - t0

    found = destinations(lake, specs, cases).persist()
    try:
        rows = found.groupBy("kind", "dest").agg(F.count(F.lit(1)).alias("n")).collect()
        wrong = found.where("NOT ok").limit(10).collect()
    finally:
        found.unpersist()
    dests = sorted({r["dest"] for r in rows})
    print(f"\n{len(cases):,} hostile records, bronze + silver in {seconds:.1f}s\n"
          + count_table(rows, sorted({r["kind"] for r in rows}), dests))
    assert not wrong, [r.asDict() for r in wrong]
    assert unexplained_quarantine(lake, cases).count() == 0

    audit = lake.read(RECONCILIATION).where("run_id = 'fuzz-1'").groupBy("source", "stage").agg(
        F.bool_and("balanced").alias("balanced"))
    assert {(r["source"], r["stage"]): r["balanced"] for r in audit.collect()} == {
        (s.name, stage): True for s in specs for stage in ("bronze", "silver")}

    # the generated (good) records: every one is in its source's main table
    flowed = {}
    for spec in specs:
        good = lake.read(bronze(spec.name)).where(~F.col(spec.record_key).startswith("HX"))
        landed = good.select(spec.record_key).distinct().count()
        in_silver = main_rows(lake, spec).where(~F.col("record_key").startswith("HX")).distinct().count()
        flowed[spec.name] = (landed, in_silver)
    assert all(0 < landed == in_silver for landed, in_silver in flowed.values()), flowed
