"""Over-merge guards: junk identifier values, identifier caps per customer, name and birth-date conflicts,
maximum cluster size.

All of them only ever REMOVE evidence (null a value, drop an edge), so clusters can only split, never grow,
and every step is deterministic (ordering ties are broken by value / record id / rule order).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp.config import GraphSettings
from cdp.identity.config import PROBABILISTIC_RULE, IdentityConfig
from cdp.identity.graph import connected_components
from cdp.identity.rules import PERSON_KEY, dates_compatible, is_blocklisted, names_compatible, with_person_key
from cdp.spark import cut_lineage

JUNK_SCHEMA = "attribute string, value string, records long, reason string"
CAPPED_SCHEMA = "component string, attribute string, value string, records long"
REVIEW_SCHEMA = ("cluster_root string, size_before long, size_after long, parts long, "
                 "dropped_rules array<string>, reason string")


def _union(spark, frames: list[DataFrame], schema: str) -> DataFrame:
    return reduce(DataFrame.unionByName, frames) if frames else spark.createDataFrame([], schema)


def cluster(records: DataFrame, edges: DataFrame, graph: GraphSettings) -> DataFrame:
    """Connected components of the identity graph: (record_id, component = smallest record_id)."""
    cc = connected_components(records.select(F.col("record_id").alias("id")), edges.select("src", "dst"), graph)
    return cc.select(F.col("id").alias("record_id"), "component").transform(cut_lineage)


def merge_clusters(components: DataFrame, edges: DataFrame, graph: GraphSettings) -> DataFrame:
    """Components after adding `edges` (src, dst) to the graph that gave `components`: connected components of
    the much smaller graph whose vertices are the clusters the new edges join; labels stay the smallest
    record_id (the smallest of the merged clusters' labels), as `cluster` over all edges would give."""
    ends = components.select("record_id", "component")
    joined = (edges.select("src", "dst")
              .join(ends.select(F.col("record_id").alias("src"), F.col("component").alias("c_src")), "src")
              .join(ends.select(F.col("record_id").alias("dst"), F.col("component").alias("c_dst")), "dst")
              .where(F.col("c_src") != F.col("c_dst"))
              .select(F.col("c_src").alias("src"), F.col("c_dst").alias("dst")).transform(cut_lineage))
    involved = joined.select(F.col("src").alias("id")).unionByName(joined.select(F.col("dst").alias("id"))).distinct()
    merged = connected_components(involved, joined, graph).select(F.col("id").alias("component"),
                                                                   F.col("component").alias("_merged"))
    return (ends.join(merged, "component", "left")
            .select("record_id", F.coalesce("_merged", "component").alias("component")).transform(cut_lineage))


def recluster(components: DataFrame, edges: DataFrame, touched: DataFrame, graph: GraphSettings) -> DataFrame:
    """Components after a guard dropped edges inside the `touched` components (a `component` column).

    Guards only remove edges, and every edge lies inside one component, so only the touched components can
    change: their records are re-clustered on their remaining edges; every other record keeps its component.
    The labels stay the smallest record_id of each part, as `cluster` gives for the whole graph.
    """
    touched = touched.select("component").distinct()
    inside = components.join(touched, "component").select(F.col("record_id").alias("id"))
    inner_edges = edges.select("src", "dst").join(inside.withColumnRenamed("id", "src"), "src")
    parts = connected_components(inside, inner_edges, graph).select(F.col("id").alias("record_id"), "component")
    kept = components.join(touched, "component", "left_anti").select("record_id", "component")
    return kept.unionByName(parts).transform(cut_lineage)


@dataclass(frozen=True)
class GuardScope:
    """The part of the identity graph a guard could change, cut out so the guards work on it alone.

    Guards split, never join, and each fires on a property a part of a cluster can only lose (too many values,
    incompatible names or dates, too many records): a cluster none of them flags now is not touched by any of
    them later, in any order. So the suspects' records, edges and components go through the guards; the rest
    stays as it is and `rejoin` puts the two back together: the guards' re-clustering and edge anti-joins run
    over the suspects alone, not the whole graph.
    """
    records: DataFrame           # records of the suspect clusters
    edges: DataFrame             # the edges inside them
    components: DataFrame        # their (record_id, component)
    other_edges: DataFrame
    other_components: DataFrame

    def rejoin(self, edges: DataFrame, components: DataFrame) -> tuple[DataFrame, DataFrame]:
        """All edges and components again; the edges are left lazy (read once, when gold.identity_links is written)."""
        return (self.other_edges.unionByName(edges.select(*self.other_edges.columns)),
                self.other_components.unionByName(components.select("record_id", "component")).transform(cut_lineage))


def suspect_clusters(records: DataFrame, components: DataFrame, config: IdentityConfig) -> DataFrame:
    """(component) of every cluster some guard would act on: over an identifier cap, naming incompatible
    people (when a rule is household-guarded), holding conflicting birth dates, or over max_cluster_size."""
    spark = records.sparkSession
    caps = _caps(records, config)
    named = any(r.household_guard for r in config.enabled_rules)
    dated = "birth_date" in records.columns and bool(relatives_rules(config))
    # the columns the checks read, joined to the components once
    columns = list(dict.fromkeys([*caps, *(["birth_date"] if dated else [])]))
    narrow = (with_person_key(records, config) if named else records).select(
        "record_id", *columns, *([PERSON_KEY] if named else []))
    both = narrow.join(components.select("record_id", "component"), "record_id").transform(cut_lineage)
    flagged = [_capped_values(both, caps).select("component"),
               both.groupBy("component").agg(F.count("*").alias("size"))
               .where(F.col("size") > config.max_cluster_size).select("component")]
    if named:
        flagged.append(_name_conflicted(both, config))
    if dated:
        flagged.append(_date_conflicted(both))
    return _union(spark, flagged, "component string").distinct()


def guard_scope(records: DataFrame, edges: DataFrame, components: DataFrame, config: IdentityConfig) -> GuardScope:
    """Cut the suspect clusters (`suspect_clusters`) out of the graph; edges lie inside one component each."""
    suspects = suspect_clusters(records, components, config).transform(cut_lineage)
    comp = components.select("record_id", "component")
    inside = comp.join(suspects, "component").transform(cut_lineage)
    by_component = edges.join(comp.select(F.col("record_id").alias("src"), "component"), "src").transform(cut_lineage)
    return GuardScope(
        records=records.join(inside.select("record_id"), "record_id").transform(cut_lineage),
        edges=by_component.join(suspects, "component").select(*edges.columns).transform(cut_lineage),
        components=inside.select("record_id", "component"),
        other_edges=by_component.join(suspects, "component", "left_anti").select(*edges.columns),
        other_components=comp.join(suspects, "component", "left_anti"),
    )


# --------------------------------------------------------------------------------------------- junk values
def mark_junk(records: DataFrame, config: IdentityConfig) -> tuple[DataFrame, DataFrame]:
    """Null out junk values of the attributes rules use -> (clean_records, junk_report).

    Junk = blocklisted (literal placeholders, case-insensitive, or regex) or, for identifier attributes
    (not in junk.frequency_exempt), a value held by more than max_records_per_value distinct records.
    junk_report: (attribute, value, records, reason in {blocklist, too_many_records}); blocklisted values
    are reported lower-cased and trimmed. One pass over the records (exploded to attribute/value pairs).
    """
    junk = config.junk
    attrs = [a for a in config.junk_attributes() if a in records.columns]
    frequent = [a for a in attrs if a not in junk.frequency_exempt]
    pairs = records.select("record_id", F.explode(F.array(*[
        F.when(F.col(a).isNotNull(), F.struct(F.lit(a).alias("attribute"), F.col(a).cast("string").alias("value"),
                                              is_blocklisted(a, junk).alias("blocklisted")))
        for a in attrs])).alias("_p")).where(F.col("_p").isNotNull()).select("record_id", "_p.*")
    pairs = pairs.withColumn("value", F.when(F.col("blocklisted"), F.lower(F.trim("value"))).otherwise(F.col("value")))
    counted = pairs.groupBy("attribute", "value", "blocklisted").agg(F.count("*").alias("records"))  # one pair per record
    too_many = (~F.col("blocklisted") & F.col("attribute").isin(frequent)
                & (F.col("records") > junk.max_records_per_value)) if frequent else F.lit(False)
    report = (
        counted.where(F.col("blocklisted") | too_many)
        .select("attribute", "value", "records",
                F.when(F.col("blocklisted"), "blocklist").otherwise("too_many_records").alias("reason"))
        .transform(cut_lineage)
    )
    # blocklisted values are nulled by expression; too-frequent ones through the (small) set of affected records
    frequent_bad = report.where(F.col("reason") == "too_many_records").select("attribute", "value")
    flagged = (
        pairs.where(~F.col("blocklisted")).join(F.broadcast(frequent_bad), ["attribute", "value"])
        .groupBy("record_id").agg(F.collect_set("attribute").alias("_junk_attrs"))
    )
    clean = records.join(flagged, "record_id", "left")
    for a in attrs:
        drop = is_blocklisted(a, junk) | F.coalesce(F.array_contains("_junk_attrs", a), F.lit(False))
        clean = clean.withColumn(a, F.when(drop, F.lit(None)).otherwise(F.col(a)))
    return clean.select(*records.columns), report


def _caps(records: DataFrame, config: IdentityConfig) -> dict[str, int]:
    """The capped attributes some enabled rule links on -> their cap."""
    return {a: n for a, n in config.max_identifiers_per_customer.items()
            if a in records.columns and any(a in r.attributes for r in config.enabled_rules)}


def _capped_values(clustered: DataFrame, caps: dict[str, int]) -> DataFrame:
    """(component, attribute, value, records) for the values over each cluster's cap: those with the fewest
    records (ties: the larger value) beyond the first `cap`. clustered: records with their `component`."""
    dropped_parts = []
    for a, cap in caps.items():
        ranked = (
            clustered.where(F.col(a).isNotNull()).select("component", F.col(a).cast("string").alias("value"))
            .groupBy("component", "value").agg(F.count("*").alias("records"))
            .withColumn("_rank", F.row_number().over(
                Window.partitionBy("component").orderBy(F.col("records").desc(), F.col("value").asc())))
        )
        dropped_parts.append(ranked.where(F.col("_rank") > cap).select("component", F.lit(a).alias("attribute"),
                                                                        "value", "records"))
    return _union(clustered.sparkSession, dropped_parts, CAPPED_SCHEMA)


# ------------------------------------------------------------------------------------- identifier caps
def cap_identifiers(records: DataFrame, edges: DataFrame, components: DataFrame, config: IdentityConfig,
                    graph: GraphSettings) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Enforce max_identifiers_per_customer in each tentative cluster -> (edges, components, capped_values).

    In a cluster holding more distinct values of a capped attribute than allowed, the values with the most
    records are kept (ties: smallest value); the edges whose evidence is a dropped value are removed and the
    components recomputed. capped_values: (component, attribute, value, records) that lost their links.
    """
    caps = _caps(records, config)
    capped = _capped_values(records.join(components.select("record_id", "component"), "record_id"), caps) \
        .transform(cut_lineage)
    if capped.limit(1).count() == 0:
        return edges, components, capped
    comp = components.select("record_id", "component")
    to_drop = []
    for a in caps:
        rules = [r.name for r in config.enabled_rules if a in r.attributes]
        to_drop.append(
            edges.where(F.col("rule").isin(rules)).select("src", "dst", "rule")
            .join(records.select(F.col("record_id").alias("dst"), F.col(a).cast("string").alias("value")), "dst")
            .join(comp.select(F.col("record_id").alias("dst"), "component"), "dst")
            .join(capped.where(F.col("attribute") == a).select("component", "value"), ["component", "value"])
            .select("src", "dst", "rule")
        )
    kept = edges.join(reduce(DataFrame.unionByName, to_drop), ["src", "dst", "rule"], "left_anti").transform(cut_lineage)
    return kept, recluster(components, kept, capped, graph), capped


# ---------------------------------------------------------------------------------------- cluster size
def _rule_rank(config: IdentityConfig) -> Column:
    ranks = config.rule_rank()
    return F.create_map(*[x for name, rank in ranks.items() for x in (F.lit(name), F.lit(rank))])[F.col("rule")]


def cap_cluster_size(records: DataFrame, edges: DataFrame, components: DataFrame, config: IdentityConfig,
                     graph: GraphSettings) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Split clusters larger than max_cluster_size -> (edges, components, review).

    Each round, inside every cluster still over the cap, all edges of the weakest rule present there
    (lowest weight; equal weights: later in conf/identity.yaml) are dropped and components recomputed;
    rounds stop when no cluster is over the cap or only strongest-rule edges remain (never dropped).
    review: one row per originally oversized cluster (cluster_root, size_before, size_after = its largest
    part, parts, dropped_rules, reason in {split_under_cap, still_over_cap}).
    """
    spark, cap = records.sparkSession, config.max_cluster_size
    sizes = components.groupBy("component").agg(F.count("*").alias("size"))
    big = sizes.where(F.col("size") > cap)
    if big.limit(1).count() == 0:
        return edges, components, spark.createDataFrame([], REVIEW_SCHEMA)
    flagged = components.join(big, "component").select(
        "record_id", F.col("component").alias("cluster_root"), F.col("size").alias("size_before")).transform(cut_lineage)
    dropped = []
    for _ in range(len(config.rule_names())):
        over = components.groupBy("component").agg(F.count("*").alias("size")).where(F.col("size") > cap) \
            .select("component").transform(cut_lineage)
        inside = (
            edges.join(components.select(F.col("record_id").alias("src"), "component"), "src")
            .join(over, "component").withColumn("_rank", _rule_rank(config))
            .where(F.col("_rank") > 0)
        )
        weakest = inside.groupBy("component").agg(F.max("_rank").alias("_rank"))
        drop = inside.join(weakest, ["component", "_rank"]).select("src", "dst", "rule").transform(cut_lineage)
        if drop.limit(1).count() == 0:
            break
        dropped.append(drop)
        edges = edges.join(drop, ["src", "dst", "rule"], "left_anti").transform(cut_lineage)
        components = recluster(components, edges, over, graph)
    parts = (
        flagged.join(components, "record_id").groupBy("cluster_root", "size_before", "component")
        .agg(F.count("*").alias("part_size"))
        .groupBy("cluster_root", "size_before")
        .agg(F.max("part_size").alias("size_after"), F.count("*").alias("parts"))
    )
    rules = (
        _union(spark, dropped, "src string, dst string, rule string")
        .join(flagged.select(F.col("record_id").alias("src"), "cluster_root"), "src")
        .groupBy("cluster_root").agg(F.array_sort(F.collect_set("rule")).alias("dropped_rules"))
    )
    review = parts.join(rules, "cluster_root", "left").select(
        "cluster_root", "size_before", "size_after", "parts",
        F.coalesce("dropped_rules", F.array().cast("array<string>")).alias("dropped_rules"),
        F.when(F.col("size_after") > cap, "still_over_cap").otherwise("split_under_cap").alias("reason"),
    )
    return edges, components, review.transform(cut_lineage)


# ------------------------------------------------------------------------------------------- name conflicts
def split_name_conflicts(records: DataFrame, edges: DataFrame, components: DataFrame, config: IdentityConfig,
                         graph: GraphSettings) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Clusters naming people who cannot be one person -> (edges, components, review).

    The household guard sees one shared value at a time: a family email named only by Ana's records still
    links the nameless record Luis's device logged in with, and that record bridges Ana's and Luis's clusters.
    A cluster whose first names (canonical, as the household guard compares them) hold an incompatible pair
    is split once by dropping, inside it, the household-guarded links that touch a nameless record; the
    components are recomputed. review: (cluster_root, size_before, size_after, parts, dropped_rules,
    reason = 'name_conflict').
    """
    spark = records.sparkSession
    guarded = [r.name for r in config.enabled_rules if r.household_guard]
    if not guarded:
        return edges, components, spark.createDataFrame([], REVIEW_SCHEMA)
    named = with_person_key(records, config).select("record_id", PERSON_KEY)
    conflicted = _name_conflicted(named.join(components.select("record_id", "component"), "record_id"), config) \
        .transform(cut_lineage)
    if conflicted.limit(1).count() == 0:
        return edges, components, spark.createDataFrame([], REVIEW_SCHEMA)
    nameless = named.where(F.col(PERSON_KEY).isNull()).select("record_id")
    inside = (edges.where(F.col("rule").isin(guarded)).select("src", "dst", "rule")
              .join(components.select(F.col("record_id").alias("src"), "component"), "src")
              .join(conflicted, "component"))
    drop = (inside.join(nameless.withColumnRenamed("record_id", "src"), "src")
            .unionByName(inside.join(nameless.withColumnRenamed("record_id", "dst"), "dst"))
            .select("src", "dst", "rule", "component").distinct().transform(cut_lineage))
    return _split(edges, components, conflicted, drop, "name_conflict", graph)


def _name_conflicted(clustered: DataFrame, config: IdentityConfig) -> DataFrame:
    """(component) of the clusters whose first names (_person_key of records with their `component`) hold an
    incompatible pair."""
    d = config.household_guard.max_edit_distance
    names = (clustered.where(F.col(PERSON_KEY).isNotNull())
             .groupBy("component").agg(F.array_sort(F.collect_set(PERSON_KEY)).alias("names")))
    return names.where(F.exists("names", lambda x: F.exists("names", lambda y: ~names_compatible(x, y, d)))) \
        .select("component")


def _split(edges: DataFrame, components: DataFrame, conflicted: DataFrame, drop: DataFrame, reason: str,
           graph: GraphSettings) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Drop `drop` (src, dst, rule, component) inside the `conflicted` components, re-cluster them, review rows."""
    kept = edges.join(drop.select("src", "dst", "rule"), ["src", "dst", "rule"], "left_anti").transform(cut_lineage)
    split = recluster(components, kept, conflicted, graph)
    before = components.join(conflicted, "component").groupBy("component").agg(F.count("*").alias("size_before"))
    parts = (components.join(conflicted, "component").select("record_id", F.col("component").alias("cluster_root"))
             .join(split, "record_id").groupBy("cluster_root", "component").agg(F.count("*").alias("n"))
             .groupBy("cluster_root").agg(F.max("n").alias("size_after"), F.count("*").alias("parts")))
    rules = drop.groupBy(F.col("component").alias("cluster_root")).agg(F.array_sort(F.collect_set("rule")).alias("dropped_rules"))
    review = (before.withColumnRenamed("component", "cluster_root").join(parts, "cluster_root")
              .join(rules, "cluster_root", "left")
              .select("cluster_root", "size_before", "size_after", "parts",
                      F.coalesce("dropped_rules", F.array().cast("array<string>")).alias("dropped_rules"),
                      F.lit(reason).alias("reason")))
    return kept, split, review.transform(cut_lineage)


# ------------------------------------------------------------------------------------- birth-date conflicts
def relatives_rules(config: IdentityConfig) -> list[str]:
    """Rules whose evidence relatives share by nature (names, address; no identifier, no birth date), and the
    probabilistic rule: the links a birth-date conflict distrusts."""
    shared = set(config.junk.frequency_exempt) | {"first_name_canonical"}
    names = [r.name for r in config.enabled_rules if set(r.attributes) <= shared and "birth_date" not in r.attributes]
    return [*names, PROBABILISTIC_RULE] if config.matching else names


def split_birth_date_conflicts(records: DataFrame, edges: DataFrame, components: DataFrame, config: IdentityConfig,
                               graph: GraphSettings) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Clusters holding two birth dates no typo explains -> (edges, components, review).

    A person has one birth date; a father and son with the same name at one address (one record of them
    without a birth date) are what joins such a cluster. Inside it, the links resting on what relatives share
    (`relatives_rules`: name + address rules, probabilistic links) are dropped and its components recomputed.
    Dates are compatible when equal, one typo apart or under a month apart (as the Splink veto compares them).
    review reason: 'birth_date_conflict'.
    """
    spark = records.sparkSession
    weak = relatives_rules(config)
    if "birth_date" not in records.columns or not weak:
        return edges, components, spark.createDataFrame([], REVIEW_SCHEMA)
    conflicted = _date_conflicted(records.join(components.select("record_id", "component"), "record_id")) \
        .transform(cut_lineage)
    if conflicted.limit(1).count() == 0:
        return edges, components, spark.createDataFrame([], REVIEW_SCHEMA)
    drop = (edges.where(F.col("rule").isin(weak)).select("src", "dst", "rule")
            .join(components.select(F.col("record_id").alias("src"), "component"), "src")
            .join(conflicted, "component").transform(cut_lineage))
    return _split(edges, components, conflicted, drop, "birth_date_conflict", graph)


def _date_conflicted(clustered: DataFrame) -> DataFrame:
    """(component) of the clusters holding two birth dates no typo explains (records with their `component`)."""
    dates = (clustered.where(F.col("birth_date").isNotNull())
             .groupBy("component").agg(F.array_sort(F.collect_set("birth_date")).alias("dates")))
    return dates.where((F.size("dates") > 1) & F.exists(
        "dates", lambda x: F.exists("dates", lambda y: ~dates_compatible(x, y)))).select("component")
