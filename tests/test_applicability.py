"""Which steps a company's data can feed, decided from its configuration before Spark starts: a person register
has no journeys, a till export is a whole company with no edit to journeys.yaml (its purchases declared by its
source), clicks without orders have no value to compute. `cdp check` says ok or not applicable (and why) per
section, validates only what the planned steps read, and names a missing file with what it configures."""

from __future__ import annotations

import shutil

import pytest
from examples import readme_pos_source

from cdp.check import check_configuration
from cdp.config import DEFAULT_CONF_DIR, load_settings
from cdp.config.journeys import JourneyConfig, Purchases
from cdp.errors import ConfigError
from cdp.journey.touchpoints import is_purchase

NO_INTERACTIONS = "no source produces interactions (silver.interaction in conf/sources/)"
NO_PURCHASES = "no source produces purchases"


def company(conf_dir, root, sources: dict[str, str], examples: str | None = None, drop: tuple[str, ...] = ()):
    """The suite's configuration with `sources` (file name -> YAML) alone, an example's files laid over it."""
    conf = root / "conf"
    shutil.copytree(conf_dir, conf)
    shutil.rmtree(conf / "sources")
    if examples:
        shutil.copytree(DEFAULT_CONF_DIR / "examples" / examples, conf, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.md"))
    else:
        (conf / "sources").mkdir()
    for name, text in sources.items():
        (conf / "sources" / name).write_text(text, encoding="utf-8")
    for name in drop:
        (conf / name).unlink()
    return load_settings("local", conf_dir=conf)


def statuses(settings, steps=None) -> dict[str, str]:
    return {s.name: s.status for s in check_configuration(settings, steps).sections}


CLICKS = (DEFAULT_CONF_DIR / "sources" / "clickstream_events.yaml").read_text()
ALL_OK = {"settings": "ok", "sources": "ok", "identity": "ok", "journeys": "ok", "attribution": "ok",
          "profile": "ok", "segments": "ok", "churn": "ok", "privacy": "ok", "contracts": "ok"}
COMPANIES = {
    # (sources, example laid over conf/, sections as cdp check reports them, steps not applicable -> why)
    "person_register": ({}, "febrl", {**ALL_OK, "journeys": "n/a", "attribution": "n/a", "profile": "n/a",
                                      "segments": "n/a", "churn": "n/a"},
                        {s: NO_INTERACTIONS for s in ("journeys", "profiles", "segments", "churn_features",
                                                      "churn_model", "churn_scores", "customer_value",
                                                      "next_best_action")}),
    "point_of_sale": ({"pos_sales.yaml": readme_pos_source()}, None, ALL_OK, {}),
    "clicks_without_orders": ({"clickstream_events.yaml": CLICKS}, None, ALL_OK,
                              {"customer_value": NO_PURCHASES, "next_best_action": NO_PURCHASES}),
}


@pytest.mark.parametrize("case", COMPANIES, ids=list(COMPANIES))
def test_each_company_gets_the_steps_its_data_can_feed(conf_dir, tmp_path, case):
    sources, example, sections, not_applicable = COMPANIES[case]
    checked = check_configuration(company(conf_dir, tmp_path, sources, example))
    assert {s.name: s.status for s in checked.sections} == sections
    found = {step: checked.not_applicable(step) for step in ("identity", "journeys", "profiles", "segments",
                                                             "churn_features", "churn_model", "churn_scores",
                                                             "customer_value", "next_best_action", "protect_pii")}
    assert sorted(s for s, why in found.items() if why) == sorted(not_applicable)
    for step, why in not_applicable.items():
        assert found[step].startswith(why), (step, found[step])


def test_a_till_export_takes_its_purchases_from_its_source(conf_dir, tmp_path):
    settings = company(conf_dir, tmp_path, {"pos_sales.yaml": readme_pos_source()})
    journeys = next(s for s in check_configuration(settings).sections if s.name == "journeys")
    assert "purchases store_purchase;" in journeys.summary
    assert "event types named that no source produces (they match nothing)" in journeys.summary


def test_a_missing_file_is_named_with_what_it_configures_only_when_a_planned_step_reads_it(conf_dir, tmp_path):
    settings = company(conf_dir, tmp_path, {"pos_sales.yaml": readme_pos_source()}, drop=("churn.yaml",))
    assert statuses(settings, ["bronze", "silver", "identity"]) == {
        "settings": "ok", "sources": "ok", "identity": "ok", "contracts": "ok"}
    with pytest.raises(ConfigError) as error:
        check_configuration(settings, ["customer_value"])
    assert str(error.value) == (
        f"{tmp_path / 'conf' / 'churn.yaml'}: not found; this file configures churn prediction, customer value and "
        "retention actions, which step(s) customer_value need: copy the project's conf/churn.yaml there, or leave "
        "the step(s) out (cdp run --steps ...)")


def test_a_register_without_journey_files_still_checks(conf_dir, tmp_path):
    settings = company(conf_dir, tmp_path, {}, "febrl", drop=("journeys.yaml", "churn.yaml"))
    journeys = next(s for s in check_configuration(settings).sections if s.name == "journeys")
    assert (journeys.status, journeys.summary) == (
        "n/a", f"{NO_INTERACTIONS}; {tmp_path / 'conf' / 'journeys.yaml'} is absent (it configures the customer "
        "journeys: sessions, stages, incomplete purchases, funnels, paths)")


@pytest.mark.parametrize("event_type, amount, min_amount, purchase", [
    ("order_placed", 25.0, 0.01, True),
    ("order_placed", 0.0, 0.01, False),      # a free order (a replacement, a 100% voucher) is no purchase ...
    ("order_placed", 0.0, 0.0, True),        # ... unless min_amount says so
    ("order_placed", None, 0.0, False),      # no amount, no purchase
    ("page_view", 25.0, 0.01, False),
])
def test_what_a_purchase_is(spark, event_type, amount, min_amount, purchase):
    config = JourneyConfig(purchases=Purchases(event_types=["order_placed"], min_amount=min_amount))
    row = spark.createDataFrame([(event_type, amount)], "event_type string, amount double")
    assert row.select(is_purchase(config)).first()[0] is purchase


def test_a_lakehouse_refuses_a_run_of_other_sources_unless_told(spark, conf_dir, tmp_path):
    """A company's own conf pointed at the demo's lakehouse by mistake stops before any step, in one line."""
    from datetime import datetime

    from rich.console import Console

    from cdp.io import Lakehouse
    from cdp.pipeline import foreign_lakehouse, run_pipeline
    from cdp.tables import INGEST_LOG

    settings = company(conf_dir, tmp_path, {"pos_sales.yaml": readme_pos_source()})
    lake = Lakehouse.from_settings(spark, settings)
    lake.append(lake.rows(INGEST_LOG, [(s, f"/landing/{s}.csv", 1, 1, "run-0", datetime(2025, 1, 1), 1, 1, 0)
                                       for s in ("crm_customers", "ecommerce_orders")]), INGEST_LOG)
    with pytest.raises(ConfigError) as refused:
        run_pipeline(settings, spark, ["reconcile"], Console(quiet=True), heartbeat=0)
    assert str(refused.value) == (
        f"the lakehouse {lake.root} was built from sources crm_customers, ecommerce_orders (audit.ingest_log), and "
        "this configuration's sources (pos_sales) share none with them: point paths.lakehouse (and "
        "mlflow.tracking_uri) at a folder of its own, or give --allow-new-sources to add them to this lakehouse")
    assert foreign_lakehouse(lake, ["pos_sales", "crm_customers"]) is None   # a source beside the others: as today
    ctx = run_pipeline(settings, spark, ["reconcile"], Console(quiet=True), heartbeat=0, allow_new_sources=True)
    assert ctx.status == "succeeded"
