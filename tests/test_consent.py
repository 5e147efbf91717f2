"""Consent end to end on the demo pipeline (the unit cases are in tests/test_profile.py and tests/test_churn.py):
the CRM's opt-ins and the email platform's unsubscribes reach the profile with their time stamps, the latest
statement winning, and no next-best action is on a channel the customer has not consented to."""

from __future__ import annotations

import pytest
from frame_asserts import assert_frame_equal
from pyspark.sql import Window
from pyspark.sql import functions as F

from cdp.config.churn import load_churn_config
from cdp.config.profile import load_profile_config
from cdp.ml.actions import next_best_action
from cdp.silver.standardize import parse_bool
from cdp.tables import (
    CHURN_SCORES,
    CUSTOMER_PROFILE,
    CUSTOMER_VALUE,
    IDENTITY_MAP,
    INTERACTIONS,
    NEXT_BEST_ACTION,
)


@pytest.mark.slow
def test_the_latest_consent_statement_of_any_source_reaches_the_profile(pipeline_demo):
    settings, lake, _ = pipeline_demo
    consent = load_profile_config(settings).consent
    # re-derived here another way (a window's last row, not max_by): every statement of every source record
    ids = lake.read(IDENTITY_MAP).select(F.col("record_id").alias("identity_record_id"), "customer_id")
    events = lake.read(INTERACTIONS).join(ids, "identity_record_id")
    given = parse_bool(F.col("attributes")[consent.marketing_attribute])   # the CRM's yes/no/1/0 spellings
    statements = events.select(
        "customer_id", "event_ts",
        F.when(F.col("event_type").isin(consent.unsubscribe_event_types), F.lit(False))
        .otherwise(given).alias("consent"),
    ).where(F.col("consent").isNotNull())
    # at one instant the more restrictive statement wins: False sorts first
    latest = Window.partitionBy("customer_id").orderBy(F.col("event_ts").desc(), F.col("consent").asc())
    expected = (statements.withColumn("n", F.row_number().over(latest)).where("n = 1")
                .select("customer_id", F.col("consent").alias("marketing_consent"),
                        F.col("event_ts").alias("marketing_consent_at")))
    profile = lake.read(CUSTOMER_PROFILE).where(F.col("marketing_consent").isNotNull())
    assert_frame_equal(profile.select("customer_id", "marketing_consent", "marketing_consent_at"), expected)
    # both kinds of statement occur in the demo, and unsubscribes withdrew consent given before
    kinds = {r.marketing_consent for r in expected.select("marketing_consent").distinct().collect()}
    assert kinds == {True, False}
    withdrawn = (lake.read(CUSTOMER_PROFILE).where(~F.col("marketing_consent")
                                                   & (F.col("email_unsubscribed_at") == F.col("marketing_consent_at"))))
    assert withdrawn.count() > 0


@pytest.mark.slow
def test_no_action_is_on_a_channel_without_consent(pipeline_demo, spark):
    settings, lake, _ = pipeline_demo
    config = load_churn_config(settings)
    columns = config.actions.consent_columns
    stored = lake.read(NEXT_BEST_ACTION).join(
        lake.read(CUSTOMER_PROFILE).select("customer_id", *set(columns.values())), "customer_id", "left")
    for channel, column in columns.items():
        assert stored.where((F.col("channel") == channel) & ~F.coalesce(F.col(column), F.lit(False))).count() == 0

    # The demo's at-risk customers again, every consent given, then every consent withdrawn: the rules that contact
    # someone with consent hold exactly those customers back without it, saying why.
    complaints = spark.createDataFrame([], "customer_id string, last_complaint_at timestamp")

    def actions(consent: bool):
        profile = lake.read(CUSTOMER_PROFILE)
        for column in set(columns.values()):
            profile = profile.withColumn(column, F.lit(consent))
        return next_best_action(lake.read(CHURN_SCORES), lake.read(CUSTOMER_VALUE), profile, complaints,
                                config.actions, config.scoring)

    given, withdrawn = actions(True), actions(False)
    contacted = {r.customer_id for r in given.where(F.col("channel").isNotNull()).select("customer_id").collect()}
    assert contacted, "no demo customer is contacted even with consent: the check below would prove nothing"
    assert withdrawn.where(F.col("channel").isNotNull()).count() == 0
    held = withdrawn.where(F.col("reason") == "a rule matched, but the customer has not consented to its channel")
    assert {r.customer_id for r in held.select("customer_id").collect()} == contacted
