"""Connected components over identity links: GraphFrames when its JAR is on the classpath, else the built-in
DataFrame engine (same answer, no extra JAR).

Both return one row per vertex: (id, component) where component is the smallest vertex id in the
component, so the result does not depend on the engine and isolated vertices are their own component.

The built-in engine runs GraphFrames' own default algorithm, two-phase: alternating large-star and small-star
steps (Kiveris et al., "Connected Components in MapReduce and Beyond", SoCC 2014), about log n rounds, each two
shuffles and one materialisation, DataFrame API only; leaves leave the rounds as soon as they are found.
`graph.algorithm: graphx` selects min-label propagation with pointer jumping instead (the engine's algorithm
before two-phase; GraphX's connectedComponents propagates labels too); `randomized_contraction` is GraphFrames'
alone, the built-in engine runs two-phase for it. jobs/bench_graph.py times both on a random graph.
"""

from __future__ import annotations

import logging
import time

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from cdp.config import GraphSettings
from cdp.errors import ConfigError
from cdp.frames import cut_lineage, union_all
from cdp.spark import jvm_has_class

GRAPHFRAMES_CLASS = "org.graphframes.GraphFrame"

log = logging.getLogger(__name__)


def choose_engine(spark, settings: GraphSettings) -> str:
    if settings.engine != "auto":
        return settings.engine
    return "graphframes" if jvm_has_class(spark, GRAPHFRAMES_CLASS) else "dataframe"


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


def _key(column: str) -> Column:
    """The 64-bit key a string id takes for the rounds."""
    return F.xxhash64(column)


def _dataframe_cc(vertices: DataFrame, edges: DataFrame, settings: GraphSettings) -> DataFrame:
    """Connected components with the DataFrame engine, labelled by each component's smallest id.

    String ids (record ids) are replaced by their 64-bit xxhash for the rounds: joins and aggregations over
    longs cost a third of those over strings. The hash costs no join (edges are hashed where they stand);
    if two distinct ids share a hash the string ids are used instead, so a collision can never merge
    two records. Edges are expected to join vertices of `vertices`.
    """
    label = _propagation if settings.algorithm == "graphx" else _two_phase
    if isinstance(vertices.schema["id"].dataType, StringType):
        keyed = vertices.select(_key("id").alias("id"), F.col("id").alias("_name")).transform(cut_lineage)
        collision = keyed.groupBy("id").agg(F.min("_name").alias("_a"), F.max("_name").alias("_b")).where(
            F.col("_a") != F.col("_b")).limit(1).count()
        if not collision:
            hashed = edges.select(_key("src").alias("src"), _key("dst").alias("dst"))
            parts = label(keyed, hashed, settings)
            # the smallest key of a component is not its smallest id
            return _min_label(parts.select(F.col("_name").alias("id"), "component"))
    parts = label(vertices.select("id"), edges, settings)
    return parts if label is _two_phase else _min_label(parts)


# ------------------------------------------------------------------------------------ two-phase (the default)
def _two_phase(vertices: DataFrame, edges: DataFrame, settings: GraphSettings) -> DataFrame:
    """`vertices` with component = the smallest id of its component, by alternating large-star and small-star.

    Both steps keep every component connected and move each vertex's links towards smaller ids; a round is a
    small-star step (from the second round on) then a large-star step, materialised with cut_lineage. The rounds
    end when every component is a star whose centre is its smallest vertex, i.e. no vertex with more than one
    neighbour has a smaller one: the large-star step checks this on its input as it goes and leaves a marker
    row (a self-loop) for each vertex that breaks it, so convergence costs a scan of the round's rows, not a join.

    Leaves are set aside as the rounds find them (GraphFrames prunes them once; here every round does): a vertex
    whose only neighbour p is smaller can neither join components nor carry a label to anyone, so its component
    is p's. The large-star step marks it `parked` (a row vertex -> p), the next small-star step drops its rows,
    and the rounds go on with fewer edges each time (most of a random graph is leaves by the third round; most of
    an identity graph, stars around a block's smallest record, from the first). At the end each parked vertex
    takes its p's component, latest round first, since p may have been parked in a later round itself.
    """
    reliable = settings.checkpoint == "reliable"
    state = edges.select("src", "dst").where(F.col("src") != F.col("dst"))
    parked: list[DataFrame] = []   # (id, _via) per round: id is in _via's component
    started = time.perf_counter()
    for rounds in range(1, settings.max_iterations + 1):
        if rounds > 1:
            state = _small_star(state)
        state = cut_lineage(_large_star(state), reliable)
        if state.where(F.col("src") == F.col("dst")).limit(1).count() == 0:
            labels = _resolve(state, parked, reliable)
            log.info("connected components (two-phase): %d rounds, %.1fs", rounds, time.perf_counter() - started)
            return vertices.join(labels, "id", "left").select(
                *[c for c in vertices.columns if c != "id"], "id", F.coalesce("component", "id").alias("component"))
        # read at the end: the round's materialised rows stay until then (a separate cut of the parked rows
        # measured 5% slower)
        parked.append(state.where(F.col("parked")).select(F.col("src").alias("id"), F.col("dst").alias("_via")))
    raise _not_converged(settings)


def _large_star(edges: DataFrame) -> DataFrame:
    """Each vertex u links its larger neighbours to m(u), the smallest of u and its neighbours: rows (v, m(u)) for
    every neighbour v > u. Also, from u itself: a marker (u, u) when u is unsettled (a smaller neighbour and
    more than one neighbour), or a parked row (u, p) when u is a leaf whose only neighbour p is smaller.

    One shuffle: both directions of every edge, partitioned by src; u's neighbourhood is a window over its
    partition (min and max of its neighbours: duplicates of an edge change neither). Duplicate edges are left in
    (the next small-star removes them after its own shuffle: measured cheaper than a distinct here)."""
    near = Window.partitionBy("src")
    rows = _both_ways(edges).repartition("src").select(
        "src", "dst", F.min("dst").over(near).alias("_low"), F.max("dst").over(near).alias("_high"))
    up = F.col("dst") > F.col("src")
    smaller = F.col("_low") < F.col("src")        # u has a smaller neighbour: m(u) = _low
    single = F.col("_low") == F.col("_high")      # ... and no other one
    own = smaller & (F.col("dst") == F.col("_low"))   # u's row to that neighbour
    return rows.where(up | own).select(
        F.when(up, F.col("dst")).otherwise(F.col("src")).alias("src"),
        F.when(up, F.least("src", "_low")).when(single, F.col("dst")).otherwise(F.col("src")).alias("dst"),
        (~up & single).alias("parked"))


def _small_star(edges: DataFrame) -> DataFrame:
    """Each vertex v links itself and its smaller neighbours to the smallest of them, m(v): (m(v), w) for every
    w in {v} and v's neighbours w < v (the large-star rows: src > dst; markers src = dst change nothing). The
    rows of a parked vertex leave the rounds here.

    One shuffle, partitioned by src; the distinct and the window stay within the partitions."""
    near = Window.partitionBy("src")
    parked = F.col("parked")
    rows = edges.repartition("src").distinct().select(
        "src", "dst", F.min(F.when(~parked, F.col("dst"))).over(near).alias("_m"),
        F.max(parked).over(near).alias("_gone"))
    return rows.where(~F.col("_gone")).select(
        F.col("_m").alias("src"),
        # v's row to m(v) itself links v (an edge m(v) -> m(v) would be a self-loop)
        F.when(F.col("dst") == F.col("_m"), F.col("src")).otherwise(F.col("dst")).alias("dst"))


def _resolve(last: DataFrame, parked: list[DataFrame], reliable: bool) -> DataFrame:
    """(id, component) for every vertex that is not its component's smallest: from the last round's rows
    (converged: each vertex -> its component's smallest; its parked rows say nothing more) and the vertices
    parked in the earlier rounds, latest round first (each takes its _via's component)."""
    labels = [last.where(~F.col("parked")).groupBy("src").agg(F.min("dst").alias("component"))
              .withColumnRenamed("src", "id")]
    if parked:
        labels[0] = cut_lineage(labels[0], reliable)   # read by every round's join below
    for leaves in reversed(parked):
        known = union_all(labels).select(F.col("id").alias("_via"), F.col("component").alias("_c"))
        # a _via without a label is the smallest of its component (it left the rounds with all its leaves)
        labels.append(cut_lineage(leaves.repartition("_via").distinct().join(known, "_via", "left").select(
            "id", F.coalesce("_c", "_via").alias("component")), reliable))
    return union_all(labels)


def _both_ways(edges: DataFrame) -> DataFrame:
    """Each edge in both directions, read once (a union of two projections would compute `edges` twice)."""
    pair = F.explode(F.array(F.struct(F.col("src").alias("a"), F.col("dst").alias("b")),
                             F.struct(F.col("dst").alias("a"), F.col("src").alias("b")))).alias("_e")
    return edges.select(pair).select(F.col("_e.a").alias("src"), F.col("_e.b").alias("dst"))


def _not_converged(settings: GraphSettings) -> ConfigError:
    return ConfigError(f"connected components did not converge in {settings.max_iterations} rounds "
                       f"(graph.max_iterations); raise it, e.g. --set graph.max_iterations={settings.max_iterations * 2}")


# ------------------------------------------------------------------------ min-label propagation (graph.algorithm: graphx)
def _propagation(vertices: DataFrame, edges: DataFrame, settings: GraphSettings) -> DataFrame:
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
    return vertices.join(linked, "id", "left").select(
        *[c for c in vertices.columns if c != "id"], "id", F.coalesce("component", "id").alias("component"))


def _undirected(edges: DataFrame) -> DataFrame:
    e = edges.select("src", "dst").where(F.col("src") != F.col("dst"))
    return e.unionByName(e.select(F.col("dst").alias("src"), F.col("src").alias("dst"))).distinct()


def _propagate(both: DataFrame, settings: GraphSettings) -> DataFrame:
    """Rounds of min-label propagation with pointer jumping over undirected edges -> (id, component)."""
    reliable = settings.checkpoint == "reliable"
    started = time.perf_counter()
    # first round folded in: each linked vertex starts at min(itself, its neighbours)
    labels = both.groupBy("src").agg(F.min("dst").alias("_m")).select(
        F.col("src").alias("id"), F.least("src", "_m").alias("component"))
    for rounds in range(1, settings.max_iterations + 1):
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
            log.info("connected components (label propagation): %d rounds, %.1fs", rounds, time.perf_counter() - started)
            return labels
    raise _not_converged(settings)


def connected_components(vertices: DataFrame, edges: DataFrame, settings: GraphSettings, engine: str | None = None) -> DataFrame:
    """vertices(id), edges(src, dst) -> (id, component = smallest id in the component)."""
    engine = engine or choose_engine(vertices.sparkSession, settings)
    if engine == "graphframes":
        return _graphframes_cc(vertices, edges, settings)
    return _dataframe_cc(vertices, edges, settings)
