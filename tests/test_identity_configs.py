"""Incremental identity resolution under every shape of identity configuration (issue #26): the shipped ones
(the demo's conf/identity.yaml, conf/examples/orders_only, conf/examples/febrl), which between them stand for
every shape: household guards or none, only custom attributes, a probabilistic section or none.
For each: a second run with nothing new is incremental and changes nothing, and a run on a few new records
gives the same gold identity tables as a full run of the same input (real Spark + Delta, and Splink where the
configuration matches probabilistically). The slow tier runs the whole identity step (gates and MERGEs included)
on every shape; the fast tier checks the pure core (`resolve_increment`) on the orders-only one, the issue's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pytest
from identity_records import NOW, frame
from identity_records import rec as identity_record
from identity_runs import COMPARED, LATER, assert_same_tables, content, incremental_and_full_from

from cdp.config import DEFAULT_CONF_DIR
from cdp.config.identity import IdentityConfig, load_identity_config
from cdp.identity.attributes import with_custom_attributes
from cdp.identity.incremental import IdentityState, resolve_increment
from cdp.identity.resolve import resolve
from cdp.identity.writer import resolve_identities
from cdp.io import Lakehouse
from cdp.tables import IDENTITY_CHANGES, IDENTITY_MAP, IDENTITY_MATCH_SCORES, IDENTITY_RECORDS, LINEAGE

DEMO = DEFAULT_CONF_DIR / "identity.yaml"
ORDERS_ONLY = DEFAULT_CONF_DIR / "examples" / "orders_only" / "identity.yaml"
FEBRL = DEFAULT_CONF_DIR / "examples" / "febrl" / "identity.yaml"


def person(record_id: str, i: int, first: str | None = None, last: str | None = None, born: str | None = None,
           customer_number: str | None = None, soc_sec_id: str | None = None, street_number: str | None = None,
           **values) -> dict:
    """An identity record as silver writes it: names also in their matching form, custom attributes (already
    normalised) in the map; every configuration reads what it declares and ignores the rest."""
    custom = {"customer_number": customer_number, "soc_sec_id": soc_sec_id, "street_number": street_number}
    return identity_record(
        record_id, i, first_name=first, last_name=last, first_name_match=first and first.lower(),
        last_name_match=last and last.lower(), birth_date=born and date.fromisoformat(born),
        custom_attributes={k: v for k, v in custom.items() if v is not None}, **values)


MADRID = {"street": "calle mayor 1", "postal_code": "28001", "city": "madrid"}
BARCELONA = {"street": "carrer gran 5", "postal_code": "08001", "city": "barcelona"}
# Laura and Sergio Diaz share a home and a family email; Marc's records share a phone; two strangers keyed the
# placeholder email; a nameless visitor holds only a cookie
BEFORE = [
    person("a:1", 1, "Laura", "Diaz", "1985-03-02", "K0001", "1111111", "1", email="laura.diaz@x.com",
           phone="+34600000001", **MADRID),
    person("a:2", 2, "Laura", "Diaz", "1985-03-02", "K0001", "1111111", "1", email="family.diaz@x.com", **MADRID),
    person("a:3", 3, "Lara", "Diaz", "1985-03-02", None, "1111117", "1", **MADRID),
    person("b:1", 1, "Sergio", "Diaz", "1983-07-15", "K0002", "2222222", "1", email="family.diaz@x.com", **MADRID),
    person("b:2", 2, "Sergio", "Diaz", "1983-07-15", "K0002", "2222222", email="sergio@x.com",
           phone="+34600000002"),
    person("c:1", 1, "Marc", "Puig", "1990-01-10", "K0003", "3333333", "5", phone="+34600000003", **BARCELONA),
    person("c:2", 2, "Marc", "Puig", "1990-01-10", "K0003", "3333333", "5", phone="+34600000003",
           loyalty_id="L-3", **BARCELONA),
    person("d:1", 1, "Ona", "Vidal", "2000-05-05", "K0004", "4444444", email="test@test.com"),
    person("d:2", 2, "Pau", "Roca", "1970-09-09", "K0005", "5555555", email="test@test.com"),
    person("e:1", 1, cookie_id="ck-1", device_id="dev-1"),
]
ADDED = [
    person("a:4", 5, "Laura", "Diaz", "1985-03-02", "K0001", "1111111", phone="+34600000001"),   # a known person
    person("c:3", 5, "Marc", "Puig", "1990-01-10", "K0003", "3333333", "5", email="marc@x.com", **BARCELONA),
    person("e:2", 5, "Sergio", "Diaz", cookie_id="ck-1", email="sergio@x.com"),     # the visitor was Sergio
    person("f:1", 5, "Nuria", "Soler", "1975-11-30", "K0006", "6666666", "9", email="nuria@x.com",
           street="avenida sol 9", postal_code="46001", city="valencia"),           # someone new
]


def shipped(path) -> Callable[[], IdentityConfig]:
    return lambda: load_identity_config(path=path)


@dataclass(frozen=True)
class Shape:
    name: str
    config: Callable[[], IdentityConfig]
    fast: bool = False     # also checked at the pure core in the fast tier (about 10 s each: one is enough there)
    model: bool = False    # trains, saves and scores with a Splink model


SHAPES = [
    Shape("demo", shipped(DEMO), model=True),                     # guards, derived attributes, junk, caps, Splink
    Shape("orders_only", shipped(ORDERS_ONLY), fast=True),        # one custom identifier, no guard, no model
    Shape("febrl", shipped(FEBRL), model=True),                   # custom attributes and Splink, no guard
]
# (the three cover each shape: household guards or none, custom attributes alone, a probabilistic section or none;
# variants of them cost the slow tier a minute each and found nothing the three did not)


def ids_of(identity_map) -> dict[str, str]:
    return {r.record_id: r.customer_id for r in identity_map.select("record_id", "customer_id").collect()}


# ------------------------------------------------------------------------- the pure core (fast tier)
@pytest.mark.parametrize("shape", [s for s in SHAPES if s.fast], ids=lambda s: s.name)
def test_the_incremental_core_finds_nothing_new_then_resolves_new_records(spark, settings, shape):
    """resolve_increment on the last resolution's output: nothing new is nothing dirty; new records re-resolve a
    region of their own people, where a known person keeps her id and a new one gets a new id."""
    config = shape.config()
    before = frame(spark, BEFORE)
    first = resolve(before, None, config, settings, run_id="run-1", now=NOW)

    def identity_columns(records):   # what the writer hands resolve_increment
        return records.drop(*LINEAGE).transform(with_custom_attributes(config))

    def increment(rows):
        state = IdentityState(previous_records=identity_columns(before), records=identity_columns(frame(spark, rows)),
                              identity_map=first.identity_map, junk_values=first.junk_values, saved=None)
        return resolve_increment(state, config, settings, run_id="run-2", now=LATER)

    assert increment(BEFORE).counts == {"records": len(BEFORE), "dirty": 0, "region": 0}
    grown = increment(BEFORE + ADDED)
    known, ids = ids_of(first.identity_map), ids_of(grown.tables.identity_map)
    # Laura's new record (her phone, customer number or social security number) takes her id; Nuria is new
    assert ids["a:4"] == ids["a:1"] == known["a:1"] and ids["f:1"] not in known.values()
    # the two strangers share nothing with the new records (their placeholder email is junk): not re-resolved
    assert not {r.record_id for r in grown.region_after.collect()} & {"d:1", "d:2"}


# ------------------------------------------------------------------- the whole identity step (slow tier)
def snapshot(lake: Lakehouse) -> dict:
    return {t.name: sorted(map(tuple, content(lake, t).collect()), key=repr) for t in COMPARED}


@pytest.mark.slow   # four identity steps each, with their gates
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_incremental_runs_work_under_every_identity_configuration(spark, settings, tmp_path, shape):
    config = shape.config()
    lake = Lakehouse(spark, str(tmp_path / "incremental"))
    lake.overwrite(frame(spark, BEFORE), IDENTITY_RECORDS)
    assert resolve_identities(lake, settings, "run-1", NOW, config).mode == "full"
    first = snapshot(lake)

    # nothing new landed (the same records written again: a new version of silver, not new content)
    lake.overwrite(frame(spark, BEFORE), IDENTITY_RECORDS)
    again = resolve_identities(lake, settings, "run-2", LATER, config)
    assert (again.mode, again.dirty_records) == ("incremental", 0)
    assert snapshot(lake) == first
    assert lake.read(IDENTITY_CHANGES).where("run_id = 'run-2'").count() == 0

    # a few new records: the incremental run equals a full run of the same input
    lake, full, inc = incremental_and_full_from(lake, settings, config, tmp_path / "full",
                                                frame(spark, BEFORE + ADDED), "run-3", LATER)
    assert_same_tables(lake, full, "run-3")
    assert inc.dirty_records == len(ADDED)
    ids = ids_of(lake.read(IDENTITY_MAP))
    assert ids["a:4"] == ids["a:1"] and ids["f:1"] not in {c for r, c in ids.items() if r != "f:1"}
    if shape.model:   # the saved model scored pairs (the region's and the new records' against the others)
        assert lake.read(IDENTITY_MATCH_SCORES).count() > 0


@pytest.mark.slow   # one Splink training (~20 s)
def test_a_training_pass_no_pair_can_feed_is_skipped_not_fatal(spark, settings):
    """The demo's model also learns from pairs agreeing on a birth date; a till export carries none (a
    point-of-sale company on the project's identity.yaml): that EM pass is skipped and the names' pass trains."""
    config = shipped(DEMO)()
    undated = [{**r, "birth_date": None} for r in BEFORE + ADDED]
    resolved = resolve(frame(spark, undated), None, config, settings, run_id="run-1", now=NOW)
    assert (resolved.matching.trained, resolved.matching.skipped_passes) == (True, ["birth_date"])
    assert ids_of(resolved.identity_map)["a:4"] == ids_of(resolved.identity_map)["a:1"]
