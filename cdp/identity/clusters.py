"""Graph surgery on the identity graph: cluster it, merge clusters along new links, re-cluster the parts a
guard touched, and cut suspect clusters out of the graph and put them back.

The identity graph is one `IdentityGraph(edges, components)`: edges (src, dst, rule, attribute_values,
weight; src < dst) and components (record_id, component = the smallest record_id of its cluster). Every
operation here keeps that labelling, so results never depend on which engine or path computed them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.config import GraphSettings
from cdp.frames import cut_lineage
from cdp.identity.graph import connected_components

EDGE_SCHEMA = "src string, dst string, rule string, attribute_values string, weight double"


@dataclass(frozen=True)
class IdentityGraph:
    """The links between identity records and the clusters they make."""

    edges: DataFrame        # EDGE_SCHEMA
    components: DataFrame   # record_id, component

    def cut(self) -> IdentityGraph:
        """Both frames materialised without their lineage (a phase boundary, see cdp.frames.cut_lineage)."""
        return IdentityGraph(self.edges.transform(cut_lineage),
                             self.components.select("record_id", "component").transform(cut_lineage))


def cluster(records: DataFrame, edges: DataFrame, graph: GraphSettings) -> DataFrame:
    """Connected components of the identity graph: (record_id, component = smallest record_id)."""
    cc = connected_components(records.select(F.col("record_id").alias("id")), edges.select("src", "dst"), graph)
    return cc.select(F.col("id").alias("record_id"), "component")


def merge_clusters(components: DataFrame, edges: DataFrame, graph: GraphSettings) -> DataFrame:
    """Components after adding `edges` (src, dst) to the graph that gave `components`: connected components of
    the much smaller graph whose vertices are the clusters the new edges join; labels stay the smallest
    record_id (the smallest of the merged clusters' labels), as `cluster` over all edges would give."""
    ends = components.select("record_id", "component")
    # read twice (its vertices and its edges): materialised once
    joined = (edges.select("src", "dst")
              .join(ends.select(F.col("record_id").alias("src"), F.col("component").alias("c_src")), "src")
              .join(ends.select(F.col("record_id").alias("dst"), F.col("component").alias("c_dst")), "dst")
              .where(F.col("c_src") != F.col("c_dst"))
              .select(F.col("c_src").alias("src"), F.col("c_dst").alias("dst")).transform(cut_lineage))
    involved = joined.select(F.col("src").alias("id")).unionByName(joined.select(F.col("dst").alias("id"))).distinct()
    merged = connected_components(involved, joined, graph).select(F.col("id").alias("component"),
                                                                   F.col("component").alias("_merged"))
    return (ends.join(merged, "component", "left")
            .select("record_id", F.coalesce("_merged", "component").alias("component")))


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
    return kept.unionByName(parts)


def drop_edges(edges: DataFrame, dropped: DataFrame) -> DataFrame:
    """`edges` without those in `dropped` (matched on src, dst and rule)."""
    return edges.join(dropped.select("src", "dst", "rule"), ["src", "dst", "rule"], "left_anti")


@dataclass(frozen=True)
class GuardScope:
    """The part of the identity graph a guard could change, cut out so the guards work on it alone.

    Guards split, never join, and each fires on a property a part of a cluster can only lose (too many values,
    incompatible names or dates, too many records): a cluster none of them flags now is not touched by any of
    them later, in any order. So the suspects' records and graph go through the guards; the rest stays as it
    is and `rejoin` puts the two back together: the guards' re-clustering and edge anti-joins run over the
    suspects alone, not the whole graph.
    """

    records: DataFrame           # records of the suspect clusters
    graph: IdentityGraph         # the edges and components inside them
    others: IdentityGraph        # everything else, untouched

    def cut(self) -> GuardScope:
        return GuardScope(self.records.transform(cut_lineage), self.graph.cut(), self.others)

    def rejoin(self, guarded: IdentityGraph) -> IdentityGraph:
        """The whole graph again, with the guarded part in place of the suspects."""
        return IdentityGraph(
            self.others.edges.unionByName(guarded.edges.select(*self.others.edges.columns)),
            self.others.components.unionByName(guarded.components.select("record_id", "component")))


def cut_out(records: DataFrame, graph: IdentityGraph, suspects: DataFrame) -> GuardScope:
    """Cut the `suspects` clusters (a `component` column) out of the graph; edges lie inside one component each."""
    comp = graph.components.select("record_id", "component")
    inside = comp.join(suspects, "component").transform(cut_lineage)            # read three times
    by_component = graph.edges.join(comp.select(F.col("record_id").alias("src"), "component"), "src") \
        .transform(cut_lineage)                                                  # read twice
    return GuardScope(
        records=records.join(inside.select("record_id"), "record_id"),
        graph=IdentityGraph(by_component.join(suspects, "component").select(*graph.edges.columns),
                            inside.select("record_id", "component")),
        others=IdentityGraph(by_component.join(suspects, "component", "left_anti").select(*graph.edges.columns),
                             comp.join(suspects, "component", "left_anti")),
    )
