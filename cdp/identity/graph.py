"""Connected components over identity links: GraphFrames when its JAR is on the classpath, else a
DataFrame-only min-label propagation with pointer jumping over hashed ids (same answer, no extra JAR).

Both return one row per vertex: (id, component) where component is the smallest vertex id in the
component, so the result does not depend on the engine and isolated vertices are their own component.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from cdp.config import GraphSettings
from cdp.errors import ConfigError
from cdp.spark import cut_lineage, jvm_has_class

GRAPHFRAMES_CLASS = "org.graphframes.GraphFrame"


def choose_engine(spark, settings: GraphSettings) -> str:
    if settings.engine != "auto":
        return settings.engine
    return "graphframes" if jvm_has_class(spark, GRAPHFRAMES_CLASS) else "dataframe"


def _undirected(edges: DataFrame) -> DataFrame:
    e = edges.select("src", "dst").where(F.col("src") != F.col("dst"))
    return e.unionByName(e.select(F.col("dst").alias("src"), F.col("src").alias("dst"))).distinct()


def _min_label(labels: DataFrame) -> DataFrame:
    """Relabel each component by its smallest vertex id (GraphFrames' own labels are arbitrary longs)."""
    return labels.groupBy("component").agg(F.min("id").alias("root")).join(labels, "component").select(
        "id", F.col("root").alias("component")
    )


def _graphframes_cc(vertices: DataFrame, edges: DataFrame, settings: GraphSettings) -> DataFrame:
    from graphframes import GraphFrame

    cc = GraphFrame(vertices, edges.select("src", "dst")).connectedComponents(
        algorithm=settings.algorithm, broadcastThreshold=-1, max_iter=settings.max_iterations
    )
    return _min_label(cc.select("id", "component"))


def _dataframe_cc(vertices: DataFrame, edges: DataFrame, settings: GraphSettings) -> DataFrame:
    """Connected components with the DataFrame engine, labelled by each component's smallest id.

    String ids (record ids) are replaced by their 64-bit xxhash for the rounds: joins and aggregations over
    longs cost a third of those over strings. The hash costs no join (edges are hashed where they stand);
    if two distinct ids share a hash the string ids are used instead, so a collision can never merge
    two records. Edges are expected to join vertices of `vertices`.
    """
    if isinstance(vertices.schema["id"].dataType, StringType):
        keyed = vertices.select("id", F.xxhash64("id").alias("_key")).transform(cut_lineage)
        collision = keyed.groupBy("_key").agg(F.min("id").alias("_a"), F.max("id").alias("_b")).where(
            F.col("_a") != F.col("_b")).limit(1).count()
        if not collision:
            hashed = edges.select(F.xxhash64("src").alias("src"), F.xxhash64("dst").alias("dst"))
            parts = _partition(keyed.select(F.col("_key").alias("id")), hashed, settings)
            return _min_label(keyed.join(parts.withColumnRenamed("id", "_key"), "_key").select("id", "component"))
    return _min_label(_partition(vertices, edges, settings))


def _partition(vertices: DataFrame, edges: DataFrame, settings: GraphSettings) -> DataFrame:
    """(id, component) for every vertex, where component is one vertex id shared by the whole component.

    Min-label propagation with pointer jumping over the linked vertices that are not leaves. Identity graphs
    are mostly stars (a blocking key links its records to the block's smallest one), so most linked vertices
    have one neighbour. Leaves cannot join anything: they are set aside, the rounds run on the edges between
    the other vertices, and each leaf then takes its neighbour's label (two leaves linked only to each other
    share the smaller id). Vertices without an edge are their own component.
    """
    both = _undirected(edges).transform(cut_lineage)
    degree = both.groupBy("src").agg(F.count("*").alias("_degree"), F.min("dst").alias("_neighbour")).transform(cut_lineage)
    leaves = degree.where(F.col("_degree") == 1).select(F.col("src").alias("id"), "_neighbour")
    core = (both.join(leaves.select(F.col("id").alias("src")), "src", "left_anti")
            .join(leaves.select(F.col("id").alias("dst")), "dst", "left_anti").transform(cut_lineage))
    labels = _propagate(core, settings)
    inner = degree.where(F.col("_degree") > 1).select(F.col("src").alias("id")).join(labels, "id", "left").select(
        "id", F.coalesce("component", "id").alias("component"))
    leaf_labels = leaves.join(inner.select(F.col("id").alias("_neighbour"), F.col("component").alias("_of_neighbour")),
                              "_neighbour", "left").select(
        "id", F.coalesce("_of_neighbour", F.least("id", "_neighbour")).alias("component"))
    linked = inner.unionByName(leaf_labels)
    return vertices.select("id").join(linked, "id", "left").select("id", F.coalesce("component", "id").alias("component"))


def _propagate(both: DataFrame, settings: GraphSettings) -> DataFrame:
    """Rounds of min-label propagation with pointer jumping over undirected edges -> (id, component)."""
    reliable = settings.checkpoint == "reliable"
    # first round folded in: each linked vertex starts at min(itself, its neighbours)
    labels = both.groupBy("src").agg(F.min("dst").alias("_m")).select(
        F.col("src").alias("id"), F.least("src", "_m").alias("component"))
    for _ in range(settings.max_iterations):
        from_neighbours = both.join(labels.withColumnRenamed("id", "src"), "src").select(
            F.col("dst").alias("id"), "component", F.lit(None).cast(labels.schema["component"].dataType).alias("before"))
        # each vertex's own label rides along as `before`, so convergence needs no extra join
        propagated = labels.withColumn("before", F.col("component")).unionByName(from_neighbours).groupBy("id").agg(
            F.min("component").alias("component"), F.min("before").alias("before"))
        # pointer jumping: a vertex may take its label's own label, halving long chains each round
        jumps = propagated.select(F.col("id").alias("_via"), F.col("component").alias("_via_component"))
        jumped = propagated.join(jumps, F.col("component") == F.col("_via"), "left").select(
            "id", F.least("component", F.coalesce("_via_component", "component")).alias("component"), "before")
        jumped = cut_lineage(jumped, reliable)
        changed = jumped.where(F.col("component") != F.col("before")).limit(1).count()
        labels = jumped.drop("before")
        if changed == 0:
            return labels
    raise ConfigError(f"connected components did not converge in {settings.max_iterations} rounds (graph.max_iterations); "
                      f"raise it, e.g. --set graph.max_iterations={settings.max_iterations * 2}")


def connected_components(vertices: DataFrame, edges: DataFrame, settings: GraphSettings, engine: str | None = None) -> DataFrame:
    """vertices(id), edges(src, dst) -> (id, component = smallest id in the component)."""
    engine = engine or choose_engine(vertices.sparkSession, settings)
    if engine == "graphframes":
        return _graphframes_cc(vertices, edges, settings)
    return _dataframe_cc(vertices, edges, settings)
