"""Customer facts at customer grain (jaffle_shop's customers.sql), in as few passes over the touchpoints as the
grains allow: one aggregation for every fact that is a plain per-customer aggregate (tenure, email, satisfaction,
voice of the customer, sentiment, consent), one per channel (the channel mix) and one per contact reason (top
reasons); the purchases are cdp.profile.rfm's. Each function takes touchpoints (already cut at as_of) and returns
(customer_id, ...) for the profile's final join; every fact's definition is one named column expression below."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.config.profile import Consent, Events, Sentiment
from cdp.profile.sentiment import sentiment_score
from cdp.silver.standardize import parse_bool, to_date_safe

SIGNUP_ATTRIBUTE = "signup_date"  # CRM attribute: when the account was opened (yyyy-MM-dd)
TOP_REASONS = 3


def _count_if(condition: Column) -> Column:
    return F.count(F.when(condition, F.lit(1)))


def _event_in(event_types: list[str]) -> Column:
    return F.col("event_type").isin(event_types)


def _ratio(numerator: str, denominator: str) -> Column:
    """numerator / denominator capped at 1 (an open may arrive without its send); NULL over no emails."""
    return F.when(F.col(denominator) > 0, F.least(F.lit(1.0), F.col(numerator) / F.col(denominator)))


# ---------------------------------------------------------------- one aggregation: the per-customer facts

def tenure_facts() -> list[Column]:
    """first_touch_ts and signup_date: the earliest touchpoint and the earliest CRM signup date."""
    # the signup date counts because an account opened before the data window starts is older than its touchpoints
    signup = to_date_safe(F.try_element_at("attributes", F.lit(SIGNUP_ATTRIBUTE)))
    return [F.min("event_ts").alias("first_touch_ts"), F.min(signup).alias("signup_date")]


def email_facts(events: Events) -> list[Column]:
    """emails_received, _opened, _clicked: counted in emails (campaigns), so an email opened twice is one open."""
    email = F.coalesce("campaign_id", "interaction_id")

    def emails(event_types: list[str]) -> Column:
        # a set per customer (campaigns number in the hundreds), where count_distinct would expand every row
        return F.size(F.collect_set(F.when(_event_in(event_types), email)))

    return [emails(events.email_sent).alias("emails_received"), emails(events.email_open).alias("_opened"),
            emails(events.email_click).alias("_clicked")]


def satisfaction_facts() -> list[Column]:
    """csat_latest, csat_avg, nps_latest, nps_avg: the latest answer holding each score, and the mean."""
    def latest(score: str) -> Column:
        # max_by skips rows whose ordering is NULL: the latest answer that holds this score
        return F.max_by(score, F.when(F.col(score).isNotNull(), F.struct("event_ts", "interaction_id")))

    return [latest("csat").alias("csat_latest"), F.avg("csat").alias("csat_avg"),
            latest("nps").alias("nps_latest"), F.avg("nps").alias("nps_avg")]


def voice_facts(events: Events) -> list[Column]:
    """review_stars_avg, reviews, social_mentions, suggestions."""
    return [F.avg(F.when(_event_in(events.review), F.col("stars"))).alias("review_stars_avg"),
            _count_if(_event_in(events.review)).alias("reviews"),
            _count_if(_event_in(events.social_post)).alias("social_mentions"),
            _count_if(_event_in(events.suggestion)).alias("suggestions")]


def sentiment_facts(config: Sentiment) -> list[Column]:
    """sentiment_score: the mean score of the customer's own texts (config.channels)."""
    # a text with no lexicon word has a NULL score: avg leaves it out rather than counting it as neutral
    written = F.col("channel").isin(config.channels) & F.col("text").isNotNull()
    return [F.avg(F.when(written, sentiment_score("text", config))).alias("sentiment_score")]


def consent_facts(config: Consent) -> list[Column]:
    """marketing_consent, marketing_consent_at, email_unsubscribed_at: the latest statement wins."""
    # A statement is a CRM opt-in value or an unsubscribe, so an unsubscribe after an opt-in withdraws consent;
    # at the same instant the more restrictive one wins (when in doubt, do not email).
    unsubscribe = _event_in(config.unsubscribe_event_types)
    given = parse_bool(F.try_element_at("attributes", F.lit(config.marketing_attribute)))
    value = F.when(unsubscribe, F.lit(False)).otherwise(given)
    restrictive = F.when(unsubscribe, 2).when(~given, 1).otherwise(0)
    return [F.max_by(value, F.when(value.isNotNull(), F.struct("event_ts", restrictive))).alias("marketing_consent"),
            F.max(F.when(value.isNotNull(), F.col("event_ts"))).alias("marketing_consent_at"),
            F.max(F.when(unsubscribe, F.col("event_ts"))).alias("email_unsubscribed_at")]


def customer_aggregates(touchpoints: DataFrame, events: Events, consent: Consent, sentiment: Sentiment) -> DataFrame:
    """Every per-customer fact of one aggregation over the touchpoints: tenure, email engagement, satisfaction,
    voice of the customer, sentiment and consent (purchases: cdp.profile.rfm, over the purchases alone)."""
    facts = (tenure_facts() + email_facts(events) + satisfaction_facts() + voice_facts(events)
             + sentiment_facts(sentiment) + consent_facts(consent))
    nps = F.col("nps_latest")
    return (touchpoints.groupBy("customer_id").agg(*facts)
            .withColumn("email_open_rate", _ratio("_opened", "emails_received"))
            .withColumn("email_click_rate", _ratio("_clicked", "emails_received"))
            .withColumn("nps_category", F.when(nps >= 9, "promoter").when(nps >= 7, "passive")   # 9-10, 7-8
                        .when(nps.isNotNull(), "detractor"))                                     # 0-6
            .drop("_opened", "_clicked"))


# ---------------------------------------------------------------- the facts of a finer grain

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


def purchases_not_completed(incomplete: DataFrame) -> DataFrame:
    """(customer_id, abandoned_carts, failed_payments, cancelled_orders) from gold.incomplete_purchases, so the
    profile counts them exactly as the journey step defines them (conf/journeys.yaml, abandonment)."""
    def total(kind: str) -> Column:
        return F.sum(F.when(F.col("kind") == kind, F.col("occurrences")).otherwise(0)).cast("long")

    return incomplete.groupBy("customer_id").agg(total("abandoned_cart").alias("abandoned_carts"),
                                                 total("failed_payment").alias("failed_payments"),
                                                 total("cancelled_order").alias("cancelled_orders"))
