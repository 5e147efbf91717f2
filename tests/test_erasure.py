"""GDPR erasure (cdp forget): requests, the per-table conditions, the landing rewrite, the Delta purge, and one end-to-end
run on a copy of the pipeline_demo lakehouse proving no table, readable version, file or MLflow artifact still holds
any of the person's identifiers."""

from __future__ import annotations

import csv
import json
import shutil
import time
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from cdp.config.sources import load_sources
from cdp.errors import CdpError
from cdp.io import Lakehouse
from cdp.privacy.artifacts import without_rows
from cdp.privacy.landing import filter_lines, rewrite_landing
from cdp.privacy.purge import erasure_session, purge_table
from cdp.privacy.requests import ErasureRequest, mask, read_requests, request, request_hash
from cdp.privacy.subject import UNIQUE_FIELDS, Subject
from cdp.privacy.targets import Target, erasure_targets
from cdp.tables import (
    CUSTOMERS,
    ERASURE_LOG,
    IDENTITY_LINKS,
    IDENTITY_MAP,
    IDENTITY_RECORDS,
    INTERACTIONS,
    QUARANTINE,
    Table,
    bronze,
)

SALT = "erasure-test-salt"

# ---------------------------------------------------------------- requests


def test_a_request_is_checked_and_never_echoed():
    assert request("email", "  Ana.Garcia@Example.com ") == ErasureRequest("email", "Ana.Garcia@Example.com")
    with pytest.raises(CdpError, match=r"^a\*\*\*@e\*\*\* is not an email") as exc:
        request("email", "ana@example")
    assert "ana" not in str(exc.value).replace("a***", "")
    with pytest.raises(CdpError, match="fewer than 7 digits"):
        request("phone", "12-34")
    with pytest.raises(CdpError, match="not a customer id"):
        request("customer_id", "12345")


def test_masks_keep_too_little_to_name_anyone():
    assert mask("email", "jose.garcia@gmail.com") == "j***@g***.com"
    assert mask("phone", "+34 612 345 678") == "***678"
    assert mask("customer_id", "C0123456789abcdef") == "C01***"


def test_phones_normalise_as_silver_does():
    assert request("phone", "0034 612 345 678").phone_e164("ES") == "+34612345678"
    assert request("phone", "612345678").phone_e164("ES") == "+34612345678"


def test_a_requests_file_takes_kind_value_or_one_column_per_kind(tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("kind,value\nemail,a@x.es\n\nphone,+34612345678\nemail,a@x.es\n", encoding="utf-8")
    assert read_requests(pairs) == [request("email", "a@x.es"), request("phone", "+34612345678")]
    wide = tmp_path / "wide.csv"
    wide.write_text("email,phone,customer_id\n,,C0123456789abcdef\nb@y.com,,\n", encoding="utf-8")
    assert read_requests(wide) == [request("customer_id", "C0123456789abcdef"), request("email", "b@y.com")]
    bad = tmp_path / "bad.csv"
    bad.write_text("email,phone\nb@y.com,612345678\n", encoding="utf-8")
    with pytest.raises(CdpError, match="line 2: give one identifier per row"):
        read_requests(bad)


def test_the_request_hash_needs_the_salt_and_ignores_how_the_value_was_written():
    a, b = request("email", "Ana@X.es"), request("email", "ana@x.es")
    assert request_hash(a, SALT, "ana@x.es") == request_hash(b, SALT, "ana@x.es")
    assert request_hash(a, SALT, "ana@x.es") != request_hash(a, "other-salt", "ana@x.es")
    assert len(request_hash(a, SALT)) == 64 and "ana" not in request_hash(a, SALT)


def test_forget_refuses_to_run_without_the_salt(monkeypatch):
    from cdp.privacy.requests import salt

    monkeypatch.delenv("CDP_PII_SALT", raising=False)
    with pytest.raises(CdpError, match="set the environment variable CDP_PII_SALT"):
        salt()


# ---------------------------------------------------------------- the pure core: which rows of which table


def test_conditions_name_columns_and_kinds_never_values(settings):
    targets = {t.table: t for t in erasure_targets(load_sources(settings))}
    assert targets[CUSTOMERS].condition == "(s.kind = 'customer' AND t.`customer_id` = s.value)"
    assert "t.`src` = s.value" in targets[IDENTITY_LINKS].condition
    crm = targets[bronze("crm_customers")].condition
    assert "(s.kind = 'key:crm_customers' AND t.`customer_ref` = s.value)" in crm
    assert "lower(trim(CAST(t.`email` AS STRING))) = s.value" in crm and "first_name" not in crm
    assert "(s.kind = 'order' AND t.`order_id` = s.value)" in targets[bronze("ecommerce_order_lines")].condition
    assert "instr(lower(t.`raw`), s.value)" in targets[QUARANTINE].condition
    assert not any(t.table.layer == "audit" for t in targets.values())   # the erasure log survives every erasure


def test_the_subject_becomes_kind_value_rows_and_short_values_stay_out_of_free_text():
    subject = Subject(("C1",), ("crm:1",), {"crm": ("1",)}, ("i1",), ("o1",), ("ana@x.es", "ana"))
    assert subject.rows() == [("customer", "C1"), ("record", "crm:1"), ("key:crm", "1"), ("interaction", "i1"),
                              ("order", "o1"), ("value", "ana@x.es"), ("value", "ana"), ("text", "ana@x.es")]
    assert not Subject().found


def test_conditions_select_exactly_the_persons_rows(spark):
    rows = spark.createDataFrame([("C1", "a"), ("C2", "b"), (None, "c")], "customer_id string, raw string").alias("t")
    subject = spark.createDataFrame(Subject(("C1",), values=("cccccc",)).rows(), "kind string, value string")
    target = Target(Table("gold", "x"), ("(s.kind = 'customer' AND t.`customer_id` = s.value)",))
    kept = rows.join(subject.alias("s"), F.expr(target.condition), "left_anti")
    assert sorted(r[1] for r in kept.collect()) == ["b", "c"]


@pytest.mark.parametrize("kind, value", [
    ("phone", "+34 600 000 001"),        # a family phone: C1's record and C2's hold it
    ("email", "NOEMAIL@example.com"),    # a placeholder: normalised on C2's record, raw on C3's
])
def test_an_email_or_phone_several_customers_hold_names_no_one_and_nothing_is_erased(
        spark, lake, settings, kind, value, monkeypatch):
    from cdp.commands.forget import summary_lines
    from cdp.privacy.erasure import forget
    from cdp.privacy.subject import resolve_subject

    records = [("crm:1", "ana@x.es", "ana@x.es", "+34600000001", "600 000 001"),
               ("web:2", "noemail@example.com", None, "+34600000001", "+34600000001"),
               ("pos:3", None, " NoEmail@Example.com ", None, None),
               ("crm:4", "luis@y.es", "luis@y.es", "+34600000009", "600000009")]
    spark.createDataFrame(records, "record_id string, email string, email_raw string, phone string, phone_raw string") \
        .write.format("delta").save(lake.location(IDENTITY_RECORDS))
    spark.createDataFrame([("crm:1", "C1"), ("web:2", "C2"), ("pos:3", "C3"), ("crm:4", "C1")],
                          "record_id string, customer_id string").write.format("delta").save(lake.location(IDENTITY_MAP))
    monkeypatch.setenv("CDP_PII_SALT", SALT)
    req = request(kind, value)

    subject = resolve_subject(lake, settings, load_sources(settings), req)
    assert (subject.shared_by, subject.found, subject.rows()) == (2, False, [])
    versions = {t: lake.version(t) for t in (IDENTITY_RECORDS, IDENTITY_MAP)}
    run = forget(settings, lake, [req], say=lambda _: None)
    assert [(o.status, o.rows_deleted) for o in run.outcomes] == [("shared", {})]
    assert {t: lake.version(t) for t in versions} == versions and run.purged == []
    assert [(r.status, r.customers) for r in lake.read(ERASURE_LOG).collect()] == [("shared", 2)]
    assert any("name each person by --customer-id" in line for line in summary_lines(run, landing=False))


# ---------------------------------------------------------------- landing files and model input examples


def test_landing_lines_go_by_record_key_or_by_value_and_the_rest_stay_byte_for_byte(settings, tmp_path):
    specs = {s.name: s for s in load_sources(settings)}
    text = ("customer_ref,first_name,email\r\nCRM-1,Ana,ana.garcia@x.es\r\nCRM-2,Luis,\"l@y.com\"\r\n"
            "CRM-3,Eva,ANA.GARCIA@X.ES\r\n")
    kept, removed = filter_lines(text, specs["crm_customers"], {"CRM-1"}, ("ana.garcia@x.es",))
    assert (kept, removed) == ("customer_ref,first_name,email\r\nCRM-2,Luis,\"l@y.com\"\r\n", 2)
    lines = '{"post_id": "P1", "profile_email": "x@y.es"}\n{"post_id": "P2", "profile_email": "z@y.es"}\n'
    assert filter_lines(lines, specs["social_posts"], {"P2"}, ()) == ('{"post_id": "P1", "profile_email": "x@y.es"}\n', 1)

    landing = tmp_path / "landing"
    (landing / "store").mkdir(parents=True)
    pq.write_table(pa.table({"visit_id": ["V1", "V2", "V3"], "receipt_email": ["a@x.es", None, "b@x.es"]}),
                   landing / "store" / "visits_0.parquet", row_group_size=2)   # rewritten a row group at a time
    (landing / "crm").mkdir()
    (landing / "crm" / "customers.csv").write_bytes(text.encode("utf-8"))   # rewritten a line at a time
    outside = tmp_path / "elsewhere.parquet"   # a copied lakehouse still names the original files: never touched
    shutil.copy(landing / "store" / "visits_0.parquet", outside)
    files = {"store_visits": {f"file:{landing}/store/visits_0.parquet", str(outside)},
             "crm_customers": {f"file:{landing}/crm/customers.csv"}}
    done = rewrite_landing(str(landing), files, list(specs.values()), {"store_visits": ("V1",), "crm_customers": ()},
                           ("b@x.es", "ana.garcia@x.es"))
    assert (done.files, done.rows_removed) == (2, 4)
    assert pq.read_table(landing / "store" / "visits_0.parquet").column("visit_id").to_pylist() == ["V2"]
    assert (landing / "crm" / "customers.csv").read_bytes() == b'customer_ref,first_name,email\r\nCRM-2,Luis,"l@y.com"\r\n'
    assert pq.read_table(outside).num_rows == 3
    assert sorted(p.name for p in landing.rglob("*") if p.is_file()) == ["customers.csv", "visits_0.parquet"]


def test_the_persons_rows_leave_a_model_input_example():
    example = {"dataframe_split": {"columns": ["age", "spend"], "data": [[40.0, float("nan")], [41.0, 2.5]]}}
    kept, removed = without_rows(example, ["age", "spend"], {(40.0, None)})
    assert removed == 1 and kept["dataframe_split"]["data"] == [[41.0, 2.5]]
    assert without_rows(example, ["age", "spend"], {(39.0, None)}) == (example, 0)


# ---------------------------------------------------------------- the purge: files and log, statistics included


@pytest.mark.slow   # a real REORG, VACUUM and checkpoint (~6 s)
def test_purge_leaves_no_file_or_log_entry_holding_a_deleted_value(spark, lake):
    """With statistics on, a file's min/max values sit in the log's add actions: a DELETE and VACUUM alone leave them
    there; the purge's checkpoint and log truncation remove them."""
    table = Table("silver", "purge_probe")
    spark.conf.set("spark.databricks.delta.stats.collect", "true")
    try:
        lake.append(spark.createDataFrame([("aaa.gone@x.es",), ("zzz.kept@x.es",)], "email string"), table)
        lake.enable_deletion_vectors(table)
        lake.delta_table(table).alias("t").merge(
            spark.createDataFrame([("aaa.gone@x.es",)], "value string").alias("s"), "t.email = s.value"
        ).whenMatchedDelete().execute()
        assert "aaa.gone@x.es" in _bytes_under(Path(lake.location(table)))   # the min value of the first file's stats
        with erasure_session(spark):
            purged = purge_table(lake, table, 0)
    finally:
        spark.conf.set("spark.databricks.delta.stats.collect", "false")
    assert purged.files_removed >= 1 and purged.log_files_removed >= 2
    assert "aaa.gone@x.es" not in _bytes_under(Path(lake.location(table)))
    assert [r.email for r in lake.read(table).collect()] == ["zzz.kept@x.es"]
    assert [r.version for r in lake.delta_table(table).history().collect()] == [lake.version(table)]


def _bytes_under(folder: Path) -> str:
    return "".join(p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file()).lower()


# ---------------------------------------------------------------- end to end on a copy of the demo lakehouse


def _delta_tables(root: Path) -> list[str]:
    return sorted(".".join(p.parent.relative_to(root).parts) for p in root.glob("*/*/_delta_log"))


def _pick_person(lake: Lakehouse, truth: Path) -> tuple[str, list[tuple[str, str]], str]:
    """A person of the ground truth with records in several sources, all resolved to one customer that holds no one
    else's record: (person id, their (source, record key) pairs, their customer id)."""
    owners = list(csv.DictReader(next((truth / "record_owners").glob("*.csv")).open(encoding="utf-8")))
    owner = {(o["source"], o["record_key"]): o["person_id"] for o in owners}
    rows = (lake.read(INTERACTIONS).select("source", "source_record_key", "identity_record_id")
            .join(lake.read(IDENTITY_MAP).select(F.col("record_id").alias("identity_record_id"), "customer_id"),
                  "identity_record_id").select("source", "source_record_key", "customer_id").collect())  # 60 customers
    people, customers = defaultdict(set), defaultdict(set)
    for r in rows:
        person = owner.get((r.source, r.source_record_key))
        people[person].add(r.customer_id)
        customers[r.customer_id].add(person)
    keys = defaultdict(list)
    for (source, key), person in owner.items():
        keys[person].append((source, key))
    clean = [p for p, c in people.items() if p and len(c) == 1 and customers[next(iter(c))] == {p}]
    person = max(clean, key=lambda p: (len({s for s, _ in keys[p]}), len(keys[p]), p))
    return person, keys[person], next(iter(people[person]))


def _person_values(lake: Lakehouse, settings, keys: list[tuple[str, str]], customer_id: str) -> set[str]:
    """Every unique identifier the person's bronze rows hold (record keys, emails, phones, handles, loyalty, device and
    cookie ids) and their customer id, minus the values someone else's bronze rows hold too (a shared family phone).
    A row holding no identifier at all is nobody's as far as any system can tell: its key is left out."""
    by_source = defaultdict(set)
    for source, key in keys:
        by_source[source].add(key)
    mine, others = set(), set()
    for spec in load_sources(settings):
        identity = spec.silver.identity
        cols = [identity.fields[f] for f in UNIQUE_FIELDS if identity and f in identity.fields]
        rows = lake.read(bronze(spec.name)).select(spec.record_key, *cols).collect()   # 60 customers
        for r in rows:
            values = {str(v).strip().lower() for v in r if v is not None and str(v).strip()}
            if identity is not None and len(values) == 1:   # an anonymous row (a visit without card or email):
                continue                                     # nothing ties it to anyone, in the lakehouse or out
            (mine if r[0] in by_source[spec.name] else others).update(values)
    return {v for v in mine - others if len(v) >= 6} | {customer_id.lower()}


def _holding(text: str, values: set[str]) -> set[str]:
    low = text.lower()
    return {v for v in values if v in low}


def _scan_files(root: Path, values: set[str]) -> tuple[dict[str, set[str]], int, int]:
    """Files under root holding a value: every file's raw bytes, and every Parquet file decoded (compression hides
    values from a byte search). Returns the hits, files scanned and bytes scanned."""
    hits, files, size = {}, 0, 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        files, size = files + 1, size + len(data)
        found = _holding(data.decode("latin-1"), values)
        if path.suffix == ".parquet":
            found |= _holding(json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False), values)
        if found:
            hits[str(path.relative_to(root))] = found
    return hits, files, size


def _holds_any(text, values: set[str]):
    return F.exists(F.array(*[F.lit(v) for v in sorted(values)]), lambda v: F.instr(text, v) > 0)


def _versions_holding(lake: Lakehouse, name: str, values: set[str]) -> list[tuple[int, int]]:
    """(version, rows holding a value) for every version of the table that can still be read."""
    out = []
    for version in sorted(r.version for r in lake.delta_table(name).history().select("version").collect()):
        if not lake.version_readable(name, version):
            continue
        df = lake.read(name, version=version)
        n = df.where(_holds_any(F.lower(F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns]))), values)).count()
        out.append((version, n))
    return out


def _fingerprint(df) -> tuple[int, int]:
    """(rows, sum of row hashes): equal pairs mean the same rows."""
    text = F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns]))
    row = df.select(F.count("*"), F.sum(F.xxhash64(text).cast("decimal(38,0)"))).first()
    return row[0], int(row[1] or 0)


def _fingerprints(lake: Lakehouse, names: list[str]) -> dict[str, tuple[int, int]]:
    return {name: _fingerprint(lake.read(name)) for name in names}


@pytest.mark.slow
def test_forget_leaves_no_trace_in_tables_versions_files_or_mlflow(demo_copy, spark, tmp_path, monkeypatch):
    from cdp.privacy.erasure import forget, matched_rows, subject_frame
    from cdp.privacy.subject import resolve_subject

    settings, lake, _ = demo_copy
    root, mlruns = tmp_path / "lakehouse", tmp_path / "mlruns"
    monkeypatch.setenv("CDP_PII_SALT", SALT)

    person, keys, customer_id = _pick_person(lake, tmp_path / "ground_truth")
    email = next(r.email for r in lake.read(CUSTOMERS).where(F.col("customer_id") == customer_id).collect())
    values = _person_values(lake, settings, keys, customer_id)
    tables = _delta_tables(root)
    assert len({s for s, _ in keys}) >= 4 and len(values) >= 5
    assert _scan_files(root, values)[0], "the scan must see the person before the erasure"
    # a table with the change data feed on: the DELETE writes the person's rows to _change_data/, VACUUM removes them
    spark.sql(f"ALTER TABLE delta.`{lake.location(CUSTOMERS)}` SET TBLPROPERTIES (delta.enableChangeDataFeed = true)")
    specs = load_sources(settings)
    subject = resolve_subject(lake, settings, specs, request("email", email))
    assert subject.customer_ids == (customer_id,)
    persons = subject_frame(lake, subject)
    before = _fingerprints(lake, tables)
    theirs = {t.table.qualified: _fingerprint(matched_rows(lake, t, persons))
              for t in erasure_targets(specs) if lake.exists(t.table)}

    started = time.monotonic()
    run = forget(settings, lake, [request("email", email)], say=lambda _: None)
    seconds = time.monotonic() - started

    (outcome,) = run.outcomes
    assert outcome.status == "erased" and outcome.subject.customer_ids == (customer_id,)
    after = _fingerprints(lake, tables)
    for name in tables:   # exactly the person's rows went; every other row is as it was
        gone = theirs.get(name, (0, 0))
        expected = before[name] if name == ERASURE_LOG.qualified else (before[name][0] - gone[0], before[name][1] - gone[1])
        if name != ERASURE_LOG.qualified:
            assert after[name] == expected, name
        assert outcome.rows_deleted.get(name, 0) == gone[0], name
    hits = {name: held for name in tables if (held := [v for v in _versions_holding(lake, name, values) if v[1]])}
    assert hits == {}, f"readable versions still hold the person: {hits}"
    files, scanned, size = _scan_files(root, values)
    assert files == {}, f"files still holding the person: {files}"
    artifacts, artifact_files, _ = _scan_files(mlruns, values)
    assert artifacts == {} and artifact_files > 0
    assert _holding((tmp_path / "mlflow.db").read_bytes().decode("latin-1"), values) == set()   # params, tags
    assert not list(root.rglob("_change_data/*"))

    log = lake.read(ERASURE_LOG).collect()
    assert [(r.kind, r.status, r.customers, r.request_hash) for r in log] == [
        ("email", "erased", 1, outcome.request_hash)]
    assert log[0].rows_deleted == outcome.rows_deleted and log[0].files_vacuumed == run.files_vacuumed > 0
    assert outcome.landing_files   # the fixture's landing files hold them still: the source's to erase

    versions = {name: lake.version(name) for name in tables}
    again = forget(settings, lake, [request("email", email)], say=lambda _: None)
    assert again.outcomes[0].status == "not_found" and again.purged == []
    assert {n: lake.version(n) for n in tables if n != ERASURE_LOG.qualified} == \
        {n: v for n, v in versions.items() if n != ERASURE_LOG.qualified}
    print(f"\nerasure of {person}: {len(outcome.rows_deleted)} tables, {sum(outcome.rows_deleted.values())} rows, "
          f"{run.files_vacuumed} files vacuumed, {run.log_files_removed} log files removed in {seconds:.1f}s; "
          f"scanned {scanned} files ({size:,} bytes) under the lakehouse and {artifact_files} under mlruns "
          f"for {len(values)} values")



def test_the_summary_prints_counts_and_never_a_value():
    from cdp.commands.forget import summary_lines
    from cdp.privacy.erasure import ErasureRun, RequestOutcome

    found = RequestOutcome(request("email", "ana.garcia@x.es"), "h" * 64, Subject(("C1",), ("crm:1",)),
                           {"bronze.crm_customers": 1, "gold.customers": 1}, {"crm_customers": {"/l/crm/c.csv"}})
    missing = RequestOutcome(request("phone", "+34612345678"), "g" * 64, Subject())
    lines = summary_lines(ErasureRun("forget-1", False, [found, missing], [], 1.5), landing=False)
    text = "\n".join(lines)
    assert lines[0] == "1 of 2 request(s) found someone; deleted 2 row(s) in 2 table(s)"
    assert "1 file(s) still hold the person's rows" in text and "--landing" in text
    assert "ana" not in text and "612345678" not in text and "/l/crm" not in text
