"""Identity on any company's data: custom attributes declared in conf only, and the Splink comparison library's
comparisons, each scored on a hand-built pair (real Spark, real Splink)."""

from __future__ import annotations

import csv
import shutil

import pytest
import yaml
from conftest import test_settings
from identity_records import NOW, frame, rec

from cdp.config import DEFAULT_CONF_DIR
from cdp.config.identity import IdentityConfig, load_identity_config
from cdp.errors import ConfigError
from cdp.identity.resolve import resolve

FEBRL = DEFAULT_CONF_DIR / "examples" / "febrl"


def febrl_config(**changes) -> IdentityConfig:
    data = yaml.safe_load((FEBRL / "identity.yaml").read_text())
    data.update(changes)
    return IdentityConfig.model_validate(data)


# ------------------------------------------------------------------------------------------ configuration
@pytest.mark.parametrize("change, message", [
    ({"deterministic_rules": [{"name": "nid", "attributes": ["national_idd"]}]},
     "attribute 'national_idd' is not a column of silver.identity_records nor a custom attribute"),
    ({"custom_attributes": {"email": {"kind": "identifier"}}}, "custom attribute 'email' clashes with a built-in column"),
    ({"custom_attributes": {"National-ID": {}}}, "must be lower case letters, digits and _"),
    ({"custom_attributes": {"nid": {"kind": "passport"}}}, "custom_attributes.nid.kind"),
    ({"survivorship": {"nid": {"rule": "most_recent"}}}, "survivorship attribute 'nid' is neither in gold.customers"),
])
def test_a_custom_attribute_mistake_is_one_line(tmp_path, change, message):
    data = yaml.safe_load((FEBRL / "identity.yaml").read_text())
    data.update(change)
    path = tmp_path / "identity.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_identity_config(path=path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_custom_attributes_count_like_built_in_ones():
    config = febrl_config(max_identifiers_per_customer={"soc_sec_id": 2},
                          survivorship={"soc_sec_id": {"rule": "source_priority", "sources": ["febrl_people"]}})
    # an identifier identifies a record and is not exempt from the too-frequent check; text kinds are
    assert "soc_sec_id" in config.identifying and "soc_sec_id" not in config.frequency_exempt
    assert {"street_number", "address_2"} <= set(config.frequency_exempt)
    assert "soc_sec_id" in config.junk_attributes() and "soc_sec_id" in config.rule_attributes()


def test_a_custom_attribute_links_explains_and_survives(spark, settings):
    """Records naming nobody the same way, sharing only a national id keyed differently ('698-8048' and
    '6988048', digits_only) are one customer; the link says why; gold.customers keeps the value."""
    from pyspark.sql import functions as F

    from cdp.silver.canonical import custom_attribute_values

    config = febrl_config(probabilistic=None)
    rows = [rec("a", 1, first_name_match="ana", last_name_match="ruiz", street="Calle Mayor 1"),
            rec("b", 2, first_name_match="anna", last_name_match="ruis", street="C/ Mayor, 1"),
            rec("c", 3, first_name_match="luis", last_name_match="gil", street="Calle Sol 2")]
    raw = {"a": "698-8048", "b": "6988048 ", "c": "1234567"}
    records = frame(spark, rows).withColumn(
        "custom_attributes", custom_attribute_values(
            {"soc_sec_id": F.create_map(*[F.lit(x) for kv in raw.items() for x in kv])[F.col("record_id")]},
            config.custom_attributes))
    tables = resolve(records, None, config, settings, run_id="r1", now=NOW)
    ids = {r.record_id: r.customer_id for r in tables.identity_map.collect()}
    assert ids["a"] == ids["b"] != ids["c"]
    assert [(r.rule, r.evidence) for r in tables.links.collect()] == [("soc_sec_id_exact", "soc_sec_id=6988048")]
    golden = {r.customer_id: r.custom_attributes for r in tables.customers.collect()}
    assert golden[ids["a"]] == {"soc_sec_id": "6988048"} and golden[ids["c"]] == {"soc_sec_id": "1234567"}


# ------------------------------------------------------------------------------------------ comparisons
# column -> (method, thresholds); each compared value pair below gives the level (Splink's gamma: 0 = else,
# the highest = exact) the comparison must put it in.
COMPARED = {
    "nid_dl": ("damerau_levenshtein_at_thresholds", [1]),
    "nid_lev": ("levenshtein_at_thresholds", [1]),
    "street_jw": ("jaro_winkler_at_thresholds", [0.9, 0.7]),
    "street_jaro": ("jaro_at_thresholds", [0.9, 0.7]),
    "name_nc": ("name_comparison", [0.92, 0.88]),
    "dob": ("date_of_birth_comparison", []),
    "postcode": ("postcode_comparison", [3, 2]),
    "email_ec": ("email_comparison", []),
    "code_exact": ("exact_match", []),
}
PAIRS = [
    # a transposed digit is one Damerau-Levenshtein edit but two Levenshtein edits
    ({"nid_dl": ("6988048", "6988084"), "nid_lev": ("6988048", "6988084"), "street_jw": ("martha", "marhta"),
      "street_jaro": ("martha", "marhta"), "name_nc": ("jon", "john"), "dob": ("1956-02-03", "1956-02-08"),
      "postcode": ("4011", "4019"), "email_ec": ("ana@x.es", "ana@y.es"), "code_exact": ("A1", "A1")},
     {"nid_dl": 1, "nid_lev": 0, "street_jw": 2, "street_jaro": 2, "name_nc": 2, "dob": 4, "postcode": 2,
      "email_ec": 3, "code_exact": 1}),
    ({"nid_dl": ("6988048", "6988048"), "nid_lev": ("6988048", "6989048"), "street_jw": ("martha", "zed"),
      "street_jaro": ("dixon", "dicksonx"), "name_nc": ("ana", "luis"), "dob": ("1956-02-03", "1956-03-01"),
      "postcode": ("4011", "4811"), "email_ec": ("ana@x.es", "ana@x.es"), "code_exact": ("A1", "B1")},
     {"nid_dl": 2, "nid_lev": 1, "street_jw": 0, "street_jaro": 1, "name_nc": 0, "dob": 3, "postcode": 0,
      "email_ec": 4, "code_exact": 0}),
    ({"nid_dl": ("6988048", "6988840"), "nid_lev": ("6988048", "6988048"), "street_jw": ("martha", "marta"),
      "street_jaro": ("martha", "zed"), "name_nc": ("ana", "ana"), "dob": ("1956-02-03", "1990-02-03"),
      "postcode": ("4011", "4021"), "email_ec": ("ana.gil@x.es", "ana.gil@y.es"), "code_exact": ("A1", "a1")},
     {"nid_dl": 0, "nid_lev": 2, "street_jw": 2, "street_jaro": 0, "name_nc": 3, "dob": 0, "postcode": 1,
      "email_ec": 3, "code_exact": 0}),
]


def test_each_comparison_puts_a_hand_built_pair_in_its_level(spark):
    from datetime import date

    from splink import Linker, SettingsCreator

    from cdp.config.identity_attributes import _declared
    from cdp.config.matching import Comparison
    from cdp.identity.probabilistic import comparison, eager_spark_api

    with _declared(tuple(COMPARED)):
        comps = [Comparison(attribute=c, method=m, thresholds=t) for c, (m, t) in COMPARED.items()]
    schema = "record_id string, " + ", ".join(f"{c} {'date' if c == 'dob' else 'string'}" for c in COMPARED)
    db_api = eager_spark_api(spark)
    empty = spark.createDataFrame([], schema)
    linker = Linker(db_api.register(empty), SettingsCreator(
        link_type="dedupe_only", unique_id_column_name="record_id", comparisons=[comparison(c) for c in comps],
        blocking_rules_to_generate_predictions=[], retain_intermediate_calculation_columns=True))

    def record(i: int, values: dict) -> dict:
        out = {"record_id": f"r{i}", **dict.fromkeys(COMPARED)}
        for c, v in values.items():
            out[c] = date.fromisoformat(v) if c == "dob" and v else v
        return out

    for values, levels in PAIRS:
        left = record(1, {c: v[0] for c, v in values.items()})
        right = record(2, {c: v[1] for c, v in values.items()})
        scored = linker.inference.score_pair(left, right).as_spark_dataframe().first().asDict()
        assert {c: scored[f"gamma_{c}"] for c in levels} == levels


def test_a_transposed_digit_is_not_a_veto_with_damerau_levenshtein(spark):
    from splink import SparkAPI

    from cdp.config.identity_attributes import _declared
    from cdp.config.matching import Comparison
    from cdp.identity.probabilistic import agrees

    SparkAPI(spark_session=spark)  # registers Splink's similarity functions, as a matching run does
    with _declared(("nid",)):
        dl = Comparison(attribute="nid", method="damerau_levenshtein", thresholds=[1])
        lev = Comparison(attribute="nid", method="levenshtein", thresholds=[1])
    row = spark.createDataFrame([("6988048", "6988084")], "l string, r string").select(
        agrees(dl, "l", "r").alias("dl"), agrees(lev, "l", "r").alias("lev")).first()
    assert (row.dl, row.lev) == (True, False)


# ------------------------------------------------------------------------------------------ end to end
FEBRL_ROWS = [
    # rec_id, given_name, surname, street_number, address_1, address_2, suburb, postcode, state, dob, soc_sec_id
    ("rec-1-org", "lachlan", "berry", "69", "giblin street", "killarney", "bittern", "4814", "qld", "19990219", "7364009"),
    ("rec-1-dup-0", "berry", "lachlan", "69", "giblin street", "killarney", "bittern", "4814", "qld", "19990219", "7364090"),
    ("rec-2-org", "deakin", "sondergeld", "48", "goldfinch circuit", "kooltuo", "canterbury", "2776", "vic", "19600210", "2635962"),
    ("rec-2-dup-0", "deakin", "sondergeld", "48", "goldfinch circ", "kooltuo", "canterbury", "2776", "vic", "19600230", "263-5962"),
    ("rec-3-org", "kayla", "harrington", "", "maltby circuit", "coaling", "coolaroo", "3465", "nsw", "19150612", "9004242"),
    ("rec-4-org", "luke", "purdon", "23", "ramsay place", "mirani", "garbutt", "2260", "vic", "19831024", "1835799"),
]


@pytest.mark.slow
def test_the_febrl_example_resolves_with_custom_attributes_and_no_code(spark, tmp_path):
    """conf/examples/febrl laid over conf/: the social security number is a custom attribute the source maps;
    swapped names, a transposed digit, and a birth date that does not exist (19600230: the record stays, the
    value is flagged) are one person each; the links name the custom attribute."""
    from cdp.io import Lakehouse
    from cdp.pipeline import run_pipeline
    from cdp.tables import CUSTOMERS, IDENTITY_LINKS, IDENTITY_MAP, IDENTITY_RECORDS

    conf = tmp_path / "conf"
    shutil.copytree(DEFAULT_CONF_DIR, conf, ignore=shutil.ignore_patterns("examples"))
    shutil.rmtree(conf / "sources")
    shutil.copytree(FEBRL, conf, dirs_exist_ok=True)
    landing = tmp_path / "landing" / "febrl"
    landing.mkdir(parents=True)
    with (landing / "people.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rec_id", " given_name", " surname", " street_number", " address_1", " address_2", " suburb",
                    " postcode", " state", " date_of_birth", " soc_sec_id"])
        w.writerows([[v if i == 0 else f" {v}" for i, v in enumerate(row)] for row in FEBRL_ROWS])
    settings = test_settings(conf, tmp_path)
    run_pipeline(settings, spark, steps=["bronze", "silver", "identity"])
    lake = Lakehouse.from_settings(spark, settings)
    ids = {r.source_record_key: r.customer_id for r in lake.read(IDENTITY_MAP).collect()}
    persons = {k: k.split("-")[1] for k in ids}
    assert len(ids) == len(FEBRL_ROWS)
    assert {(a, b) for a in ids for b in ids if a < b and ids[a] == ids[b]} == \
        {(a, b) for a in ids for b in ids if a < b and persons[a] == persons[b]}
    flagged = lake.read(IDENTITY_RECORDS).where("source_record_key = 'rec-2-dup-0'").first()
    assert flagged.birth_date is None and flagged.custom_attributes["soc_sec_id"] == "2635962"
    assert lake.read(IDENTITY_LINKS).where("rule = 'soc_sec_id_exact'").count() == 1
    nids = {r.customer_id: r.custom_attributes.get("soc_sec_id") for r in lake.read(CUSTOMERS).collect()}
    assert nids[ids["rec-4-org"]] == "1835799"
