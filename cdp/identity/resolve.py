"""Identity resolution, the pure core: identity records (+ the previous identity map) -> the gold identity tables.

    tables = resolve(records, previous_map, config, settings, run_id=run_id, now=now)
    write_identity_tables(lake, tables, run_id)        # cdp.identity.writer: the only I/O

Phases (docs/identity.md): junk values nulled -> anonymous records (no identifying attribute) set aside ->
deterministic rule edges (blocked by attribute tuple, household guard) -> their connected components ->
probabilistic edges (Splink, only across those clusters) merging them -> the suspect clusters cut out ->
identifier caps -> name and birth-date conflicts -> cluster-size cap -> stable customer ids seeded with the
previous map -> golden records. Each run recomputes the graph from all identity records; the previous map is
what keeps ids stable. An incremental run (cdp.identity.incremental) runs this same code on the region of whole
clusters its new, changed and deleted records can reach. Lineage is cut at each
phase boundary here (cdp.frames.cut_lineage), so no plan grows across phases.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.config import Settings
from cdp.config.identity import IdentityConfig
from cdp.frames import cut_lineage, union_all
from cdp.identity.attributes import with_custom_attributes
from cdp.identity.clusters import IdentityGraph, cluster, cut_out, merge_clusters
from cdp.identity.golden import golden_records
from cdp.identity.guards import (
    cap_cluster_size,
    cap_identifiers,
    split_birth_date_conflicts,
    split_name_conflicts,
    suspect_clusters,
)
from cdp.identity.junk import mark_junk
from cdp.identity.probabilistic import SCORE_SCHEMA, MatchingRun, SavedModel, probabilistic_edges
from cdp.identity.rules import deterministic_edges, with_derived_attributes
from cdp.identity.stable_ids import assign_customer_ids
from cdp.tables import (
    CUSTOMERS,
    IDENTITY_CAPPED_VALUES,
    IDENTITY_CHANGES,
    IDENTITY_CLUSTER_SIZES,
    IDENTITY_JUNK_VALUES,
    IDENTITY_LINKS,
    IDENTITY_MAP,
    IDENTITY_MATCH_SCORES,
    IDENTITY_REVIEW,
    LINEAGE,
    Table,
)

ACROSS = "_deterministic_cluster"
Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class IdentityTables:
    """The output frames of one resolution (one per gold identity table), and what the run measured."""

    identity_map: DataFrame
    links: DataFrame
    changes: DataFrame
    junk_values: DataFrame
    capped_values: DataFrame
    review: DataFrame
    cluster_sizes: DataFrame
    customers: DataFrame
    match_scores: DataFrame
    matching: MatchingRun | None = None
    seconds: dict[str, float] = field(default_factory=dict)   # wall time per phase

    def frames(self) -> dict[Table, DataFrame]:
        """gold table -> its frame."""
        return {table: getattr(self, name) for table, name in _FIELDS.items()}

    def with_frames(self, frames: dict[Table, DataFrame]) -> IdentityTables:
        """The same result with these frames (e.g. materialised ones) in place of the tables' frames."""
        return replace(self, **{_FIELDS[table]: df for table, df in frames.items()})


_FIELDS = {IDENTITY_MAP: "identity_map", IDENTITY_LINKS: "links", IDENTITY_CHANGES: "changes",
           IDENTITY_JUNK_VALUES: "junk_values", IDENTITY_CAPPED_VALUES: "capped_values", IDENTITY_REVIEW: "review",
           IDENTITY_CLUSTER_SIZES: "cluster_sizes", CUSTOMERS: "customers", IDENTITY_MATCH_SCORES: "match_scores"}


def stopwatch(into: dict[str, float], progress: Progress | None = None) -> Callable[[str], None]:
    """lap(phase) records the seconds since the previous lap under `phase` (and reports it)."""
    start = [time.monotonic()]

    def lap(phase: str) -> None:
        now_ = time.monotonic()
        into[phase] = round(now_ - start[0], 1)
        start[0] = now_
        if progress:
            progress(phase, into[phase])
    return lap


def identified(records: DataFrame, config: IdentityConfig) -> DataFrame:
    """Records holding at least one identifying attribute; the others are anonymous and get no customer id."""
    present = [F.col(a).isNotNull() for a in config.identifying if a in records.columns]
    return records.where(reduce(lambda a, b: a | b, present))


def link_graph(clean: DataFrame, config: IdentityConfig, settings: Settings, lap: Callable[[str], None],
               saved: SavedModel | None = None, names: DataFrame | None = None
               ) -> tuple[IdentityGraph, MatchingRun | None, DataFrame]:
    """Deterministic edges and their clusters, then the probabilistic links merging clusters; and the pairs
    the model scored (SCORE_SCHEMA, empty without probabilistic matching)."""
    edges = deterministic_edges(clean, config, names).transform(cut_lineage)
    lap("deterministic rules")
    graph = IdentityGraph(edges, cluster(clean, edges, settings.graph).transform(cut_lineage))
    lap("connected components")
    if not config.matching:
        return graph, None, clean.sparkSession.createDataFrame([], SCORE_SCHEMA)
    # Splink predicts only across deterministic clusters: a pair already linked would add nothing
    fuzzy, matching, scores = probabilistic_edges(
        clean.join(graph.components.withColumnRenamed("component", ACROSS), "record_id"), config.matching,
        config.household_guard.max_edit_distance, across=ACROSS, saved=saved)
    graph = IdentityGraph(graph.edges.unionByName(fuzzy).transform(cut_lineage),
                          merge_clusters(graph.components, fuzzy, settings.graph).transform(cut_lineage))
    lap("probabilistic matching (Splink)")
    return graph, matching, scores


def guard(clean: DataFrame, graph: IdentityGraph, config: IdentityConfig, settings: Settings,
          lap: Callable[[str], None]) -> tuple[IdentityGraph, DataFrame, DataFrame]:
    """The over-merge guards on the suspect clusters alone -> (graph, capped values, review)."""
    gs = settings.graph
    scope = cut_out(clean, graph, suspect_clusters(clean, graph.components, config).transform(cut_lineage)).cut()
    lap("suspect clusters")
    guarded, capped = cap_identifiers(scope.records, scope.graph, config, gs)
    guarded = guarded.cut()
    lap("identifier caps")
    guarded, names = split_name_conflicts(scope.records, guarded, config, gs)
    guarded, names = guarded.cut(), names.transform(cut_lineage)
    guarded, dates = split_birth_date_conflicts(scope.records, guarded, config, gs)
    guarded, dates = guarded.cut(), dates.transform(cut_lineage)
    lap("name and birth-date conflicts")
    guarded, oversized = cap_cluster_size(scope.records, guarded, config, gs)
    whole = scope.rejoin(guarded)
    # the edges stay lazy: they are read once, when gold.identity_links is written
    graph = IdentityGraph(whole.edges, whole.components.transform(cut_lineage))
    review = union_all([oversized, names, dates]).transform(cut_lineage)
    lap("cluster-size cap")
    return graph, capped, review


def resolve(records: DataFrame, previous_map: DataFrame | None, config: IdentityConfig, settings: Settings, *,
            run_id: str, now: datetime, progress: Progress | None = None, saved: SavedModel | None = None,
            junk: DataFrame | None = None, names: DataFrame | None = None,
            known_ids: DataFrame | None = None) -> IdentityTables:
    """Resolve identity records (silver.identity_records rows) into customers.

    previous_map: (record_id, customer_id, minted_from) of the last run, which keeps ids stable; None rebuilds.
    It must not read a table the caller is about to overwrite lazily (materialise it first).
    progress(phase, seconds) is called as each phase ends. saved: the model to score with (no training).
    An incremental run resolves a region of whole clusters (cdp.identity.incremental) and passes what depends on
    all records: the junk values, the household guard's block names and the customer ids in use (known_ids).
    """
    stamp, run = F.lit(now).cast("timestamp"), F.lit(run_id)
    seconds: dict[str, float] = {}
    lap = stopwatch(seconds, progress)
    # the identity columns only: bronze lineage (file, hashes, run ids) would ride through every materialisation
    records = records.drop(*LINEAGE).transform(with_custom_attributes(config)).transform(cut_lineage)
    clean, junk = mark_junk(records, config, junk)
    clean = identified(with_derived_attributes(clean, config), config).transform(cut_lineage)
    lap("junk and anonymous records")
    graph, matching, scores = link_graph(clean, config, settings, lap, saved, names)
    groups = graph.components.select("record_id", F.col("component").alias("match_group"))
    graph, capped, review = guard(clean, graph, config, settings, lap)
    id_map, changes = assign_customer_ids(graph.components, previous_map, run_id, known_ids)
    id_map = id_map.join(groups, "record_id").transform(cut_lineage)
    lap("stable ids")
    return IdentityTables(
        identity_map=id_map.join(records.select("record_id", "source", "source_record_key"), "record_id")
        .select("record_id", "source", "source_record_key", "customer_id", "minted_from", "match_group",
                run.alias("run_id"), stamp.alias("resolved_at")),
        links=graph.edges.join(id_map.select(F.col("record_id").alias("src"), "customer_id"), "src")
        .select("src", "dst", "rule", F.col("attribute_values").alias("evidence"), "weight", "customer_id",
                run.alias("run_id")),
        changes=changes.withColumn("changed_at", stamp),
        junk_values=junk.withColumn("run_id", run),
        capped_values=capped.withColumn("run_id", run),
        review=review.withColumn("run_id", run).withColumn("reviewed_at", F.lit(None).cast("timestamp")),
        cluster_sizes=(id_map.groupBy("customer_id").agg(F.count("*").alias("size"))
                       .groupBy("size").agg(F.count("*").alias("clusters")).orderBy("size")),
        customers=golden_records(clean, id_map, config).withColumn("run_id", run).withColumn("updated_at", stamp),
        match_scores=scores.withColumn("run_id", run),
        matching=matching, seconds=seconds,
    )
