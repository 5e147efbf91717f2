"""Touchpoints: silver.interactions joined to their customer through gold.identity_map. Every journey, profile,
segment and KPI table starts here.

An interaction belongs to the customer of the identity record its identifiers make (`identity_record_id`);
one whose source carries no identifier, or whose identity record is anonymous, belongs to nobody: it stays out
of the customer tables and is counted (`unattributed`), never silently dropped.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

TOUCHPOINT_COLUMNS = ["customer_id", "interaction_id", "source", "channel", "event_type", "event_ts", "event_date",
                      "amount", "currency", "product_id", "category", "campaign_id", "csat", "nps", "stars", "text",
                      "reason", "outcome", "attributes"]


def customer_touchpoints(interactions: DataFrame, identity_map: DataFrame) -> DataFrame:
    """silver.interactions rows that belong to a customer, with its customer_id (TOUCHPOINT_COLUMNS)."""
    owners = identity_map.select(F.col("record_id").alias("identity_record_id"), "customer_id")
    return interactions.join(owners, "identity_record_id").select(*TOUCHPOINT_COLUMNS)


def unattributed(interactions: DataFrame, identity_map: DataFrame) -> DataFrame:
    """(source, reason, interactions) of the interactions that belong to no customer: the source carries no
    identifier ('no_identifiers') or the record they make is anonymous or quarantined ('anonymous_record')."""
    owners = identity_map.select(F.col("record_id").alias("identity_record_id"), F.lit(True).alias("_owned"))
    return (interactions.join(owners, "identity_record_id", "left").where(F.col("_owned").isNull())
            .select("source", F.when(F.col("identity_record_id").isNull(), "no_identifiers")
                    .otherwise("anonymous_record").alias("reason"))
            .groupBy("source", "reason").agg(F.count(F.lit(1)).alias("interactions")))
