"""Pairwise evaluation of a clustering against labels, with Spark aggregations only.

Labels are the generator's ground truth or a user's own: a clerical-review sample of record pairs (is this
pair one person?) or a file giving records their true entity. Pairs of a group of n records = n(n-1)/2:
with entity labels, predicted pairs come from cluster sizes, true pairs from entity sizes, true-positive pairs
from the (cluster, entity) contingency table; with pair labels each labelled pair is looked up. Nothing per
record is collected, and precision and recall at each match-probability threshold come from one connected
components run over the deterministic clusters the scored pairs join.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from cdp.config import GraphSettings
from cdp.config.identity import PROBABILISTIC_RULE, IdentityConfig
from cdp.errors import CdpError
from cdp.identity.graph import connected_components
from cdp.identity.rules import blocking_keys, star, with_derived_attributes

PAIR_COLUMNS = ("source_l", "record_key_l", "source_r", "record_key_r", "is_match")
ENTITY_COLUMNS = ("source", "record_key", "entity_id")
ENTITY_ALIAS = "person_id"     # the generator's record_owners/*.csv: (source, record_key, person_id)
MATCH_VALUES = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
# what became of label rows that are not evaluated, by form: naming no identity record, an anonymous one (no
# customer id), contradicting each other, without an entity id, or a record paired with itself
SKIPPED = {"entities": ("not_in_identity_records", "anonymous", "conflicting", "without_entity"),
           "pairs": ("not_in_identity_records", "anonymous", "conflicting", "same_record")}


def _pairs(col: str = "n"):
    return F.sum(F.col(col) * (F.col(col) - 1) / 2).cast("long")


def _scores(tp: int, predicted: int, true: int) -> dict:
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


# ---------------------------------------------------------------------------------------------------- labels
@dataclass(frozen=True)
class Labels:
    """A labels file as read: pairs (source_l, record_key_l, source_r, record_key_r, is_match boolean) or
    entities (source, record_key, entity_id)."""

    path: str
    form: str            # "pairs" | "entities"
    rows: DataFrame


def _column(name: str) -> str:
    return name.strip().lstrip("\ufeff").strip().lower()


def labels_form(columns: list[str], path: str) -> str:
    """'pairs' or 'entities' from a labels header (case and spaces ignored, extra columns allowed)."""
    names = {_column(c) for c in columns}
    if set(PAIR_COLUMNS) <= names:
        return "pairs"
    if {"source", "record_key"} <= names and names & {"entity_id", ENTITY_ALIAS}:
        return "entities"
    found = ", ".join(c.strip() for c in columns if c.strip()) or "no header"
    raise CdpError(f"labels file {path} has {found}; give a CSV header naming either record pairs "
                   f"({', '.join(PAIR_COLUMNS)}) or each record's entity ({', '.join(ENTITY_COLUMNS)})")


def labels_header(path: str) -> list[str] | None:
    """The header of a local labels file (of the first file of a folder), read without Spark; None for a URI."""
    if "://" in path:
        return None
    p = Path(path)
    if not p.exists():
        raise CdpError(f"labels file {path} not found")
    files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith((".", "_"))) if p.is_dir() else [p]
    if not files:
        raise CdpError(f"labels folder {path} holds no file")
    with open(files[0], encoding="utf-8-sig", newline="") as fh:
        return next(csv.reader(fh), [])


def check_labels(path: str) -> str | None:
    """The form of a local labels file, or a one-line CdpError; before any JVM starts (None for a URI)."""
    header = labels_header(path)
    return None if header is None else labels_form(header, path)


def load_labels(spark: SparkSession, path: str | Path) -> Labels:
    """A labels CSV with a header (a file, or a folder of them like the generator's record_owners/).

    Pairs: source_l, record_key_l, source_r, record_key_r, is_match (true/false, yes/no, 1/0). Entities:
    source, record_key, entity_id (or person_id). Records are named by source and the source's record key.
    """
    path = str(path)
    header = labels_header(path)   # a missing file or empty folder is one line, not Spark's stack trace
    reader = spark.read.option("header", "true")
    if header:   # a local file's header is known: no Spark job to infer it
        reader = reader.schema(StructType([StructField(c, StringType()) for c in header]))
    raw = reader.csv(path)
    form = labels_form(raw.columns, path)
    df = raw.toDF(*[_column(c) for c in raw.columns])
    text = lambda c: F.nullif(F.trim(F.col(c)), F.lit(""))   # noqa: E731
    if form == "entities":
        entity = text("entity_id") if "entity_id" in df.columns else text(ENTITY_ALIAS)
        return Labels(path, form, df.select(text("source").alias("source"), text("record_key").alias("record_key"),
                                            entity.alias("entity_id")))
    word = F.lower(F.trim(F.col("is_match")))
    is_match = F.create_map(*[F.lit(x) for kv in MATCH_VALUES.items() for x in kv])[word]
    rows = df.select(*[text(c).alias(c) for c in PAIR_COLUMNS[:4]], is_match.alias("is_match"),
                     F.col("is_match").alias("_given"))
    bad = rows.where(F.col("is_match").isNull()).agg(F.count("*").alias("n"), F.min(F.coalesce("_given", F.lit(""))).alias("e")).first()
    if bad["n"]:
        raise CdpError(f"labels file {path}: is_match must be true/false, yes/no or 1/0; {bad['n']:,} row(s) "
                       f"say otherwise (e.g. {bad['e']!r})")
    return Labels(path, form, rows.drop("_given"))


@dataclass(frozen=True)
class LabelledRecords:
    """Labels matched to the identity records: the ones both known and given a customer id are evaluated."""

    form: str
    truth: DataFrame             # entities: (record_id, person_id); pairs: (src, dst, is_match), src < dst
    coverage: dict[str, int]     # rows, rows by SKIPPED status, evaluated_records or evaluated_pairs


def match_labels(labels: Labels, records: DataFrame, mapped: DataFrame) -> LabelledRecords:
    """labels + silver.identity_records (record_id, source, source_record_key) + mapped record ids (the identity
    map). Labels naming no identity record, an anonymous one or contradicting each other are counted, not used."""
    from cdp.frames import cut_lineage

    ids = records.select("source", F.col("source_record_key").alias("record_key"), "record_id")
    known = mapped.select("record_id", F.lit(True).alias("mapped"))
    if labels.form == "entities":
        groups = (labels.rows.groupBy("source", "record_key")
                  .agg(F.count("*").alias("rows"), F.countDistinct("entity_id").alias("entities"),
                       F.min("entity_id").alias("person_id"))
                  .join(ids, ["source", "record_key"], "left").join(known, "record_id", "left"))
        status = (F.when(F.col("entities") == 0, "without_entity")
                  .when(F.col("record_id").isNull(), "not_in_identity_records")
                  .when(F.col("entities") > 1, "conflicting")
                  .when(F.col("mapped").isNull(), "anonymous").otherwise("evaluated"))
        keep = ["record_id", "person_id"]
    else:
        side = lambda s: ids.select(*[F.col(c).alias(f"{c}_{s}") for c in ids.columns])   # noqa: E731
        found = (labels.rows.join(side("l"), ["source_l", "record_key_l"], "left")
                 .join(side("r"), ["source_r", "record_key_r"], "left"))
        missing = F.col("record_id_l").isNull() | F.col("record_id_r").isNull()
        pairs = found.select(F.when(~missing, F.least("record_id_l", "record_id_r")).alias("src"),
                             F.when(~missing, F.greatest("record_id_l", "record_id_r")).alias("dst"),
                             F.col("is_match").cast("int").alias("m"))
        groups = (pairs.groupBy("src", "dst")   # every row naming an unknown record falls in the (null, null) group
                  .agg(F.count("*").alias("rows"), F.min("m").alias("lo"), F.max("m").alias("hi"))
                  .join(known.withColumnRenamed("record_id", "src").withColumnRenamed("mapped", "mapped_src"), "src", "left")
                  .join(known.withColumnRenamed("record_id", "dst"), "dst", "left")
                  .withColumn("is_match", F.col("hi") == 1))
        status = (F.when(F.col("src").isNull(), "not_in_identity_records")
                  .when(F.col("src") == F.col("dst"), "same_record")
                  .when(F.col("lo") != F.col("hi"), "conflicting")
                  .when(F.col("mapped_src").isNull() | F.col("mapped").isNull(), "anonymous").otherwise("evaluated"))
        keep = ["src", "dst", "is_match"]
    groups = groups.withColumn("status", status).transform(cut_lineage)
    counts = {r.status: (r.rows, r.n) for r in
              groups.groupBy("status").agg(F.sum("rows").alias("rows"), F.count("*").alias("n")).collect()}
    evaluated = f"evaluated_{'records' if labels.form == 'entities' else 'pairs'}"
    coverage = {"rows": sum(rows for rows, _ in counts.values()),
                **{s: counts.get(s, (0, 0))[0] for s in SKIPPED[labels.form]}, evaluated: counts.get("evaluated", (0, 0))[1]}
    if not coverage[evaluated]:
        example = labels.rows.first()
        named = (f"{example['source']} {example['record_key']}" if labels.form == "entities"
                 else f"{example['source_l']} {example['record_key_l']}") if example else "nothing"
        if coverage["not_in_identity_records"] == coverage["rows"]:
            raise CdpError(f"no record of labels file {labels.path} is in silver.identity_records (e.g. {named}): "
                           "labels name records by source name and the source's own record key")
        raise CdpError(f"labels file {labels.path} leaves nothing to evaluate: of {coverage['rows']:,} row(s), "
                       + ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in coverage.items()
                                   if k in SKIPPED[labels.form] and v))
    return LabelledRecords(labels.form, groups.where(F.col("status") == "evaluated").select(*keep), coverage)


def load_truth(spark: SparkSession, truth_dir: str | Path) -> DataFrame:
    """truth_dir/record_owners/*.csv -> (source, record_key, person_id)."""
    path = f"{str(truth_dir).rstrip('/')}/record_owners"  # a folder, not a glob: no metadata-probe warning
    return spark.read.option("header", "true").schema("source string, record_key string, person_id string").csv(path)


def truth_for_records(records: DataFrame, truth: DataFrame) -> DataFrame:
    """Identity records (record_id, source, source_record_key) -> (record_id, person_id) via the ground truth."""
    return records.select("record_id", "source", "source_record_key").join(
        truth.select("source", F.col("record_key").alias("source_record_key"), "person_id"),
        ["source", "source_record_key"],
    ).select("record_id", "person_id")


# --------------------------------------------------------------------------------------------------- metrics
def pairwise_metrics(assignments: DataFrame, truth: DataFrame) -> dict:
    """assignments(record_id, cluster) + truth(record_id, person_id), over the records both know."""
    both = assignments.select("record_id", "cluster").join(truth.select("record_id", "person_id"), "record_id")
    cells = both.groupBy("cluster", "person_id").agg(F.count("*").alias("n")).persist()
    try:
        clusters = cells.groupBy("cluster").agg(F.sum("n").alias("n"), F.count("*").alias("persons"))
        persons = cells.groupBy("person_id").agg(F.sum("n").alias("n"), F.count("*").alias("clusters"))
        c = clusters.agg(_pairs().alias("pairs"), F.count("*").alias("count"),
                         F.sum(F.when(F.col("persons") > 1, 1).otherwise(0)).alias("over")).first()
        p = persons.agg(_pairs().alias("pairs"), F.count("*").alias("count"),
                        F.sum(F.when(F.col("clusters") > 1, 1).otherwise(0)).alias("under")).first()
        tp = cells.agg(_pairs().alias("pairs")).first()["pairs"] or 0
    finally:
        cells.unpersist()
    predicted, true = c["pairs"] or 0, p["pairs"] or 0
    return {
        **_scores(tp, predicted, true),
        "predicted_pairs": predicted, "true_pairs": true, "true_positive_pairs": tp,
        "clusters": c["count"], "persons": p["count"],
        "over_merged_clusters": c["over"] or 0, "under_merged_persons": p["under"] or 0,
    }


def _entity_pair_counts(assignments: DataFrame, truth: DataFrame, by: list[str]) -> DataFrame:
    """(*by, predicted_pairs, true_pairs, true_positive_pairs) from the (cluster, entity) contingency table."""
    cells = (assignments.select(*by, "record_id", "cluster").join(truth.select("record_id", "person_id"), "record_id")
             .groupBy(*by, "cluster", "person_id").agg(F.count("*").alias("n")))
    sizes = lambda key, name: cells.groupBy(*by, key).agg(F.sum("n").alias("n")).groupBy(*by).agg(  # noqa: E731
        _pairs().alias(name))
    return (sizes("cluster", "predicted_pairs").join(sizes("person_id", "true_pairs"), by)
            .join(cells.groupBy(*by).agg(_pairs().alias("true_positive_pairs")), by))


def _labelled_pair_counts(assignments: DataFrame, pairs: DataFrame, by: list[str]) -> DataFrame:
    """(*by, predicted_pairs, true_pairs, true_positive_pairs) over labelled pairs: predicted = one cluster."""
    a = assignments.select(*by, "record_id", "cluster")
    src = a.select(*by, F.col("record_id").alias("src"), F.col("cluster").alias("c_src"))
    dst = a.select(*by, F.col("record_id").alias("dst"), F.col("cluster").alias("c_dst"))
    same = F.col("c_src") == F.col("c_dst")
    count = lambda cond: F.sum(F.when(cond, 1).otherwise(0)).cast("long")   # noqa: E731
    return (pairs.select("src", "dst", "is_match").join(src, "src").join(dst, [*by, "dst"]).groupBy(*by)
            .agg(count(same).alias("predicted_pairs"), count(F.col("is_match")).alias("true_pairs"),
                 count(same & F.col("is_match")).alias("true_positive_pairs")))


def labelled_pair_metrics(assignments: DataFrame, pairs: DataFrame) -> dict:
    """assignments(record_id, cluster) + labelled pairs(src, dst, is_match): precision, recall, F1 over them."""
    row = _labelled_pair_counts(assignments, pairs, []).first()
    counts = {k: (row[k] if row else 0) or 0 for k in ("predicted_pairs", "true_pairs", "true_positive_pairs")}
    return {**_scores(counts["true_positive_pairs"], counts["predicted_pairs"], counts["true_pairs"]), **counts}


def label_metrics(assignments: DataFrame, labelled: LabelledRecords) -> dict:
    """Precision, recall, F1 and pair counts of a clustering against entity or pair labels."""
    if labelled.form == "entities":
        return pairwise_metrics(assignments, labelled.truth)
    return labelled_pair_metrics(assignments, labelled.truth)


# ------------------------------------------------------------------------------------------------ thresholds
def _with_thresholds(df: DataFrame, thresholds: list[float]) -> DataFrame:
    """Each row once per threshold, as (t, threshold) with t its index: no cross join, the list is a literal."""
    each = F.explode(F.array(*[F.struct(F.lit(i).alias("t"), F.lit(float(x)).alias("threshold"))
                               for i, x in enumerate(thresholds)]))
    return df.select("*", each.alias("_t")).select(*df.columns, "_t.t", "_t.threshold")


def deterministic_components(mapped: DataFrame, links: DataFrame, graph: GraphSettings) -> DataFrame:
    """(record_id, component): the mapped records clustered by the deterministic links alone."""
    edges = links.where(F.col("rule") != PROBABILISTIC_RULE).select("src", "dst")
    cc = connected_components(mapped.select(F.col("record_id").alias("id")), edges, graph)
    return cc.select(F.col("id").alias("record_id"), "component")


def threshold_merges(components: DataFrame, scores: DataFrame, thresholds: list[float],
                     graph: GraphSettings) -> DataFrame:
    """(t, component, cluster) for the deterministic components the non-vetoed scored pairs at or above each
    threshold join (the others are their own cluster): one connected components run over every threshold's
    graph at once, each vertex tagged with its threshold's index."""
    comp = components.select("record_id", "component")
    edges = (scores.where(~F.col("vetoed")).select("src", "dst", "match_probability")
             .join(comp.withColumnRenamed("record_id", "src").withColumnRenamed("component", "c_src"), "src")
             .join(comp.withColumnRenamed("record_id", "dst").withColumnRenamed("component", "c_dst"), "dst")
             .where(F.col("c_src") != F.col("c_dst"))
             .transform(_with_thresholds, thresholds).where(F.col("match_probability") >= F.col("threshold")))
    tag = lambda c: F.concat(F.col("t").cast("string"), F.lit("|"), F.col(c))   # noqa: E731
    tagged = edges.select(tag("c_src").alias("src"), tag("c_dst").alias("dst")).distinct()
    vertices = tagged.select(F.col("src").alias("id")).union(tagged.select("dst")).distinct()
    cc = connected_components(vertices, tagged, graph)
    untag = lambda c: F.expr(f"substring({c}, instr({c}, '|') + 1)")   # noqa: E731
    return cc.select(F.expr("int(substring_index(id, '|', 1))").alias("t"), untag("id").alias("component"),
                     untag("component").alias("cluster"))


def threshold_metrics(labelled: LabelledRecords, mapped: DataFrame, links: DataFrame, scores: DataFrame,
                      thresholds: list[float], graph: GraphSettings) -> list[dict]:
    """Per threshold t: the clustering the deterministic links plus the non-vetoed scored pairs with
    match_probability >= t give (before the over-merge guards), its precision, recall and F1 against the labels,
    the probabilistic links it adds and its customers. One row per threshold, in the given order."""
    from cdp.frames import cut_lineage

    components = deterministic_components(mapped, links, graph).transform(cut_lineage)
    merges = threshold_merges(components, scores, thresholds, graph).transform(cut_lineage)
    ids = (labelled.truth.select("record_id") if labelled.form == "entities" else
           labelled.truth.select(F.col("src").alias("record_id")).union(labelled.truth.select("dst")).distinct())
    at = (components.join(ids, "record_id").transform(_with_thresholds, thresholds)
          .join(merges, ["t", "component"], "left")
          .select("t", "record_id", F.coalesce("cluster", "component").alias("cluster")))
    pair_counts = (_entity_pair_counts(at, labelled.truth, ["t"]) if labelled.form == "entities"
                   else _labelled_pair_counts(at, labelled.truth, ["t"]))
    joined = merges.groupBy("t").agg((F.count("*") - F.countDistinct("cluster")).alias("joined"))
    by_t = {r.t: r for r in pair_counts.join(joined, "t", "left").collect()}   # one row per threshold
    n_components = components.where(F.col("record_id") == F.col("component")).count()   # labelled by a member
    p = F.col("match_probability")
    live = scores.where(~F.col("vetoed"))
    linked = live.agg(*[F.count(F.when(p >= x, 1)).alias(f"t{i}") for i, x in enumerate(thresholds)]).first()
    out = []
    for i, x in enumerate(thresholds):
        r = by_t.get(i)
        counts = {k: (r[k] if r else 0) or 0 for k in ("predicted_pairs", "true_pairs", "true_positive_pairs")}
        out.append({"threshold": x, "links": linked[f"t{i}"] or 0, "customers": n_components - ((r and r.joined) or 0),
                    **counts, **_scores(counts["true_positive_pairs"], counts["predicted_pairs"], counts["true_pairs"])})
    return out


def evidence_ceiling(records: DataFrame, truth: DataFrame, config: IdentityConfig, graph: GraphSettings) -> DataFrame:
    """(record_id, cluster): the clustering of an oracle that links two records only when they are one person
    AND share a value some enabled deterministic rule links on (an email, a device, a pooled handle, name and
    birth date, ...). No resolver working from exact shared evidence can find more true pairs, so its recall is
    the ceiling the data allows: a device that never logged in, or a social post known by a display name and a
    handle used nowhere else, shares nothing with the rest of its person. Probabilistic links can pass it only
    through typos. `records`: identity records after junk removal (mark_junk), the ones given a customer id.
    """
    keys = (blocking_keys(with_derived_attributes(records, config), config.enabled_rules, config.junk)
            .select("record_id", "rule", "key").join(truth.select("record_id", "person_id"), "record_id"))
    edges = star(keys, ["person_id", "rule", "key"]).select("src", F.col("record_id").alias("dst")).distinct()
    cc = connected_components(records.select(F.col("record_id").alias("id")), edges, graph)
    return cc.select(F.col("id").alias("record_id"), F.col("component").alias("cluster"))
