"""Golden customer records (gold.customers): one row per customer_id, value of each attribute chosen by
the survivorship rule configured in conf/identity.yaml `survivorship` (default most_recent)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.config.identity import GOLDEN_ATTRIBUTES, IdentityConfig, Survivorship


def _order(attribute: str, rule: Survivorship) -> Column:
    """Ordering key; the record with the LARGEST key wins. Null when the record has no value (never wins)."""
    recency = [F.col("observed_at"), F.col("record_id")]  # ties between equal timestamps: largest record id
    if rule.rule == "source_priority":
        n = len(rule.sources)
        prio = F.coalesce(*[F.when(F.col("source") == s, F.lit(n - i)) for i, s in enumerate(rule.sources)], F.lit(0))
        key = F.struct(prio.alias("p"), *recency)
    else:
        key = F.struct(*recency)
    return F.when(F.col(attribute).isNotNull(), key)


def _chosen(attribute: str, config: IdentityConfig) -> Column:
    return F.max_by(F.col(attribute), _order(attribute, config.survivorship.get(attribute, Survivorship())))


def golden_records(records: DataFrame, identity_map: DataFrame, config: IdentityConfig) -> DataFrame:
    """records (clean identity records, custom attributes as columns) + identity_map(record_id, customer_id)
    -> gold.customers rows; the custom attributes are chosen one by one too and kept as a map (as text)."""
    joined = records.join(identity_map.select("record_id", "customer_id"), "record_id")
    custom = list(config.custom_attributes)
    chosen_custom = (F.map_filter(F.create_map(*[x for a in custom for x in (F.lit(a), _chosen(a, config).cast("string"))]),
                                  lambda _k, v: v.isNotNull()) if custom else F.create_map().cast("map<string,string>"))
    return joined.groupBy("customer_id").agg(
        *[_chosen(a, config).alias(a) for a in GOLDEN_ATTRIBUTES],
        chosen_custom.alias("custom_attributes"),
        F.count("*").alias("records"),
        F.array_sort(F.collect_set("source")).alias("sources"),
        F.min("observed_at").alias("first_seen"),
        F.max("observed_at").alias("last_seen"),
    ).select("customer_id", *GOLDEN_ATTRIBUTES, "custom_attributes", "records", "sources", "first_seen", "last_seen")
