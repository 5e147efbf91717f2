"""Over-merge guards: identifier caps per customer, name and birth-date conflicts, maximum cluster size.

Each guard takes the identity graph and returns it with edges removed and the touched clusters re-clustered,
plus its report. They only ever REMOVE evidence, so clusters can only split, never grow, and every step is
deterministic (ties are broken by value / record id / rule order). `suspect_clusters` finds, in one pass, the
clusters any guard would act on, so the guards can run on those alone (`clusters.GuardScope`).

Frames a guard reads more than once (the clusters it flags, the edges it drops) are materialised inside it;
its outputs are lazy, and `resolve` cuts their lineage at the phase boundary.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp.config import GraphSettings
from cdp.config.identity import PROBABILISTIC_RULE, IdentityConfig
from cdp.frames import cut_lineage, union_all
from cdp.identity.clusters import IdentityGraph, drop_edges, recluster
from cdp.identity.rules import PERSON_KEY, dates_compatible, names_compatible, with_person_key

CAPPED_SCHEMA = "component string, attribute string, value string, records long"
REVIEW_SCHEMA = ("cluster_root string, size_before long, size_after long, parts long, "
                 "dropped_rules array<string>, reason string")


def _no_review(graph: IdentityGraph) -> tuple[IdentityGraph, DataFrame]:
    return graph, graph.edges.sparkSession.createDataFrame([], REVIEW_SCHEMA)


def _is_empty(df: DataFrame) -> bool:
    return df.limit(1).count() == 0


# ------------------------------------------------------------------------------------------- suspects
def suspect_clusters(records: DataFrame, components: DataFrame, config: IdentityConfig) -> DataFrame:
    """(component) of every cluster some guard would act on: over an identifier cap, naming incompatible
    people (when a rule is household-guarded), holding conflicting birth dates, or over max_cluster_size."""
    caps = _caps(records, config)
    named = any(r.household_guard for r in config.enabled_rules)
    dated = "birth_date" in records.columns and bool(relatives_rules(config))
    # the columns the checks read, joined to the components once (and read by every check)
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
    return union_all(flagged).distinct()


# ------------------------------------------------------------------------------------- identifier caps
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
    return union_all(dropped_parts, clustered.sparkSession, CAPPED_SCHEMA)


def cap_identifiers(records: DataFrame, graph: IdentityGraph, config: IdentityConfig,
                    settings: GraphSettings) -> tuple[IdentityGraph, DataFrame]:
    """Enforce max_identifiers_per_customer in each tentative cluster -> (graph, capped_values).

    In a cluster holding more distinct values of a capped attribute than allowed, the values with the most
    records are kept (ties: smallest value); the edges whose evidence is a dropped value are removed and the
    components recomputed. capped_values: (component, attribute, value, records) that lost their links.
    """
    caps = _caps(records, config)
    comp = graph.components.select("record_id", "component")
    capped = _capped_values(records.join(comp, "record_id"), caps).transform(cut_lineage)
    if _is_empty(capped):
        return graph, capped
    to_drop = []
    for a in caps:
        rules = [r.name for r in config.enabled_rules if a in r.attributes]
        to_drop.append(
            graph.edges.where(F.col("rule").isin(rules)).select("src", "dst", "rule")
            .join(records.select(F.col("record_id").alias("dst"), F.col(a).cast("string").alias("value")), "dst")
            .join(comp.select(F.col("record_id").alias("dst"), "component"), "dst")
            .join(capped.where(F.col("attribute") == a).select("component", "value"), ["component", "value"])
            .select("src", "dst", "rule")
        )
    kept = drop_edges(graph.edges, union_all(to_drop)).transform(cut_lineage)   # re-clustered and returned
    return IdentityGraph(kept, recluster(graph.components, kept, capped, settings)), capped


# ---------------------------------------------------------------------------------------- cluster size
def _rule_rank(config: IdentityConfig) -> Column:
    ranks = config.rule_rank()
    return F.create_map(*[x for name, rank in ranks.items() for x in (F.lit(name), F.lit(rank))])[F.col("rule")]


def cap_cluster_size(records: DataFrame, graph: IdentityGraph, config: IdentityConfig,
                     settings: GraphSettings) -> tuple[IdentityGraph, DataFrame]:
    """Split clusters larger than max_cluster_size -> (graph, review).

    Each round, inside every cluster still over the cap, all edges of the weakest rule present there
    (lowest weight; equal weights: later in conf/identity.yaml) are dropped and components recomputed;
    rounds stop when no cluster is over the cap or only strongest-rule edges remain (never dropped).
    review: one row per originally oversized cluster (cluster_root, size_before, size_after = its largest
    part, parts, dropped_rules, reason in {split_under_cap, still_over_cap}). The rounds are an iteration:
    each round's graph is materialised.
    """
    cap = config.max_cluster_size
    edges, components = graph.edges, graph.components
    big = components.groupBy("component").agg(F.count("*").alias("size")).where(F.col("size") > cap)
    if _is_empty(big):
        return _no_review(graph)
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
        if _is_empty(drop):
            break
        dropped.append(drop)
        edges = drop_edges(edges, drop).transform(cut_lineage)
        components = recluster(components, edges, over, settings).transform(cut_lineage)
    parts = (
        flagged.join(components, "record_id").groupBy("cluster_root", "size_before", "component")
        .agg(F.count("*").alias("part_size"))
        .groupBy("cluster_root", "size_before")
        .agg(F.max("part_size").alias("size_after"), F.count("*").alias("parts"))
    )
    rules = (
        union_all(dropped, records.sparkSession, "src string, dst string, rule string")
        .join(flagged.select(F.col("record_id").alias("src"), "cluster_root"), "src")
        .groupBy("cluster_root").agg(F.array_sort(F.collect_set("rule")).alias("dropped_rules"))
    )
    review = parts.join(rules, "cluster_root", "left").select(
        "cluster_root", "size_before", "size_after", "parts",
        F.coalesce("dropped_rules", F.array().cast("array<string>")).alias("dropped_rules"),
        F.when(F.col("size_after") > cap, "still_over_cap").otherwise("split_under_cap").alias("reason"),
    )
    return IdentityGraph(edges, components), review


# ------------------------------------------------------------------------------------------- name conflicts
def split_name_conflicts(records: DataFrame, graph: IdentityGraph, config: IdentityConfig,
                         settings: GraphSettings) -> tuple[IdentityGraph, DataFrame]:
    """Clusters naming people who cannot be one person -> (graph, review).

    The household guard sees one shared value at a time: a family email named only by Ana's records still
    links the nameless record Luis's device logged in with, and that record bridges Ana's and Luis's clusters.
    A cluster whose first names (canonical, as the household guard compares them) hold an incompatible pair
    is split once by dropping, inside it, the household-guarded links that touch a nameless record and bridge
    parts (`_bridges`: a nameless record whose links all lead into one part stays there); the components are
    recomputed. review: (cluster_root, size_before, size_after, parts, dropped_rules,
    reason = 'name_conflict').
    """
    guarded = [r.name for r in config.enabled_rules if r.household_guard]
    if not guarded:
        return _no_review(graph)
    named = with_person_key(records, config).select("record_id", PERSON_KEY)
    comp = graph.components.select("record_id", "component")
    conflicted = _name_conflicted(named.join(comp, "record_id"), config).transform(cut_lineage)
    if _is_empty(conflicted):
        return _no_review(graph)
    nameless = named.where(F.col(PERSON_KEY).isNull()).select("record_id")
    inside = (graph.edges.where(F.col("rule").isin(guarded)).select("src", "dst", "rule")
              .join(comp.select(F.col("record_id").alias("src"), "component"), "src")
              .join(conflicted, "component"))
    suspect = (inside.join(nameless.withColumnRenamed("record_id", "src"), "src")
               .unionByName(inside.join(nameless.withColumnRenamed("record_id", "dst"), "dst"))
               .select("src", "dst", "rule", "component").distinct().transform(cut_lineage))
    drop = _bridges(graph, conflicted, suspect, named, settings).transform(cut_lineage)
    return _split(graph, conflicted, drop, "name_conflict", settings)


def _bridges(graph: IdentityGraph, conflicted: DataFrame, suspect: DataFrame, named: DataFrame,
             settings: GraphSettings) -> DataFrame:
    """The `suspect` links (src, dst, rule, component: household-guarded links touching a nameless record inside
    the `conflicted` clusters) that bridge people; the others are given back.

    Most nameless records are not bridges: a web event logged in with a family email named only by Ana, and
    nothing else, is Ana's (as it would be in a cluster without a conflict). With every suspect link dropped,
    the clusters fall into parts; a part holding no named record (`named`: record_id, _person_key) whose
    suspect links all lead into ONE other part gets them back; those of a part reaching two or more parts, or
    of a part naming someone, stay dropped. Each part given back joins the one part it points to, so a
    re-formed cluster still holds at most one part that names someone (or one bridge): no two named parts
    are joined again. Links inside one part change no cluster and are kept.
    """
    inside = graph.components.join(conflicted, "component").select("record_id")
    parts = (recluster(graph.components, drop_edges(graph.edges, suspect), conflicted, settings)
             .join(inside, "record_id").select("record_id", F.col("component").alias("part"))
             .transform(cut_lineage))                                        # read three times
    ends = (suspect.join(parts.select(F.col("record_id").alias("src"), F.col("part").alias("p_src")), "src")
            .join(parts.select(F.col("record_id").alias("dst"), F.col("part").alias("p_dst")), "dst"))
    across = ends.where(F.col("p_src") != F.col("p_dst"))
    sides = (across.select(F.col("p_src").alias("part"), F.col("p_dst").alias("other"))
             .unionByName(across.select(F.col("p_dst").alias("part"), F.col("p_src").alias("other"))))
    loose = (parts.join(named, "record_id").groupBy("part")
             .agg(F.count(PERSON_KEY).alias("names")).where(F.col("names") == 0).select("part"))
    given_back = (sides.join(loose, "part").groupBy("part").agg(F.countDistinct("other").alias("reached"))
                  .where(F.col("reached") == 1).select("part"))
    bridging = (across.join(given_back.withColumnRenamed("part", "p_src"), "p_src", "left_anti")
                .join(given_back.withColumnRenamed("part", "p_dst"), "p_dst", "left_anti"))
    return bridging.select("src", "dst", "rule", "component")


def _name_conflicted(clustered: DataFrame, config: IdentityConfig) -> DataFrame:
    """(component) of the clusters whose first names (_person_key of records with their `component`) hold an
    incompatible pair."""
    d = config.household_guard.max_edit_distance
    names = (clustered.where(F.col(PERSON_KEY).isNotNull())
             .groupBy("component").agg(F.array_sort(F.collect_set(PERSON_KEY)).alias("names")))
    return names.where(F.exists("names", lambda x: F.exists("names", lambda y: ~names_compatible(x, y, d)))) \
        .select("component")


def _split(graph: IdentityGraph, conflicted: DataFrame, drop: DataFrame, reason: str,
           settings: GraphSettings) -> tuple[IdentityGraph, DataFrame]:
    """Drop `drop` (src, dst, rule, component) inside the `conflicted` components, re-cluster them, review rows."""
    kept = drop_edges(graph.edges, drop).transform(cut_lineage)   # re-clustered and returned
    components = graph.components
    split = recluster(components, kept, conflicted, settings).transform(cut_lineage)  # its review and the graph
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
    return IdentityGraph(kept, split), review


# ------------------------------------------------------------------------------------- birth-date conflicts
def relatives_rules(config: IdentityConfig) -> list[str]:
    """Rules whose evidence relatives share by nature (names, address; no identifier, no birth date), and the
    probabilistic rule: the links a birth-date conflict distrusts (none when birth_date_guard is off)."""
    if not config.birth_date_guard:
        return []
    shared = set(config.frequency_exempt) | {"first_name_canonical"}
    names = [r.name for r in config.enabled_rules if set(r.attributes) <= shared and "birth_date" not in r.attributes]
    return [*names, PROBABILISTIC_RULE] if config.matching else names


def split_birth_date_conflicts(records: DataFrame, graph: IdentityGraph, config: IdentityConfig,
                               settings: GraphSettings) -> tuple[IdentityGraph, DataFrame]:
    """Clusters holding two birth dates no typo explains -> (graph, review).

    A person has one birth date; a father and son with the same name at one address (one record of them
    without a birth date) are what joins such a cluster. Inside it, the links resting on what relatives share
    (`relatives_rules`: name + address rules, probabilistic links) are dropped and its components recomputed.
    Dates are compatible when equal, one typo apart or under a month apart (as the Splink veto compares them).
    review reason: 'birth_date_conflict'.
    """
    weak = relatives_rules(config)
    if "birth_date" not in records.columns or not weak:
        return _no_review(graph)
    comp = graph.components.select("record_id", "component")
    conflicted = _date_conflicted(records.join(comp, "record_id")).transform(cut_lineage)
    if _is_empty(conflicted):
        return _no_review(graph)
    drop = (graph.edges.where(F.col("rule").isin(weak)).select("src", "dst", "rule")
            .join(comp.select(F.col("record_id").alias("src"), "component"), "src")
            .join(conflicted, "component").transform(cut_lineage))
    return _split(graph, conflicted, drop, "birth_date_conflict", settings)


def _date_conflicted(clustered: DataFrame) -> DataFrame:
    """(component) of the clusters holding two birth dates no typo explains (records with their `component`)."""
    dates = (clustered.where(F.col("birth_date").isNotNull())
             .groupBy("component").agg(F.array_sort(F.collect_set("birth_date")).alias("dates")))
    return dates.where((F.size("dates") > 1) & F.exists(
        "dates", lambda x: F.exists("dates", lambda y: ~dates_compatible(x, y)))).select("component")
