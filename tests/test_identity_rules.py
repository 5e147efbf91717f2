"""Identity resolution's parts on hand-built records (real Spark): configuration, rules and blocking, the
household guard, junk values, the over-merge guards on one IdentityGraph, and the Splink vetoes."""

from datetime import date

import pytest
from identity_records import edge_set, frame, groups, labels, rec, variant
from pyspark.sql import functions as F

from cdp.config.identity import load_identity_config
from cdp.config.identity_attributes import IDENTITY_ATTRIBUTES
from cdp.errors import ConfigError
from cdp.identity.clusters import IdentityGraph, cluster, cut_out
from cdp.identity.guards import (
    cap_cluster_size,
    cap_identifiers,
    split_birth_date_conflicts,
    split_name_conflicts,
    suspect_clusters,
)
from cdp.identity.junk import mark_junk
from cdp.identity.rules import deterministic_edges
from cdp.quality import load_contract
from cdp.tables import IDENTITY_RECORDS


@pytest.fixture(scope="module")
def config(settings):
    return load_identity_config(settings)


def graph_of(records, config, settings) -> IdentityGraph:
    edges = deterministic_edges(records, config)
    return IdentityGraph(edges, cluster(records, edges, settings.graph))


# ------------------------------------------------------------------------------------------------ config
def test_shipped_config_loads(config):
    assert (len(config.enabled_rules), config.max_cluster_size, config.matching is not None) == (9, 50, True)


def test_identity_attributes_are_identity_record_columns(settings):
    assert set(IDENTITY_ATTRIBUTES) - set(load_contract(settings, IDENTITY_RECORDS).column_names) == set()


@pytest.mark.parametrize("body, message", [
    ("deterministic_rules: [{name: r, attributes: [national_id]}]", "not a column of silver.identity_records"),
    ("deterministic_rules: [{name: r, attributes: [email], enabled: false}]", "at least one deterministic rule"),
    ("deterministic_rules: [{name: r, attributes: [email]}]\nmax_clustr_size: 3", "unknown key 'max_clustr_size'"),
    ("deterministic_rules: [{name: r, attributes: [email]}]\njunk: {patterns: {email: ['(']}}", "junk pattern"),
    ("deterministic_rules: [{name: probabilistic, attributes: [email]}]", "reserved"),
    ("deterministic_rules: [{name: r, attributes: [email]}]\nnicknames: {jose: [pepe], josefa: [pepe]}", "both"),
    ("deterministic_rules: [{name: r, attributes: [email], weight: 2}]", "less than or equal to 1"),
], ids=["unknown_attribute", "none_enabled", "unknown_key", "bad_regex", "reserved_name", "nickname_twice", "weight"])
def test_bad_identity_config_is_one_line(tmp_path, body, message):
    path = tmp_path / "identity.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message) as err:
        load_identity_config(path=path)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------------------------- rules
def test_each_rule_links_what_it_should(spark, config):
    rows = [
        rec("a1", email="jose@gmail.com"), rec("a2", email="jose@gmail.com"),
        rec("p1", phone="+34600111222", first_name_match="jose"),
        rec("p2", phone="+34600111222"),                                 # a caller who gave no name
        rec("l1", loyalty_id="LOY1"), rec("l2", loyalty_id="LOY1"),
        rec("d1", device_id="dev-1"), rec("d2", device_id="dev-1"),
        rec("c1", cookie_id="ck-1"), rec("c2", cookie_id="ck-1"),
        rec("f1", facebook_handle="jose.m"), rec("f2", facebook_handle="jose.m"),
        rec("t1", twitter_handle="jm"), rec("t2", review_handle="jm"),   # handle reused on a review site
        rec("i1", instagram_handle="jm_ig"), rec("i2", instagram_handle="jm_ig"),
        rec("z1", email="other@x.com", facebook_handle="jm.ig"),         # same handle, other separator, other site
        rec("n1", first_name_match="paco", last_name_match="gil", birth_date=date(1980, 2, 3)),
        rec("n2", first_name_match="francisco", last_name_match="gil", birth_date=date(1980, 2, 3)),  # nickname
        rec("h1", first_name_match="ana", last_name_match="ruiz", street="C/ Mayor 1", postal_code="28001"),
        rec("h2", first_name_match="ana", last_name_match="ruiz", street="C/ Mayor 1", postal_code="28001"),
        rec("h3", first_name_match="luis", last_name_match="ruiz", street="C/ Mayor 1", postal_code="28001"),
    ]
    edges = deterministic_edges(frame(spark, rows), config)
    assert edge_set(edges) == {
        ("a1", "a2", "email_exact"), ("p1", "p2", "phone_exact"), ("l1", "l2", "loyalty_id_exact"),
        ("d1", "d2", "device_id_exact"), ("c1", "c2", "cookie_id_exact"), ("f1", "f2", "facebook_handle_exact"),
        ("t1", "t2", "social_handle_any_site"), ("i1", "i2", "social_handle_any_site"),
        ("i1", "z1", "social_handle_any_site"), ("f1", "f2", "social_handle_any_site"),
        ("n1", "n2", "name_and_birth_date"), ("h1", "h2", "name_and_address"),
    }
    row = edges.where("rule = 'name_and_birth_date'").select("attribute_values", "weight").first()
    assert tuple(row) == ("first_name_canonical=francisco;last_name_match=gil;birth_date=1980-02-03", 0.6)


FAMILY = [
    # a family email: two people named on it -> links only per person; the nameless record links to nobody
    rec("e1", email="familia@x.com", first_name_match="ana"), rec("e2", email="familia@x.com", first_name_match="ana"),
    rec("e3", email="familia@x.com", first_name_match="luis"), rec("e4", email="familia@x.com", first_name_match="luis"),
    rec("e5", email="familia@x.com"),
    # one person under a nickname, an initial and a typo: not shared, everything links (nameless too)
    rec("m1", phone="+34600000001", first_name_match="francisco"), rec("m2", phone="+34600000001", first_name_match="paco"),
    rec("m3", phone="+34600000001", first_name_match="f"), rec("m4", phone="+34600000001", first_name_match="franciso"),
    rec("m5", phone="+34600000001"),
]


def test_household_guard_splits_shared_values_by_person(spark, config):
    edges = deterministic_edges(frame(spark, FAMILY), config)
    assert edge_set(edges) == {("e1", "e2", "email_exact"), ("e3", "e4", "email_exact"),
                               *{("m1", m, "phone_exact") for m in ("m2", "m3", "m4", "m5")}}


def test_household_links_say_which_person(spark, config):
    edges = deterministic_edges(frame(spark, FAMILY), config)
    assert edges.where("src = 'e3'").first().attribute_values == "email=familia@x.com;shared_by_household;person=luis"


def test_household_guard_reads_swapped_letters_as_a_typo_and_initials_as_names(spark, config):
    records = frame(spark, [
        # one Pablo keyed twice with two letters swapped: not shared, the nameless record links too
        rec("p1", phone="+34600000002", first_name_match="pablo"), rec("p2", phone="+34600000002", first_name_match="pbalo"),
        rec("p3", phone="+34600000002"),
        # two different initials are two people (J. and A. Lee), though one edit apart: shared
        rec("j1", email="lee@x.com", first_name_match="j"), rec("j2", email="lee@x.com", first_name_match="a"),
        rec("j3", email="lee@x.com"),
    ])
    assert edge_set(deterministic_edges(records, config)) == {("p1", "p2", "phone_exact"), ("p1", "p3", "phone_exact")}


def test_without_the_household_guard_a_family_email_links_everyone(spark, config):
    off = variant(config, deterministic_rules=[r.model_copy(update={"household_guard": False})
                                               for r in config.deterministic_rules])
    assert deterministic_edges(frame(spark, FAMILY[:5]), off).count() == 4


def test_blocking_builds_a_star_not_all_pairs(spark, config):
    edges = deterministic_edges(frame(spark, [rec(f"r{i}", email="same@x.com", cookie_id="k") for i in range(6)]), config)
    assert sorted((r.src, r.dst, r.rule) for r in edges.collect()) == sorted(
        ("r0", f"r{i}", rule) for i in range(1, 6) for rule in ("email_exact", "cookie_id_exact"))   # k-1 per rule


def test_blocking_plan_has_no_cross_join(spark, config):
    edges = deterministic_edges(frame(spark, [rec(f"r{i}", email="same@x.com") for i in range(3)]), config)
    plan = edges._jdf.queryExecution().executedPlan().toString()
    assert [op for op in ("CartesianProduct", "BroadcastNestedLoopJoin") if op in plan] == []


# ---------------------------------------------------------------------------------------------- junk
JUNK = [
    rec("j1", email="TEST@test.com"), rec("j2", email="test@test.com"),
    rec("j3", phone="000000000", first_name_match="ana"), rec("j4", phone="000000000", first_name_match="ana"),
    rec("j5", first_name_match="unknown", phone="+34600999888"),
    rec("j6", first_name_match="unknown", phone="+34600999888"),
    *[rec(f"s{i}", device_id="shared-dev") for i in range(4)],              # 4 > max_records_per_value 3
    rec("ok1", email="ana@x.com"), rec("ok2", email="ana@x.com"),
]


def test_junk_values_link_nothing(spark, config):
    cfg = variant(config, junk={"max_records_per_value": 3})
    clean, _ = mark_junk(frame(spark, JUNK), cfg)
    # j5/j6: the junk name is gone, their (personal) phone still links them
    assert edge_set(deterministic_edges(clean, cfg)) == {("ok1", "ok2", "email_exact"), ("j5", "j6", "phone_exact")}


def test_junk_values_are_reported(spark, config):
    _, report = mark_junk(frame(spark, JUNK), variant(config, junk={"max_records_per_value": 3}))
    assert {(r.attribute, r.value.lower(), r.records, r.reason) for r in report.collect()} == {
        ("email", "test@test.com", 2, "blocklist"), ("phone", "000000000", 2, "blocklist"),
        ("first_name_match", "unknown", 2, "blocklist"), ("device_id", "shared-dev", 4, "too_many_records")}


def test_blocklisted_values_never_link_even_unmarked(spark, config):
    assert edge_set(deterministic_edges(frame(spark, JUNK[:4]), config)) == set()


# ---------------------------------------------------------------------------------------------- guards
def test_identifier_cap_drops_the_weakest_values_links(spark, settings, config):
    cfg = variant(config, max_identifiers_per_customer={"email": 2})
    records = frame(spark, [
        rec("a1", email="ann@x.com"), rec("a2", email="ann@x.com"), rec("a3", email="ann@x.com", device_id="DA"),
        rec("a4", email="family@x.com", device_id="DA"),
        rec("b0", email="bob@x.com", device_id="DB"), rec("b1", email="bob@x.com"), rec("b2", email="bob@x.com"),
        rec("b4", email="family@x.com", device_id="DB"),
    ])
    graph = graph_of(records, cfg, settings)
    assert len(groups(graph.components)) == 1                       # family@ glues Ann's and Bob's records
    capped_graph, capped = cap_identifiers(records, graph, cfg, settings.graph)
    # emails in the cluster: ann 3 records, bob 3, family 2 -> keep the 2 with most records
    assert {(r.attribute, r.value) for r in capped.collect()} == {("email", "family@x.com")}
    assert [r.src for r in capped_graph.edges.where("rule = 'email_exact' AND attribute_values LIKE '%family%'").collect()] == []
    assert groups(capped_graph.components) == [["a1", "a2", "a3", "a4"], ["b0", "b1", "b2", "b4"]]
    # re-clustering only the touched part gives the whole graph's labels
    assert labels(capped_graph.components) == labels(cluster(records, capped_graph.edges, settings.graph))


BRIDGED = [
    rec("x1", email="familia@x.com", first_name_match="ana"), rec("x3", email="familia@x.com", first_name_match="ana"),
    rec("y1", email="luis@x.com", first_name_match="luis", device_id="DY"),
    rec("y2", email="familia@x.com", device_id="DY"),   # Luis's device logged in with the family email
]


@pytest.fixture(scope="module")
def bridged(spark, settings, config):
    records = frame(spark, BRIDGED)
    return records, graph_of(records, config, settings).cut()


def test_name_conflict_splits_a_cluster_bridged_through_a_family_value(bridged, settings, config):
    records, graph = bridged
    assert groups(graph.components) == [["x1", "x3", "y1", "y2"]]          # only Ana names the family email
    split, review = split_name_conflicts(records, graph, config, settings.graph)
    assert groups(split.components) == [["x1", "x3"], ["y1", "y2"]]
    assert edge_set(graph.edges) - edge_set(split.edges) == {("x1", "y2", "email_exact")}
    assert [tuple(r) for r in review.collect()] == [("x1", 4, 2, 2, ["email_exact"], "name_conflict")]


def test_no_name_conflict_changes_nothing(bridged, settings, config):
    records, graph = bridged
    without_luis = IdentityGraph(graph.edges, graph.components.where("record_id != 'y1'"))
    same, review = split_name_conflicts(records, without_luis, config, settings.graph)
    assert same is without_luis
    assert review.count() == 0


def test_name_conflict_keeps_nameless_records_that_bridge_nobody(spark, settings, config):
    records = frame(spark, [
        rec("a0", email="familia@x.com"),                        # nameless, smallest id: not the block's centre
        rec("a1", email="familia@x.com", first_name_match="ana"), rec("a2", email="familia@x.com", first_name_match="ana"),
        rec("n1", email="familia@x.com"),                        # a web event logged in with the family email: Ana's
        rec("l1", email="luis@x.com", first_name_match="luis", device_id="DL"),
        rec("l2", email="familia@x.com", device_id="DL"),        # Luis's device on the family email: the bridge
        rec("b1", email="familia@x.com", phone="+34611"), rec("l3", phone="+34611", first_name_match="luis"),  # a bridge
    ])
    graph = graph_of(records, config, settings)
    assert len(groups(graph.components)) == 1
    split, review = split_name_conflicts(records, graph, config, settings.graph)
    assert groups(split.components) == [["a0", "a1", "a2", "n1"], ["b1"], ["l1", "l2"], ["l3"]]
    assert edge_set(graph.edges) - edge_set(split.edges) == {
        ("a1", "b1", "email_exact"), ("a1", "l2", "email_exact"), ("b1", "l3", "phone_exact")}
    assert [tuple(r) for r in review.collect()] == [("a0", 8, 4, 4, ["email_exact", "phone_exact"], "name_conflict")]
    assert labels(split.components) == labels(cluster(records, split.edges, settings.graph))


BEN = {"first_name_match": "benjamin", "last_name_match": "lewis"}
HOME = {"street": "Oak Street 1", "postal_code": "N1 4AB"}
FATHER_AND_SON = [
    rec("f1", birth_date=date(1965, 3, 2), phone="+441", **BEN), rec("f2", phone="+441", **BEN, **HOME),
    rec("s1", birth_date=date(1994, 8, 9), email="ben@x.com", **BEN), rec("s2", email="ben@x.com", **BEN, **HOME),
]


def test_birth_date_conflict_splits_father_and_son(spark, settings, config):
    records = frame(spark, [*FATHER_AND_SON, rec("t1", birth_date=date(1980, 1, 12), email="eva@x.com"),
                            rec("t2", birth_date=date(1980, 1, 21), email="eva@x.com")])
    graph = graph_of(records, config, settings)
    assert groups(graph.components) == [["f1", "f2", "s1", "s2"], ["t1", "t2"]]   # name + address joins them
    split, review = split_birth_date_conflicts(records, graph, config, settings.graph)
    assert groups(split.components) == [["f1", "f2"], ["s1", "s2"], ["t1", "t2"]]  # a one-digit typo: no conflict
    assert edge_set(graph.edges) - edge_set(split.edges) == {("f2", "s2", "name_and_address")}
    assert [tuple(r) for r in review.collect()] == [("f1", 4, 2, 2, ["name_and_address"], "birth_date_conflict")]


def test_cluster_cap_drops_weakest_edges_and_flags_review(spark, settings, config):
    cfg = variant(config, max_cluster_size=3)
    records = frame(spark, [
        rec("e1", email="ea@x.com"), rec("e2", email="ea@x.com", cookie_id="K"),
        rec("e3", email="eb@x.com", cookie_id="K"), rec("e4", email="eb@x.com"),
        *[rec(f"m{i}", email="big@x.com") for i in range(4)],            # only strongest-rule edges
        rec("s1", email="small@x.com"), rec("s2", email="small@x.com"),
    ])
    capped, review = cap_cluster_size(records, graph_of(records, cfg, settings), cfg, settings.graph)
    assert groups(capped.components) == [["e1", "e2"], ["e3", "e4"], ["m0", "m1", "m2", "m3"], ["s1", "s2"]]
    assert labels(capped.components) == labels(cluster(records, capped.edges, settings.graph))
    assert capped.edges.where("rule = 'cookie_id_exact'").count() == 0
    assert {r.cluster_root: tuple(r)[1:] for r in review.collect()} == {
        "e1": (4, 2, 2, ["cookie_id_exact"], "split_under_cap"), "m0": (4, 4, 1, [], "still_over_cap")}


def guarded(records, graph, config, settings) -> IdentityGraph:
    for guard in (cap_identifiers, split_name_conflicts, split_birth_date_conflicts, cap_cluster_size):
        graph, _ = guard(records, graph, config, settings.graph)
    return graph


SUSPECTS_AND_INNOCENT = [*FATHER_AND_SON, *BRIDGED, rec("k1", email="kim@x.com", first_name_match="kim"),
                         rec("k2", email="kim@x.com", device_id="DK")]


@pytest.fixture(scope="module")
def suspects(spark, settings, config):
    records = frame(spark, SUSPECTS_AND_INNOCENT)
    return records, graph_of(records, config, settings).cut()


def test_the_suspect_clusters_are_the_ones_a_guard_acts_on(suspects, config):
    records, graph = suspects
    scope = cut_out(records, graph, suspect_clusters(records, graph.components, config))
    assert sorted(r.record_id for r in scope.records.collect()) == ["f1", "f2", "s1", "s2", "x1", "x3", "y1", "y2"]


@pytest.mark.slow  # every guard twice
def test_guards_on_the_suspect_clusters_alone_give_the_whole_graph_result(suspects, settings, config):
    records, graph = suspects
    whole = guarded(records, graph, config, settings)
    scope = cut_out(records, graph, suspect_clusters(records, graph.components, config))
    scoped = scope.rejoin(guarded(scope.records, scope.graph, config, settings))
    assert labels(scoped.components) == labels(whole.components)
    assert edge_set(scoped.edges) == edge_set(whole.edges)
    assert groups(whole.components) == [["f1", "f2"], ["k1", "k2"], ["s1", "s2"], ["x1", "x3"], ["y1", "y2"]]


# ------------------------------------------------------------------------------------------ splink vetoes
def test_vetoes_separate_relatives_but_not_typos(spark, config):
    from splink import SparkAPI

    from cdp.identity.probabilistic import mark_vetoes

    SparkAPI(spark_session=spark)  # registers Splink's similarity functions (jaro_winkler), as a matching run does
    todo = spark.createDataFrame([
        ("laura", "laura", "lewis", date(1994, 5, 1)), ("sarah", "sarah", "lewis", date(1994, 5, 1)),  # sisters
        ("pilar", "pilar", "gil", None), ("pliar", "pliar", "gil", None),                            # a typo
        ("a", "a", "ruiz", None), ("ana", "ana", "ruiz", None),                                       # an initial
        ("cox", "lucy", "cox", None), ("chap", "lucy", "chapman", None),                             # surnames differ
        ("ben65", "benjamin", "lewis", date(1965, 3, 2)), ("ben94", "benjamin", "lewis", date(1994, 8, 9)),  # Sr / Jr
        ("d1", "eva", "sanz", date(1980, 1, 12)), ("d2", "eva", "sanz", date(1980, 1, 21)),           # a digit typo
    ], "record_id string, first_name_canonical string, last_name_match string, birth_date date")
    pairs = spark.createDataFrame([("laura", "sarah"), ("pilar", "pliar"), ("a", "ana"), ("cox", "chap"),
                                   ("ben65", "ben94"), ("d1", "d2")], "record_id_l string, record_id_r string")
    kept = {(r.record_id_l, r.record_id_r) for r in mark_vetoes(pairs, todo, config.matching).where("NOT vetoed").collect()}
    assert kept == {("pilar", "pliar"), ("a", "ana"), ("d1", "d2")}


def test_edges_keep_src_below_dst(spark, config):
    edges = deterministic_edges(frame(spark, [rec(f"r{i}", email="same@x.com") for i in (3, 1, 2)]), config)
    assert edges.where(F.col("src") >= F.col("dst")).count() == 0
