"""Deterministic matching rules -> identity edges. Pure DataFrame transforms, no collect, no cross join.

Blocking: a rule's attribute tuple is its blocking key. Records are grouped by it (one shuffle) and every
record of a group is linked to the group's smallest record_id: a star of n-1 edges instead of n(n-1)/2
pairs, which gives the same connected components in linear size.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp.identity.config import IdentityConfig, Junk, Rule

EDGE_COLUMNS = ["src", "dst", "rule", "attribute_values", "weight"]


def is_blocklisted(attribute: str, junk: Junk) -> Column:
    """True when the attribute's value is a placeholder (literal, case-insensitive) or matches a junk regex."""
    value = F.lower(F.trim(F.col(attribute).cast("string")))
    checks = []
    literals = junk.literals_for(attribute)
    if literals:
        checks.append(value.isin(literals))
    checks += [value.rlike(p) for p in junk.patterns_for(attribute)]
    if not checks:
        return F.lit(False)
    return F.coalesce(reduce(lambda a, b: a | b, checks), F.lit(False))


def evidence(attributes: list[str]) -> Column:
    """'email=jose@gmail.com' or 'phone=+34612345678;first_name_match=jose'."""
    return F.concat_ws(";", *[F.concat(F.lit(f"{a}="), F.col(a).cast("string")) for a in attributes])


def _usable(rule: Rule, junk: Junk | None) -> Column:
    usable = reduce(lambda a, b: a & b, [F.col(a).isNotNull() for a in rule.attributes])
    if junk is not None:
        usable = usable & ~reduce(lambda a, b: a | b, [is_blocklisted(a, junk) for a in rule.attributes])
    return usable


def blocking_keys(records: DataFrame, rules: list[Rule], junk: Junk | None = None) -> DataFrame:
    """One row per (record, rule) the record can take part in: (record_id, rule, key, attribute_values, weight).

    key = the rule's attribute values, type-tagged and joined: records with the same key are one block.
    """
    entries = [
        F.when(_usable(r, junk), F.struct(
            F.lit(r.name).alias("rule"),
            F.to_json(F.array(*[F.col(a).cast("string") for a in r.attributes])).alias("key"),
            evidence(r.attributes).alias("attribute_values"),
            F.lit(float(r.weight)).alias("weight"),
        ))
        for r in rules
    ]
    return (
        records.select("record_id", F.explode(F.array(*entries)).alias("_e"))
        .where(F.col("_e").isNotNull()).select("record_id", "_e.*")
    )


def deterministic_edges(records: DataFrame, config: IdentityConfig) -> DataFrame:
    """records (identity-record columns) -> edges (src < dst, rule, attribute_values, weight), one star per block.

    All rules in one pass: records are exploded to (record, rule, blocking key) and partitioned by
    (rule, key); each record links to its block's smallest record_id. Blocklisted values never link
    (mark_junk also nulls them and the too-frequent ones beforehand).
    """
    block = Window.partitionBy("rule", "key")
    return (
        blocking_keys(records, config.enabled_rules, config.junk)
        .withColumn("src", F.min("record_id").over(block))
        .where(F.col("src") < F.col("record_id"))
        .select("src", F.col("record_id").alias("dst"), "rule", "attribute_values", "weight")
        .dropDuplicates(["src", "dst", "rule"])
    )
