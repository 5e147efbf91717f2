"""True incremental identity resolution (cdp.identity.incremental) on real Spark + Delta: a run on the records
added, changed and deleted since the last one gives the same gold identity tables as a full run of the same
input with the same saved model, and `plan_run` says when it cannot build on the last run."""

from __future__ import annotations

import pytest
from identity_records import NOW, frame, variant
from identity_records import rec as identity_record
from identity_runs import COMPARED, LATER, assert_same_tables, content, incremental_and_full, with_mode
from pyspark.sql import functions as F

from cdp.config.identity import load_identity_config
from cdp.errors import ConfigError
from cdp.identity.writer import resolve_identities
from cdp.io import Lakehouse
from cdp.tables import (
    IDENTITY_JUNK_VALUES,
    IDENTITY_LINKS,
    IDENTITY_MAP,
    IDENTITY_MATCH_SCORES,
    IDENTITY_RECORDS,
    IDENTITY_RUNS,
)


# ------------------------------------------------------------------- hand-built: the cases a region must reach
def rec(record_id: str, i: int = 0, **values) -> dict:
    """An identity record whose names are also in their matching form (what the household guard compares)."""
    for name in ("first_name", "last_name"):
        if name in values:
            values[f"{name}_match"] = values[name].lower()
    return identity_record(record_id, i, **values)


BEFORE = [
    # a family email: one person so far, with a nameless record linked through it
    rec("h:1", 1, email="family@x.com", first_name="Laura", last_name="Diaz", phone="+34600000001"),
    rec("h:2", 2, email="family@x.com", first_name="Laura", last_name="Diaz"),
    rec("h:3", 3, email="family@x.com", cookie_id="ck-3"),
    rec("h:4", 4, cookie_id="ck-3", device_id="dev-4"),
    # two people who will be bridged by a new record holding both phones
    rec("p:1", 1, phone="+34600000010", first_name="Marc", last_name="Puig"),
    rec("p:2", 2, phone="+34600000011", first_name="Marc", last_name="Puig", loyalty_id="L-2"),
    # a value about to become junk (max_records_per_value 4 below)
    *[rec(f"j:{i}", i, device_id="shared-dev", first_name="Ona") for i in range(1, 5)],
    # a shared family email whose records sit in three groups (Laura, Sergio, and a nameless record it leaves)
    rec("s:1", 1, email="fam2@x.com", first_name="Laura", phone="+34600000020"),
    rec("s:2", 2, email="fam2@x.com", first_name="Sergio"),
    rec("s:3", 3, email="fam2@x.com", cookie_id="ck-s3"),
    # far away: untouched by anything below
    rec("z:1", 1, email="zoe@x.com", first_name="Zoe"), rec("z:2", 2, email="zoe@x.com", cookie_id="ck-z"),
    # about to change its email and to be deleted
    rec("c:1", 1, email="carla@x.com", first_name="Carla"), rec("c:2", 2, email="carla@x.com", first_name="Carla"),
    rec("d:1", 1, loyalty_id="L-9", first_name="Dani"), rec("d:2", 2, loyalty_id="L-9", first_name="Dani"),
]
AFTER = [r for r in BEFORE if r["record_id"] not in ("c:2", "d:2")] + [
    # a second person on the family email: the value becomes shared, h:3 no longer links through it
    rec("h:5", 5, email="family@x.com", first_name="Sergio", last_name="Diaz"),
    rec("p:3", 5, phone="+34600000010", loyalty_id="L-2"),                    # bridges p:1 and p:2
    rec("j:5", 5, device_id="shared-dev", first_name="Ona"),                  # shared-dev: now 5 records, junk
    {**rec("c:2", 2, email="carla.new@x.com", first_name="Carla")},           # changed: leaves c:1
    # joins Laura's and the nameless record's groups, not through the email: the email block is only partly in
    # the region, and is still shared (Sergio names it too)
    rec("s:4", 5, phone="+34600000020", cookie_id="ck-s3", first_name="Laura"),
]


@pytest.mark.slow
def test_incremental_equals_full_on_the_cases_a_region_must_reach(spark, settings, tmp_path):
    config = variant(load_identity_config(settings), junk={"max_records_per_value": 4},
                     probabilistic=load_identity_config(settings).probabilistic.model_copy(update={"enabled": False}))
    first, full, inc = incremental_and_full(spark, settings, config, tmp_path, frame(spark, BEFORE), frame(spark, AFTER))
    assert_same_tables(first, full)
    # dirty: 4 new, 1 changed, 1 deleted, 4 holding the value that became junk; the region: their groups and the
    # blocks they touch (19 records, the deleted one included; j:5 names nobody once shared-dev is junk, so it
    # is anonymous and in no block), never the untouched z cluster nor Sergio
    assert (inc.dirty_records, inc.region_records) == (10, 19)
    ids = {r.record_id: r.customer_id for r in first.read(IDENTITY_MAP).collect()}
    assert ids["p:1"] == ids["p:2"] == ids["p:3"]                             # bridged
    assert ids["h:3"] != ids["h:1"] and ids["h:5"] != ids["h:1"]              # the shared email no longer links
    assert "d:2" not in ids and ids["c:1"] != ids["c:2"]
    assert not any(r.startswith("j:") for r in ids)                            # only a junk value linked them
    junk = {(r.attribute, r.value) for r in first.read(IDENTITY_JUNK_VALUES).collect()}
    assert ("device_id", "shared-dev") in junk
    untouched = first.read(IDENTITY_MAP).where(F.col("record_id").isin("z:1", "z:2", "s:2")).select("run_id").distinct()
    assert [r.run_id for r in untouched.collect()] == ["run-1"]               # not re-resolved
    assert not first.read(IDENTITY_LINKS).where("src = 's:1' AND dst = 's:3'").count()  # still a shared email
    runs = {r.run_id: (r.mode, r.dirty_records) for r in first.read(IDENTITY_RUNS).collect()}
    assert runs == {"run-1": ("full", None), "run-2": ("incremental", 10)}


@pytest.mark.slow
def test_a_configuration_change_makes_the_next_run_full(spark, settings, tmp_path):
    config = variant(load_identity_config(settings),
                     probabilistic=load_identity_config(settings).probabilistic.model_copy(update={"enabled": False}))
    lake = Lakehouse(spark, str(tmp_path / "lake"))
    lake.overwrite(frame(spark, BEFORE), IDENTITY_RECORDS)
    resolve_identities(lake, settings, "run-1", NOW, config)
    changed = variant(config, max_cluster_size=config.max_cluster_size + 1)
    with pytest.raises(ConfigError, match="identity.mode is incremental, but the identity configuration changed"):
        resolve_identities(lake, with_mode(settings, "incremental"), "run-2", LATER, changed)
    assert resolve_identities(lake, settings, "run-2", LATER, changed).mode == "full"
    before = {t: content(lake, t).collect() for t in COMPARED}
    again = resolve_identities(lake, settings, "run-3", LATER, changed)      # nothing changed since run-2
    assert (again.mode, again.reason, again.dirty_records) == ("incremental", "builds on run run-2", 0)
    assert {t: content(lake, t).collect() for t in COMPARED} == before


# -------------------------------------------------------------- generated data: Splink, guards, households
@pytest.mark.slow
def test_incremental_equals_full_rebuild_on_generated_data(pipeline_demo, spark, settings, tmp_path):
    _, source, _ = pipeline_demo    # the demo's identity records (60 generated customers, every source), read only
    records = source.read(IDENTITY_RECORDS).cache()
    # about 3% of the records arrive later, a few change their email or phone, a few are deleted
    late = F.abs(F.hash("record_id")) % 100 < 3
    changed = F.abs(F.hash("record_id", F.lit("c"))) % 100 < 1
    deleted = F.abs(F.hash("record_id", F.lit("d"))) % 100 < 1
    before = records.where(~late)
    after = (records.where(~deleted)
             .withColumn("email", F.when(changed, F.concat(F.lit("new."), "email")).otherwise(F.col("email")))
             .withColumn("phone", F.when(changed, F.lit(None)).otherwise(F.col("phone"))))
    config = load_identity_config(settings)
    first, full, inc = incremental_and_full(spark, settings, config, tmp_path, before, after)
    assert_same_tables(first, full)
    assert 0 < inc.dirty_records < inc.region_records < inc.records
    assert first.read(IDENTITY_MATCH_SCORES).count() > 0
    records.unpersist()
    print(f"\nincremental: {inc.records} records, {inc.dirty_records} dirty, {inc.region_records} re-resolved")
