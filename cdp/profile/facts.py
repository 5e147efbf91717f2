"""Customer facts, one small aggregate per source of facts at customer grain (jaffle_shop's customers.sql): each
function takes touchpoints (already cut at as_of) and returns (customer_id, ...) for the final join."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.profile.config import Consent, Events
from cdp.silver.standardize import parse_bool, to_date_safe

SIGNUP_ATTRIBUTE = "signup_date"  # CRM attribute: when the account was opened (yyyy-MM-dd)
TOP_REASONS = 3


def _count_if(condition: Column) -> Column:
    return F.count(F.when(condition, F.lit(1)))


def _event_in(event_types: list[str]) -> Column:
    return F.col("event_type").isin(event_types)


def tenure_start(touchpoints: DataFrame) -> DataFrame:
    """(customer_id, first_touch_ts, signup_date): the earliest touchpoint and the earliest CRM signup date."""
    # the signup date counts because an account opened before the data window starts is older than its touchpoints
    signup = to_date_safe(F.try_element_at("attributes", F.lit(SIGNUP_ATTRIBUTE)))
    return (touchpoints.groupBy("customer_id")
            .agg(F.min("event_ts").alias("first_touch_ts"), F.min(signup).alias("signup_date")))


def channel_activity(touchpoints: DataFrame, events: Events) -> DataFrame:
    """(customer_id, interactions, channels_used, preferred_channel, channel_mix, last_interaction_ts/_channel)."""
    # An email we sent says nothing about where the customer likes to be: company_initiated events are left out.
    # preferred_channel: most interactions, then the most recently used, then the name (so ties are deterministic).
    per_channel = (touchpoints.where(~_event_in(events.company_initiated) & F.col("channel").isNotNull())
                   .groupBy("customer_id", "channel")
                   .agg(F.count(F.lit(1)).alias("n"), F.max("event_ts").alias("last_ts")))
    # shares are exact doubles (n / interactions); entries sorted by channel so equal inputs give equal maps
    mix = F.map_from_entries(F.transform(F.array_sort("_mix"), lambda x: F.struct(
        x["channel"].alias("key"), (x["n"] / F.col("interactions")).alias("value"))))
    return (per_channel.groupBy("customer_id")
            .agg(F.sum("n").alias("interactions"), F.count(F.lit(1)).alias("channels_used"),
                 F.max_by("channel", F.struct("n", "last_ts", "channel")).alias("preferred_channel"),
                 F.collect_list(F.struct("channel", "n")).alias("_mix"),
                 F.max("last_ts").alias("last_interaction_ts"),
                 F.max_by("channel", F.struct("last_ts", "channel")).alias("last_interaction_channel"))
            .select("customer_id", "interactions", "channels_used", "preferred_channel", mix.alias("channel_mix"),
                    "last_interaction_ts", "last_interaction_channel"))


def purchases_not_completed(incomplete: DataFrame) -> DataFrame:
    """(customer_id, abandoned_carts, failed_payments, cancelled_orders) from gold.incomplete_purchases, so the
    profile counts them exactly as the journey step defines them (conf/journeys.yaml, abandonment)."""
    def total(kind: str) -> Column:
        return F.sum(F.when(F.col("kind") == kind, F.col("occurrences")).otherwise(0)).cast("long")

    return incomplete.groupBy("customer_id").agg(total("abandoned_cart").alias("abandoned_carts"),
                                                 total("failed_payment").alias("failed_payments"),
                                                 total("cancelled_order").alias("cancelled_orders"))


def email_engagement(touchpoints: DataFrame, events: Events) -> DataFrame:
    """(customer_id, emails_received, email_open_rate, email_click_rate), counted in emails (campaigns)."""
    # An email opened twice is one open; rates are capped at 1 because an open may arrive without its send.
    email = F.coalesce("campaign_id", "interaction_id")

    def emails(event_types: list[str]) -> Column:
        # a set per customer (campaigns number in the hundreds): one aggregation, where count_distinct over
        # three columns would expand every row three times
        return F.size(F.collect_set(F.when(_event_in(event_types), email)))

    kinds = events.email_sent + events.email_open + events.email_click
    counts = (touchpoints.where(_event_in(kinds)).groupBy("customer_id")
              .agg(emails(events.email_sent).alias("emails_received"), emails(events.email_open).alias("_opened"),
                   emails(events.email_click).alias("_clicked")))
    ratio = F.when(F.col("emails_received") > 0, F.lit(1.0) / F.col("emails_received"))
    return counts.select("customer_id", "emails_received",
                         F.least(F.lit(1.0), F.col("_opened") * ratio).alias("email_open_rate"),
                         F.least(F.lit(1.0), F.col("_clicked") * ratio).alias("email_click_rate"))


def contact_center(touchpoints: DataFrame, events: Events, complaint_reasons: list[str]) -> DataFrame:
    """(customer_id, callcenter_contacts, complaints, top_contact_reasons) of the contacts the customer made."""
    # top reasons: most frequent first; on equal counts the most recent first (then by name: deterministic)
    per_reason = (touchpoints.where(_event_in(events.contact)).groupBy("customer_id", "reason")
                  .agg(F.count(F.lit(1)).alias("n"), F.max("event_ts").alias("last_ts")))
    ranked = F.sort_array(F.collect_list(F.when(F.col("reason").isNotNull(), F.struct("n", "last_ts", "reason"))),
                          asc=False)
    return (per_reason.groupBy("customer_id")
            .agg(F.sum("n").alias("callcenter_contacts"),
                 F.sum(F.when(F.col("reason").isin(complaint_reasons), F.col("n")).otherwise(0)).alias("complaints"),
                 F.slice(F.transform(ranked, lambda x: x["reason"]), 1, TOP_REASONS).alias("top_contact_reasons")))


def satisfaction(touchpoints: DataFrame) -> DataFrame:
    """(customer_id, csat_latest, csat_avg, nps_latest, nps_avg, nps_category from the latest NPS answer)."""
    def latest(score: str) -> Column:
        # max_by skips rows whose ordering is NULL: the latest answer that holds this score
        return F.max_by(score, F.when(F.col(score).isNotNull(), F.struct("event_ts", "interaction_id")))

    answers = touchpoints.where(F.col("csat").isNotNull() | F.col("nps").isNotNull())
    nps = F.col("nps_latest")
    return (answers.groupBy("customer_id")
            .agg(latest("csat").alias("csat_latest"), F.avg("csat").alias("csat_avg"),
                 latest("nps").alias("nps_latest"), F.avg("nps").alias("nps_avg"))
            .withColumn("nps_category", F.when(nps >= 9, "promoter").when(nps >= 7, "passive")   # 9-10, 7-8
                        .when(nps.isNotNull(), "detractor")))                                    # 0-6


def voice_of_customer(touchpoints: DataFrame, events: Events) -> DataFrame:
    """(customer_id, review_stars_avg, reviews, social_mentions, suggestions)."""
    kinds = events.review + events.social_post + events.suggestion
    return (touchpoints.where(_event_in(kinds)).groupBy("customer_id")
            .agg(F.avg(F.when(_event_in(events.review), F.col("stars"))).alias("review_stars_avg"),
                 _count_if(_event_in(events.review)).alias("reviews"),
                 _count_if(_event_in(events.social_post)).alias("social_mentions"),
                 _count_if(_event_in(events.suggestion)).alias("suggestions")))


def consent_state(touchpoints: DataFrame, config: Consent) -> DataFrame:
    """(customer_id, marketing_consent, marketing_consent_at, email_unsubscribed_at): the latest statement wins."""
    # A statement is a CRM opt-in value or an unsubscribe, so an unsubscribe after an opt-in withdraws consent;
    # at the same instant the more restrictive one wins (when in doubt, do not email).
    unsubscribe = _event_in(config.unsubscribe_event_types)
    given = parse_bool(F.try_element_at("attributes", F.lit(config.marketing_attribute)))
    value = F.when(unsubscribe, F.lit(False)).otherwise(given)
    restrictive = F.when(unsubscribe, 2).when(~given, 1).otherwise(0)
    said = (touchpoints.select("customer_id", "event_ts", value.alias("_consent"), restrictive.alias("_rank"),
                               unsubscribe.alias("_unsubscribe"))
            .where(F.col("_consent").isNotNull()))
    return (said.groupBy("customer_id")
            .agg(F.max_by("_consent", F.struct("event_ts", "_rank")).alias("marketing_consent"),
                 F.max("event_ts").alias("marketing_consent_at"),
                 F.max(F.when(F.col("_unsubscribe"), F.col("event_ts"))).alias("email_unsubscribed_at")))
