"""Junk identifier values: placeholders (blocklists) and values held by too many records are nulled before
matching, so they link nothing, and are reported in gold.identity_junk_values."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.config.identity import IdentityConfig
from cdp.frames import cut_lineage
from cdp.identity.rules import is_blocklisted


def junk_pairs(records: DataFrame, config: IdentityConfig) -> DataFrame:
    """(record_id, attribute, value, blocklisted): one row per non-null value of each attribute junk is checked on
    (blocklisted values lower-cased and trimmed, as reported)."""
    attrs = [a for a in config.junk_attributes() if a in records.columns]
    junk = config.junk
    pairs = records.select("record_id", F.explode(F.array(*[
        F.when(F.col(a).isNotNull(), F.struct(F.lit(a).alias("attribute"), F.col(a).cast("string").alias("value"),
                                              is_blocklisted(a, junk).alias("blocklisted")))
        for a in attrs])).alias("_p")).where(F.col("_p").isNotNull()).select("record_id", "_p.*")
    return pairs.withColumn("value", F.when(F.col("blocklisted"), F.lower(F.trim("value"))).otherwise(F.col("value")))


def junk_report(counted: DataFrame, config: IdentityConfig) -> DataFrame:
    """counted (attribute, value, blocklisted, records) -> the junk values (attribute, value, records, reason)."""
    frequent = [a for a in config.junk_attributes() if a not in config.frequency_exempt]
    too_many = (~F.col("blocklisted") & F.col("attribute").isin(frequent)
                & (F.col("records") > config.junk.max_records_per_value)) if frequent else F.lit(False)
    return counted.where(F.col("blocklisted") | too_many).select(
        "attribute", "value", "records", F.when(F.col("blocklisted"), "blocklist").otherwise("too_many_records").alias("reason"))


def mark_junk(records: DataFrame, config: IdentityConfig, report: DataFrame | None = None) -> tuple[DataFrame, DataFrame]:
    """Null out junk values of the attributes rules use -> (clean_records, junk_report).

    Junk = blocklisted (literal placeholders, case-insensitive, or regex) or, for identifier attributes
    (not in junk.frequency_exempt), a value held by more than max_records_per_value distinct records.
    junk_report: (attribute, value, records, reason in {blocklist, too_many_records}); blocklisted values
    are reported lower-cased and trimmed. One pass over the records (exploded to attribute/value pairs).
    report: the junk values as counted over all records elsewhere (an incremental run's), used as given.
    """
    junk = config.junk
    attrs = [a for a in config.junk_attributes() if a in records.columns]
    if report is None:
        counted = junk_pairs(records, config).groupBy("attribute", "value", "blocklisted").agg(F.count("*").alias("records"))  # one pair per record
        report = junk_report(counted, config).transform(cut_lineage)
    # blocklisted values are nulled by expression; too-frequent ones by a broadcast lookup per attribute (the junk
    # values are few): no shuffle of the records
    frequent_bad = report.where(F.col("reason") == "too_many_records").select("attribute", "value")
    clean = records
    for a in attrs:
        drop = is_blocklisted(a, junk)
        if a not in config.frequency_exempt:
            flag = f"_junk_{a}"
            bad = frequent_bad.where(F.col("attribute") == a).select(F.col("value").alias(flag))
            clean = clean.join(F.broadcast(bad), F.col(a).cast("string") == F.col(flag), "left")
            drop = drop | F.col(flag).isNotNull()
        clean = clean.withColumn(a, F.when(drop, F.lit(None)).otherwise(F.col(a)))
    return clean.select(*records.columns), report
