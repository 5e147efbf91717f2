"""Touchpoints: silver.interactions joined to their customer through gold.identity_map. Every journey, profile,
segment and KPI table starts here.

An interaction belongs to the customer of the identity record its identifiers make (`identity_record_id`);
one whose source carries no identifier, or whose identity record is anonymous, belongs to nobody: it stays out
of the customer tables and is counted (`unattributed`), never silently dropped.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.config.journeys import JourneyConfig

TOUCHPOINT_COLUMNS = ["customer_id", "interaction_id", "source", "channel", "event_type", "event_ts", "event_date",
                      "amount", "currency", "product_id", "category", "campaign_id", "csat", "nps", "stars", "text",
                      "reason", "outcome", "attributes"]


def with_owner(interactions: DataFrame, identity_map: DataFrame) -> DataFrame:
    """Every interaction (TOUCHPOINT_COLUMNS plus identity_record_id) with the customer_id of its identity record,
    null when it belongs to nobody: one join serves both the touchpoints and the count of the unattributed."""
    owners = identity_map.select(F.col("record_id").alias("identity_record_id"), "customer_id")
    return (interactions.join(owners, "identity_record_id", "left")
            .select(*TOUCHPOINT_COLUMNS, "identity_record_id"))


def owned(interactions_with_owner: DataFrame) -> DataFrame:
    """The touchpoints (TOUCHPOINT_COLUMNS) of a `with_owner` frame: the interactions that belong to a customer."""
    return interactions_with_owner.where(F.col("customer_id").isNotNull()).select(*TOUCHPOINT_COLUMNS)


def unowned(interactions_with_owner: DataFrame) -> DataFrame:
    """(source, reason, interactions) of a `with_owner` frame's interactions that belong to no customer: the source
    carries no identifier ('no_identifiers') or the record they make is anonymous or quarantined
    ('anonymous_record')."""
    return (interactions_with_owner.where(F.col("customer_id").isNull())
            .select("source", F.when(F.col("identity_record_id").isNull(), "no_identifiers")
                    .otherwise("anonymous_record").alias("reason"))
            .groupBy("source", "reason").agg(F.count(F.lit(1)).alias("interactions")))


def customer_touchpoints(interactions: DataFrame, identity_map: DataFrame) -> DataFrame:
    """silver.interactions rows that belong to a customer, with its customer_id (TOUCHPOINT_COLUMNS)."""
    return owned(with_owner(interactions, identity_map))


def is_purchase(config: JourneyConfig) -> Column:
    """True for a touchpoint that is a purchase (an event type of purchases.event_types, as `checked_journey_config`
    completes it from the sources, with an amount of at least purchases.min_amount)."""
    p = config.purchases
    return (F.col("event_type").isin(p.event_types)
            & F.coalesce(F.col("amount") >= F.lit(p.min_amount), F.lit(False)))
