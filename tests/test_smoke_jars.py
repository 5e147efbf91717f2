"""The JARs resolve and work: a Delta MERGE, and connected components (GraphFrames when its JAR is present)."""

import pytest
from frame_asserts import assert_frame_equal

from cdp.identity.graph import GRAPHFRAMES_CLASS, connected_components
from cdp.spark import jvm_has_class
from cdp.tables import Table

POINTS = Table("silver", "points", ("key",))


def test_delta_merge_upserts_latest(lake):
    spark = lake.spark
    lake.merge(spark.createDataFrame([("a", 1, 10), ("b", 1, 20)], "key string, version int, points int"), POINTS)
    lake.merge(
        spark.createDataFrame([("a", 2, 11), ("b", 0, 99), ("c", 1, 30)], "key string, version int, points int"),
        POINTS, when_newer="s.version > t.version",
    )
    assert_frame_equal(lake.read(POINTS), [("a", 2, 11), ("b", 1, 20), ("c", 1, 30)], "key string, version int, points int")


def test_merge_reports_its_inserts(lake):
    spark = lake.spark
    lake.merge(spark.createDataFrame([("a", 1, 10)], "key string, version int, points int"), POINTS)
    lake.merge(spark.createDataFrame([("a", 2, 11), ("c", 1, 30)], "key string, version int, points int"), POINTS)
    assert lake.last_commit_metrics(POINTS)["numTargetRowsInserted"] == "1"


# a chain (leaves at both ends), a pair of leaves, a self-loop, a star whose leaves are smaller than its
# centre, a triangle with a leaf holding the smallest id, an isolated vertex
GRAPH_EDGES = [("a", "b"), ("b", "c"), ("c", "d"), ("d", "e"), ("x", "y"), ("y", "x"), ("m", "m"),
               ("s9", "s1"), ("s9", "s2"), ("s3", "s9"), ("k1", "k2"), ("k2", "k3"), ("k3", "k1"), ("k0", "k2")]
GRAPH_VERTICES = ["a", "b", "c", "d", "e", "x", "y", "m", "lonely", "s1", "s2", "s3", "s9", "k0", "k1", "k2", "k3"]
EXPECTED = {"a": "a", "b": "a", "c": "a", "d": "a", "e": "a", "x": "x", "y": "x", "m": "m", "lonely": "lonely",
            **{v: "s1" for v in ("s1", "s2", "s3", "s9")}, **{v: "k0" for v in ("k0", "k1", "k2", "k3")}}


def _graph(spark):
    return (spark.createDataFrame([(v,) for v in GRAPH_VERTICES], "id string"),
            spark.createDataFrame(GRAPH_EDGES, "src string, dst string"))


def test_dataframe_connected_components(spark, settings):
    v, e = _graph(spark)
    got = {r.id: r.component for r in connected_components(v, e, settings.graph, engine="dataframe").collect()}
    assert got == EXPECTED


def test_dataframe_connected_components_integer_ids(spark, settings):
    """Integer ids take the rounds as they are (string ids are hashed): same components, smallest id."""
    index = {v: i for i, v in enumerate(sorted(GRAPH_VERTICES))}
    v = spark.createDataFrame([(index[x],) for x in GRAPH_VERTICES], "id long")
    e = spark.createDataFrame([(index[a], index[b]) for a, b in GRAPH_EDGES], "src long, dst long")
    got = {r.id: r.component for r in connected_components(v, e, settings.graph, engine="dataframe").collect()}
    assert got == {index[x]: index[c] for x, c in EXPECTED.items()}


@pytest.mark.slow  # ~20 rounds of propagation
def test_dataframe_cc_long_chain_converges(spark, settings):
    n = 200
    v = spark.createDataFrame([(f"v{i:04d}",) for i in range(n)], "id string")
    e = spark.createDataFrame([(f"v{i:04d}", f"v{i + 1:04d}") for i in range(n - 1)], "src string, dst string")
    cc = connected_components(v, e, settings.graph, engine="dataframe")
    assert cc.select("component").distinct().collect()[0].component == "v0000"
    assert cc.count() == n


def test_graphframes_connected_components(spark, settings):
    if not jvm_has_class(spark, GRAPHFRAMES_CLASS):
        pytest.skip("GraphFrames JAR not on the classpath: `make setup` could not fetch "
                    "io.graphframes:graphframes-spark4_2.13 from the configured Maven repositories")
    v, e = _graph(spark)
    got = {r.id: r.component for r in connected_components(v, e, settings.graph, engine="graphframes").collect()}
    assert got == EXPECTED


def test_connected_components_that_do_not_converge_name_the_setting(spark, settings):
    from cdp.errors import ConfigError

    v, e = _graph(spark)
    tight = settings.graph.model_copy(update={"max_iterations": 1})
    with pytest.raises(ConfigError, match=r"did not converge in 1 rounds \(graph.max_iterations\); raise it"):
        connected_components(v, e, tight, engine="dataframe")
