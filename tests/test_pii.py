"""PII protection: every column whose name suggests personal data carries a `pii:` mark; the protected copies hash
(HMAC-SHA256, the same in Spark and Python) or mask each marked column as conf/pii.yaml says and agree with their
contracts; without a salt the copies are skipped (no catalog) or refused (catalog); and the run report, the quality
pages, the notebooks as committed and the console and log files of a run hold no raw email or phone of the demo."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import DEMO_CATALOG, test_overrides, test_settings
from frame_asserts import assert_frame_equal

from cdp.config import PROJECT_ROOT, load_yaml_model
from cdp.config.contracts import TableContract
from cdp.config.pii import SALT_VARIABLE, planned_copies
from cdp.config.pii_categories import mask_text
from cdp.config.sources import SourceSpec, load_sources
from cdp.errors import ConfigError
from cdp.privacy.pii import masked, pii_hash, protect, write_protected_copies
from cdp.quality import load_contracts
from cdp.quality.gx_runner import validate
from cdp.tables import CUSTOMERS, CUSTOMERS_PROTECTED, IDENTITY_RECORDS, PROTECTED_TABLES, bronze

SECRET = "a-salt-of-this-test-0123456789"
# a name that suggests personal data: these words as a whole part of the column name
SUGGESTS_PII = re.compile(r"(^|_)(e?mail|phone|name|first_name|last_name|surname|street|address|postal_code|postcode|"
                          r"zip|birth|dob|handle|raw|text|title|comment|notes|evidence|loyalty_id|device_id|cookie_id|"
                          r"ip|ssn|soc_sec_id|attributes)(_|$|\d)")
# columns (by name, or table.column) whose name matches but that hold no personal data, and why
NOT_PII = {
    "model_name": "an MLflow model", "email_event_id": "the id of a send, not the address",
    "gold.identity_match_scores.evidence": "each comparison's weight, no value (identity_links' evidence has values)",
    "campaign_name": "a marketing campaign", "product_name": "a catalogue product", "table_name": "a lakehouse table",
    "email_open_rate": "a rate", "email_click_rate": "a rate", "email_unsubscribed": "a flag",
    "email_unsubscribed_at": "a time", "email_open_rate_90d": "a rate", "email_engagement_change": "a rate change",
    "emails_received_90d": "a count",
}
RAW_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{2,}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
RAW_PHONE = re.compile(r"\+[0-9]{8,}")


def hmac_hex(text: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def every_column(settings) -> list[tuple[str, str, str | None]]:
    """(table, column, pii) of every contract, every source and the example sources of conf/examples."""
    out = [(c.table, col.name, col.pii) for c in load_contracts(settings) for col in c.columns]
    examples = sorted((PROJECT_ROOT / "conf" / "examples").glob("*/sources/*.yaml"))   # their columns only
    specs = [*load_sources(settings), *(load_yaml_model(p, SourceSpec) for p in examples)]
    return out + [(bronze(s.name).qualified, col.name, col.pii) for s in specs for col in s.columns]


# ---------------------------------------------------------------- the marks

def test_every_column_whose_name_suggests_pii_is_marked(settings):
    unmarked = [f"{t}.{c}" for t, c, pii in every_column(settings) if SUGGESTS_PII.search(c) and not pii
                and c not in NOT_PII and f"{t}.{c}" not in NOT_PII]
    assert unmarked == []


def test_the_marks_cover_the_people_in_every_layer(settings):
    marked = {t for t, _, pii in every_column(settings) if pii}
    assert {"bronze.crm_customers", "silver.identity_records", "silver.interactions", "gold.customers",
            "gold.customer_profile", "quarantine.records", *(t.qualified for t in PROTECTED_TABLES)} <= marked


def test_an_unknown_category_or_a_protection_without_category_is_one_line(settings, tmp_path):
    for column, said in (({"name": "ssn", "pii": "national_id"}, "pii"), ({"name": "x", "protected": "hash"}, "pii")):
        path = tmp_path / "t.yaml"
        path.write_text(yaml.safe_dump({"table": "gold.t", "columns": [column]}))
        with pytest.raises(ConfigError) as err:
            load_yaml_model(path, TableContract)
        assert "\n" not in str(err.value) and said in str(err.value)


# ---------------------------------------------------------------- hash and mask (pure Spark, a handful of rows)

def test_hashes_are_hmac_sha256_of_the_normalised_value_in_spark_and_python(spark):
    contract = TableContract(table="gold.t", columns=[{"name": "id"}, {"name": "email", "pii": "email"},
                                                      {"name": "phone", "pii": "phone"}])
    rows = [("1", " Ana.Lopez@Example.COM ", "+34 612 345 678"), ("2", None, None)]
    df = spark.createDataFrame(rows, "id string, email string, phone string")
    out = protect(df, contract, {"email": "hash", "phone": "hash"}, SECRET)
    expected = [("1", hmac_hex("ana.lopez@example.com"), hmac_hex("+34612345678")), ("2", None, None)]
    assert_frame_equal(out, expected, "id string, email string, phone string")
    assert pii_hash(" Ana.Lopez@Example.COM", "email", SECRET) == expected[0][1]
    assert pii_hash("+34-612-345-678", "phone", SECRET) == expected[0][2]


def test_long_salts_hash_like_hmac_too(spark):
    secret = "s" * 100   # longer than SHA-256's block: HMAC hashes the key first
    contract = TableContract(table="gold.t", columns=[{"name": "v", "pii": "identifier"}])
    out = protect(spark.createDataFrame([("LY-1",)], "v string"), contract, {"v": "hash"}, secret)
    assert out.first()[0] == hmac_hex("ly-1", secret) == pii_hash("LY-1", "identifier", secret)


def test_masks_identify_no_one(spark):
    from pyspark.sql import functions as F

    rows = [("ana.lopez@example.com", "+34 612 345 678", "Ana", "Calle Mayor 5", "1985-03-07", "@ana_l", "LY-0042",
             "write to ana@x.es or call +34 612 345 678 please"),
            ("nope", "612345678", " Jo ", "28013", "1990-12-31", "a", "L", "no contact"),
            (None, "12", None, None, None, None, None, None)]
    cats = ["email", "phone", "name", "address", "birth_date", "handle", "identifier", "free_text"]
    df = spark.createDataFrame(rows, ", ".join(f"{c} string" for c in cats))
    out = df.select(*[masked(F.col(c), c).alias(c) for c in cats])
    assert_frame_equal(out, [
        ("a***@example.com", "+34 *** *** 678", "A***", "Ca***", "1985-**-**", "@a***", "LY***",
         "write to [email] or call [phone] please"),
        ("***", "*** *** 678", "J***", "28***", "1990-**-**", "a***", "L***", "no contact"),
        (None, "***", None, None, None, None, None, None)], ", ".join(f"{c} string" for c in cats))
    assert [tuple(mask_text(v, c) for v, c in zip(row, cats, strict=True)) for row in rows] == [tuple(r) for r in
                                                                                                out.collect()]


def test_quality_pages_show_the_failing_values_of_pii_columns_masked(spark):
    contract = TableContract(table="silver.t", columns=[{"name": "email", "pii": "email"}, {"name": "code"}],
                             expectations=[{"name": "email_looks_valid", "type": "regex", "column": "email",
                                            "pattern": "^[^@]+@[^@]+[.][a-z]+$", "level": "row"},
                                           {"name": "code_short", "type": "regex", "column": "code",
                                            "pattern": "^.$", "level": "row"}])
    df = spark.createDataFrame([("ana.lopez@gmail", "AB"), ("jo@x.es", "C")], "email string, code string")
    samples = {r.name: r.details.get("partial_unexpected_list") for r in validate(df, contract, "run-1").results}
    assert (samples["email_looks_valid"], samples["code_short"]) == (["a***@gmail"], ["AB"])


def test_protect_replaces_only_the_marked_columns_and_keeps_their_places(spark):
    contract = TableContract(table="gold.t", columns=[{"name": "customer_id"}, {"name": "first_name", "pii": "name"},
                                                      {"name": "attrs", "type": "map<string,string>", "pii": "identifier"},
                                                      {"name": "city"}])
    df = spark.createDataFrame([("C1", "Ana", {"nif": "X1"}, "Madrid"), ("C2", None, {}, None)],
                               "customer_id string, first_name string, attrs map<string,string>, city string")
    out = protect(df, contract, {"first_name": "mask", "attrs": "hash"}, SECRET)
    assert_frame_equal(out, [("C1", "A***", hmac_hex('{"nif":"x1"}'), "Madrid"), ("C2", None, None, None)],
                       "customer_id string, first_name string, attrs string, city string")


# ---------------------------------------------------------------- configuration and salt (no Spark)

def test_the_copy_contracts_agree_with_conf_pii(settings):
    copies = planned_copies(settings)
    assert [c.target for c in copies] == list(PROTECTED_TABLES)
    assert copies[0].methods["email"] == "hash" and copies[0].methods["first_name"] == "mask"


def _conf_with(conf_dir: Path, tmp_path: Path, change) -> Path:
    conf = tmp_path / "conf"
    shutil.copytree(conf_dir, conf)
    data = yaml.safe_load((conf / "pii.yaml").read_text())
    change(data)
    (conf / "pii.yaml").write_text(yaml.safe_dump(data))
    return conf


@pytest.mark.parametrize("change, message", [
    (lambda d: d["methods"].update(name="hash"), r"customers?\w*_protected.yaml: column first_name is declared .*protected "
                                                 r"mask; the copy writes .*protected hash; make the contract match"),
    (lambda d: d["methods"].pop("phone"), r"pii.yaml: key 'methods' .*gives no method for phone"),
    (lambda d: d["copies"]["gold.customers"].update(columns={"city": "hash"}),
     r"key 'copies.gold.customers.columns.city' is not a pii column of gold.customers"),
    (lambda d: d["copies"].update({"gold.funnels": {"table": "gold.funnels_protected"}}),
     r"key 'copies.gold.funnels': unknown table 'gold.funnels_protected'"),
], ids=["method-differs-from-contract", "category-without-method", "column-not-pii", "unregistered-copy"])
def test_a_pii_configuration_mistake_is_one_line(conf_dir, workdir, tmp_path, change, message):
    conf = _conf_with(conf_dir, tmp_path, change)
    with pytest.raises(ConfigError, match=message) as err:
        planned_copies(test_settings(conf, workdir))
    assert "\n" not in str(err.value)


def test_without_a_salt_the_copies_are_skipped_with_no_catalog_and_refused_with_one(conf_dir, workdir, monkeypatch):
    monkeypatch.delenv(SALT_VARIABLE, raising=False)
    skipped = write_protected_copies(None, test_settings(conf_dir, workdir), "run-1")   # no table is touched
    assert skipped.rows == {} and skipped.skipped.startswith(f"the environment variable {SALT_VARIABLE} is not set")
    with pytest.raises(ConfigError, match=rf"{SALT_VARIABLE} is not set: the protected copies \(gold.customers_protected"
                                          r".*cannot be written for catalog bi_gold; export"):
        write_protected_copies(None, test_settings(conf_dir, workdir, "catalog.database=bi_gold"), "run-1")
    monkeypatch.setenv(SALT_VARIABLE, "short")
    assert "shorter than 16" in write_protected_copies(None, test_settings(conf_dir, workdir), "run-1").skipped


# ---------------------------------------------------------------- the demo run (slow)

@pytest.mark.slow
def test_the_demo_copies_hold_hashes_that_match_the_customers(pipeline_demo, spark):
    settings, lake, _ = pipeline_demo
    customers, copy = lake.read(CUSTOMERS), lake.read(CUSTOMERS_PROTECTED)
    assert copy.count() == customers.count()
    assert copy.where("email IS NOT NULL AND NOT email RLIKE '^[0-9a-f]{64}$'").count() == 0
    sample = customers.where("email IS NOT NULL").select("customer_id", "email").limit(3).collect()
    hashes = {r.customer_id: r.email for r in copy.where(copy.customer_id.isin([s.customer_id for s in sample])).collect()}
    assert {s.customer_id: pii_hash(s.email, "email") for s in sample} == hashes
    assert spark.table(f"{DEMO_CATALOG}.customers_protected").count() == copy.count()   # published for BI


def demo_contacts(settings, lake) -> set[str]:
    """Every email and phone of the demo's people: as delivered (bronze, the columns marked email or phone) and
    as normalised (silver.identity_records). 60 customers' records: small."""
    values: set[str] = set()
    for spec in load_sources(settings):
        columns = [c.name for c in spec.columns if c.pii in ("email", "phone")]
        if columns and lake.exists(bronze(spec.name)):
            values |= {v.strip() for r in lake.read(bronze(spec.name)).select(*columns).collect() for v in r if v}
    values |= {v for r in lake.read(IDENTITY_RECORDS).select("email", "phone").collect() for v in r if v}
    return {v for v in values if len(v) > 5}


def leaks(text: str, contacts: set[str], any_shape: bool = True) -> list[str]:
    """The demo's emails and phones in text; any_shape: any email or E.164 number too (what a run writes)."""
    found = sorted(v for v in contacts if v in text)
    return found + ([m.group(0) for m in RAW_EMAIL.finditer(text)] + RAW_PHONE.findall(text) if any_shape else [])


@pytest.mark.slow
@pytest.mark.process
def test_no_raw_email_or_phone_in_the_report_notebooks_console_or_logs(demo_copy, conf_dir):
    settings, lake, ctx = demo_copy
    contacts = demo_contacts(settings, lake)
    root = Path(lake.root).parent
    # a second, small run on (a copy of) the demo lakehouse through the CLI: its console output and its log file
    argv = [sys.executable, "-m", "cdp", "run", "--conf-dir", str(conf_dir), "--steps", "report",
            *[a for o in test_overrides(root) for a in ("--set", o)]]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    scanned = {"demo run console": ctx.console.export_text(clear=False), "cdp run stdout": proc.stdout,
               "cdp run stderr": proc.stderr}
    files = [*Path(settings.path(settings.paths.reports)).rglob("*.html"), *(root / "lakehouse" / "_logs").glob("*.log"),
             *(PROJECT_ROOT / "notebooks").glob("*.ipynb")]
    scanned |= {str(f): f.read_text(encoding="utf-8", errors="replace") for f in files}
    assert any(name.endswith("run-report.html") for name in scanned) and any(name.endswith(".log") for name in scanned)
    # the notebooks as committed explain formats with made-up values ('email=ana@x.es'): only the demo's are searched
    found = {name: leaks(text, contacts, not name.endswith(".ipynb")) for name, text in scanned.items()}
    assert {name: values for name, values in found.items() if values} == {}
    assert [name for name, text in scanned.items() if os.environ[SALT_VARIABLE] in text] == []
    print(f"scanned {len(scanned)} texts, {sum(map(len, scanned.values())):,} characters, for {len(contacts)} "
          f"emails and phones of the demo: " + json.dumps({n: len(t) for n, t in scanned.items()}))
