"""Probabilistic matching with Splink's Spark backend (Fellegi-Sunter): records that share no exact identifier but
agree on names (typos, nicknames), date of birth, address, postcode ... become links above a match threshold.

The model is Splink's, estimated from the data every run (u by random sampling, m by expectation maximisation
over the configured blocking passes, term-frequency adjustments where configured) unless
conf/identity.yaml `probabilistic.model` names a saved model JSON. Candidate pairs come only from the
configured blocking rules (never a cross join). Output edges carry the match probability, the match weight and
each comparison's level as evidence.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.config.identity import PROBABILISTIC_RULE
from cdp.config.matching import Comparison, Probabilistic
from cdp.frames import cut_lineage, union_all
from cdp.identity.clusters import EDGE_SCHEMA
from cdp.identity.rules import dates_compatible, names_compatible


@dataclass(frozen=True)
class SavedModel:
    """A model an earlier run trained (or loaded), kept with the term frequencies it was scored with: the same
    pair gets the same match probability in every later run, full or incremental (scores never depend on which
    other records a run happens to hold)."""

    model: dict = field(repr=False)
    term_frequencies: DataFrame = field(repr=False)   # TF_SCHEMA


TF_SCHEMA = "attribute string, value string, tf double"


@dataclass
class MatchingRun:
    """What one probabilistic pass did: its model (Splink JSON), term frequencies and pair counts."""

    model: dict = field(default_factory=dict, repr=False)
    candidates: int = 0
    links: int = 0
    trained: bool = False
    term_frequencies: DataFrame | None = field(default=None, repr=False)   # TF_SCHEMA
    skipped_passes: list[str] = field(default_factory=list)   # EM passes no pair of these records could feed


def postcode_comparison(column: str, prefixes: list[int]):
    """Postcodes of any country: equal, then the same first N characters for each N (longest first), else
    different. (Splink's PostcodeComparison parses UK postcodes into sector, district and area.)"""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    levels = [cll.NullLevel(column), cll.ExactMatchLevel(column)]
    for n in sorted({int(p) for p in prefixes}, reverse=True):
        # unquoted: attribute names are lower-case identifiers, and a double-quoted name is a string in Spark SQL
        levels.append(cll.CustomLevel(f"substr({column}_l, 1, {n}) = substr({column}_r, 1, {n})",
                                      f"first {n} characters equal"))
    return cl.CustomComparison([*levels, cll.ElseLevel()], output_column_name=column,
                               comparison_description=f"{column}: exact, then common prefix of {prefixes}")


def comparison(c: Comparison):
    """The Splink comparison a conf/identity.yaml comparison names (see cdp.config.matching.COMPARISON_METHODS)."""
    import splink.comparison_library as cl

    t = c.thresholds
    edits = [int(x) for x in t]
    made = {
        "name_comparison": lambda: cl.NameComparison(c.attribute, **({"jaro_winkler_thresholds": t} if t else {})),
        "forename_surname_comparison": lambda: cl.ForenameSurnameComparison(
            c.attribute, c.surname, **({"jaro_winkler_thresholds": t} if t else {})),
        "date_of_birth_comparison": lambda: cl.DateOfBirthComparison(c.attribute, input_is_string=False),
        "email_comparison": lambda: cl.EmailComparison(c.attribute),
        "jaro_winkler_at_thresholds": lambda: cl.JaroWinklerAtThresholds(c.attribute, t or [0.9, 0.7]),
        "jaro_at_thresholds": lambda: cl.JaroAtThresholds(c.attribute, t or [0.9, 0.7]),
        "levenshtein_at_thresholds": lambda: cl.LevenshteinAtThresholds(c.attribute, edits or [1, 2]),
        "damerau_levenshtein_at_thresholds": lambda: cl.DamerauLevenshteinAtThresholds(c.attribute, edits or [1, 2]),
        "postcode_comparison": lambda: postcode_comparison(c.attribute, edits or [3, 2]),
        "exact_match": lambda: cl.ExactMatch(c.attribute),
    }[c.method]()
    return made.configure(term_frequency_adjustments=True) if c.term_frequency else made


def prediction_blocking(p: Probabilistic, across: str | None = None) -> list:
    """The blocking rules that generate candidate pairs; with `across`, pairs whose records already share that
    column's value (the same deterministic cluster) are not generated: scoring them links nothing new."""
    from splink import block_on
    from splink.blocking_rule_library import And, CustomRule

    if not across:
        return [block_on(*b) for b in p.blocking]
    return [And(block_on(*b), CustomRule(f"l.{across} <> r.{across}")) for b in p.blocking]


def splink_settings(p: Probabilistic, across: str | None = None):
    from splink import SettingsCreator

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        comparisons=[comparison(c) for c in p.comparisons],
        blocking_rules_to_generate_predictions=prediction_blocking(p, across),
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=True,  # mw_<comparison> columns become each link's evidence
        max_iterations=p.training.max_iterations,
        em_convergence=0.001,
    )


def candidates(records: DataFrame, p: Probabilistic, across: str | None = None) -> DataFrame:
    """Records the model compares: all of `require` and one of `require_any` present; only the columns it uses."""
    cond = reduce(lambda a, b: a & b, [F.col(a).isNotNull() for a in p.require], F.lit(True))
    if p.require_any:
        cond = cond & reduce(lambda a, b: a | b, [F.col(a).isNotNull() for a in p.require_any])
    used = list(dict.fromkeys([a for c in p.comparisons for a in c.columns] + [a for b in p.blocking for a in b]))
    return records.where(cond).select("record_id", *used, *([across] if across else []))


def tf_attributes(p: Probabilistic) -> list[str]:
    return [c.attribute for c in p.comparisons if c.term_frequency]


def term_frequencies(todo: DataFrame, p: Probabilistic) -> DataFrame:
    """(attribute, value, tf) for each term-frequency-adjusted comparison: a value's share of the candidates
    holding one (Splink's own formula, count(*) / count(column)), values as text."""
    spark = todo.sparkSession
    parts = []
    for a in tf_attributes(p):
        parts.append(todo.where(F.col(a).isNotNull()).groupBy(F.col(a).cast("string").alias("value"))
                     .agg(F.count("*").alias("_n")).select(F.lit(a).alias("attribute"), "value", "_n"))
    if not parts:
        return spark.createDataFrame([], TF_SCHEMA)
    counts = union_all(parts)
    totals = counts.groupBy("attribute").agg(F.sum("_n").alias("_total"))
    return (counts.join(F.broadcast(totals), "attribute")
            .select("attribute", "value", (F.col("_n").cast("double") / F.col("_total")).alias("tf")))


def register_term_frequencies(linker, db_api, tf: DataFrame, todo: DataFrame, p: Probabilistic) -> None:
    """Splink uses these lookups instead of computing term frequencies from the records at hand (a value missing
    from them gets no adjustment)."""
    types = dict(todo.dtypes)
    for a in tf_attributes(p):
        lookup = tf.where(F.col("attribute") == a).select(F.col("value").cast(types.get(a, "string")).alias(a),
                                                          F.col("tf").alias(f"tf_{a}"))
        linker.table_management.register_term_frequency_lookup(db_api.register(lookup), a)


def evidence_column(model: dict) -> F.Column:
    """'match_probability=0.9981;match_weight=11.20;first_name_canonical=+6.5;birth_date=+12.3;...': each
    comparison's contribution to the match weight (its level's label is in the model JSON)."""
    parts = [F.concat(F.lit("match_probability="), F.format_number("match_probability", 4)),
             F.concat(F.lit("match_weight="), F.format_number("match_weight", 2))]
    for comp in model.get("comparisons", []):
        column = comp["output_column_name"]
        mw = F.col(f"mw_{column}")
        parts.append(F.when(mw != 0, F.concat(F.lit(f"{column}="), F.when(mw > 0, F.lit("+")).otherwise(F.lit("")),
                                              F.format_number(mw, 1))))
    return F.concat_ws(";", *parts)


def agrees(c: Comparison, left: F.Column, right: F.Column, veto_similarity: float = 0.88,
           max_edit_distance: int = 1) -> F.Column:
    """True unless the two values disagree outright for this comparison (null on either side: no evidence, True).

    name (and a forename-surname's forename): Jaro-Winkler (Splink's function) at least `veto_similarity`, or
    names the household guard calls compatible (equal, same first token, an initial, `max_edit_distance`
    typos): laura / sarah and steven / kevin disagree, pilar / pliar and a / ana do not; jaro_winkler / jaro: at
    least the lowest threshold; date: equal, one typo or under a month apart; (damerau_)levenshtein: within the
    largest distance; postcode: the shortest prefix equal; exact / email: equal.
    """
    lowest = min(c.thresholds) if c.thresholds else 0.7   # Splink's lowest default similarity level
    if c.method in ("name_comparison", "forename_surname_comparison"):
        ok = ((F.call_function("jaro_winkler", left, right) >= veto_similarity)
              | names_compatible(left, right, max_edit_distance))
    elif c.method == "jaro_winkler_at_thresholds":
        ok = F.call_function("jaro_winkler", left, right) >= lowest
    elif c.method == "jaro_at_thresholds":
        ok = F.call_function("jaro_sim", left, right) >= lowest
    elif c.method == "date_of_birth_comparison":
        ok = dates_compatible(left, right)
    elif c.method == "levenshtein_at_thresholds":
        ok = F.levenshtein(left, right) <= int(max(c.thresholds or [2]))
    elif c.method == "damerau_levenshtein_at_thresholds":
        ok = F.call_function("damerau_levenshtein", left, right) <= int(max(c.thresholds or [2]))
    elif c.method == "postcode_comparison":
        n = int(min(c.thresholds or [2]))
        ok = F.substring(left, 1, n) == F.substring(right, 1, n)
    else:
        ok = left == right
    return F.coalesce(ok, F.lit(True))


def mark_vetoes(pairs: DataFrame, todo: DataFrame, p: Probabilistic, max_edit_distance: int = 1) -> DataFrame:
    """Adds `vetoed`: the pair disagrees outright on a must_not_disagree attribute, so it never links (two
    lookups of the pair's records; the pairs are only those over the scores floor)."""
    vetoed = [c for c in p.comparisons if c.attribute in p.must_not_disagree]
    if not vetoed:
        return pairs.withColumn("vetoed", F.lit(False))
    cols = [c.attribute for c in vetoed]
    left = todo.select(F.col("record_id").alias("record_id_l"), *[F.col(a).alias(f"{a}__l") for a in cols])
    right = todo.select(F.col("record_id").alias("record_id_r"), *[F.col(a).alias(f"{a}__r") for a in cols])
    joined = pairs.join(left, "record_id_l").join(right, "record_id_r")
    keep = reduce(lambda x, y: x & y, [agrees(c, F.col(f"{c.attribute}__l"), F.col(f"{c.attribute}__r"),
                                              p.veto_similarity, max_edit_distance) for c in vetoed])
    return joined.withColumn("vetoed", ~keep).drop(*[f"{a}__{side}" for a in cols for side in ("l", "r")])


def _quiet_splink() -> None:
    for name in ("splink", "py4j"):
        logging.getLogger(name).setLevel(logging.WARNING)


def train_model(linker, p: Probabilistic) -> list[str]:
    """Prior from exact-agreement rules, u from random pairs (seeded), m by EM over each blocking pass; returns the
    passes that found no pair of records to learn from (a company whose sources carry no birth date cannot learn
    from pairs agreeing on one: the other passes still train). ConfigError when no pass finds any."""
    from splink import block_on
    from splink.internals.exceptions import EMTrainingException

    if p.training.prior_rules:
        # P(two random records match) = pairs the exact rules find / all pairs, scaled up by their recall
        linker.training.estimate_probability_two_random_records_match(
            [block_on(*r) for r in p.training.prior_rules], recall=p.training.prior_recall)
    linker.training.estimate_u_using_random_sampling(max_pairs=p.training.u_max_pairs, seed=p.training.seed,
                                                     num_chunks=p.training.u_chunks)
    skipped = []
    for block in p.training.em_blocking:
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on(*block), estimate_without_term_frequencies=True, max_pairs=p.training.em_max_pairs)
        except EMTrainingException:
            skipped.append("+".join(block))
    if p.training.em_blocking and len(skipped) == len(p.training.em_blocking):
        from cdp.errors import ConfigError

        raise ConfigError(f"identity.yaml: key 'probabilistic.training.em_blocking': no pass finds a pair of records "
                          f"agreeing on its attributes ({', '.join(skipped)}), so the model learns nothing: block on "
                          "attributes the sources carry, or set probabilistic.enabled: false")
    return skipped


SCORE_SCHEMA = ("src string, dst string, match_probability double, match_weight double, vetoed boolean, "
                "evidence string")


def probabilistic_edges(records: DataFrame, p: Probabilistic, max_edit_distance: int = 1,
                        across: str | None = None, saved: SavedModel | None = None
                        ) -> tuple[DataFrame, MatchingRun, DataFrame]:
    """records (identity columns incl. derived ones) -> (edges src < dst with evidence, the run's model and
    counts, the scored pairs: every pair at or above p.scores_floor, vetoed or not: SCORE_SCHEMA).
    max_edit_distance: the household guard's, for the name vetoes (see `agrees`). across: a column (the
    deterministic cluster) whose equal values mean "already linked": such pairs are trained on, never predicted.
    saved: score with this model and its term frequencies (no training); otherwise the model is trained here (or
    read from p.model) and the term frequencies are those of these records.

    The edges are materialised (localCheckpoint) before Splink's intermediate tables are released.
    """
    from splink import Linker

    if p.model and not Path(p.model).is_file():
        from cdp.errors import ConfigError

        raise ConfigError(f"probabilistic.model: no Splink model JSON at {p.model}; train one (leave model unset) "
                          "and save it from the MLflow run's artifacts")
    _quiet_splink()
    spark = records.sparkSession
    run = MatchingRun()
    todo = candidates(records, p, across).transform(cut_lineage)
    run.candidates = todo.count()
    tf = saved.term_frequencies if saved else term_frequencies(todo, p).transform(cut_lineage)
    run.term_frequencies = tf
    if run.candidates < 2:
        run.model = saved.model if saved else {}
        return spark.createDataFrame([], EDGE_SCHEMA), run, spark.createDataFrame([], SCORE_SCHEMA)
    db_api = eager_spark_api(spark)
    fixed = saved.model if saved else json.loads(Path(p.model).read_text()) if p.model else None
    if fixed is not None:  # a saved model's parameters, with this conf's candidate pairs
        model_source = {**fixed, "link_type": "dedupe_only", "blocking_rules_to_generate_predictions": [
            r.create_blocking_rule_dict("spark") for r in prediction_blocking(p, across)]}
    else:
        model_source = splink_settings(p, across)
    linker = Linker(db_api.register(todo), model_source, log_level=logging.WARNING)
    register_term_frequencies(linker, db_api, tf, todo, p)
    if fixed is None:
        run.skipped_passes = train_model(linker, p)
        run.trained = True
    run.model = saved.model if saved else linker.misc.save_model_to_json()
    floor = min(p.scores_floor, p.threshold)
    scored = linker.inference.predict(threshold_match_probability=floor, warning_mode="never")
    scores = _scores(scored.as_spark_dataframe(), todo, p, max_edit_distance, run.model)
    edges = links_of(scores, p)
    run.links = edges.count()
    _release(db_api)
    return edges, run, scores


def _scores(predicted: DataFrame, records: DataFrame, p: Probabilistic, max_edit_distance: int,
            model: dict) -> DataFrame:
    """Splink's predictions (records: both sides' records) -> SCORE_SCHEMA, vetoes marked."""
    return mark_vetoes(predicted, records, p, max_edit_distance).select(
        F.least("record_id_l", "record_id_r").alias("src"), F.greatest("record_id_l", "record_id_r").alias("dst"),
        F.col("match_probability").cast("double").alias("match_probability"),
        F.col("match_weight").cast("double").alias("match_weight"), "vetoed",
        evidence_column(model).alias("evidence"),
    ).dropDuplicates(["src", "dst"]).transform(cut_lineage)


def links_of(scores: DataFrame, p: Probabilistic) -> DataFrame:
    """The scored pairs that link (at or above the threshold, not vetoed) as identity edges."""
    return scores.where((F.col("match_probability") >= p.threshold) & ~F.col("vetoed")).select(
        "src", "dst", F.lit(PROBABILISTIC_RULE).alias("rule"), F.col("evidence").alias("attribute_values"),
        F.lit(float(p.weight)).alias("weight")).transform(cut_lineage)


def score_against(new: DataFrame, existing: DataFrame, p: Probabilistic, saved: SavedModel,
                  max_edit_distance: int = 1) -> DataFrame:
    """The pairs (one record of `new`, one of `existing`) the saved model scores at or above the scores floor
    (SCORE_SCHEMA), candidates from the same blocking rules: what an incremental run learns about its new and
    changed records without scoring the pairs it already knows. `existing` may hold the `new` records too (their
    pairs among themselves are scored once; a record is never paired with itself)."""
    from splink import Linker, block_on
    from splink.blocking_rule_library import And, CustomRule

    _quiet_splink()
    spark = new.sparkSession
    left = candidates(new, p).transform(cut_lineage)
    right = candidates(existing, p)
    # only the existing records sharing a blocking key with a new one can pair with it
    right = union_all([right.join(left.select(*b).dropna().distinct(), b, "left_semi")
                                           for b in p.blocking]).dropDuplicates(["record_id"]).transform(cut_lineage)
    if left.limit(1).count() == 0 or right.limit(1).count() == 0:
        return spark.createDataFrame([], SCORE_SCHEMA)
    db_api = eager_spark_api(spark)
    model_source = {**saved.model, "link_type": "link_only", "blocking_rules_to_generate_predictions": [
        And(block_on(*b), CustomRule("l.record_id <> r.record_id")).create_blocking_rule_dict("spark")
        for b in p.blocking]}
    linker = Linker([db_api.register(left), db_api.register(right)], model_source, log_level=logging.WARNING)
    register_term_frequencies(linker, db_api, saved.term_frequencies, left, p)
    scored = linker.inference.predict(threshold_match_probability=min(p.scores_floor, p.threshold),
                                      warning_mode="never")
    sides = left.unionByName(right).dropDuplicates(["record_id"])
    scores = _scores(scored.as_spark_dataframe(), sides, p, max_edit_distance, saved.model)
    _release(db_api)
    return scores


def eager_spark_api(spark):
    """Splink's SparkAPI whose lineage breaks are materialised on the spot (a local checkpoint, `cut_lineage`).

    Splink marks its big intermediate tables (comparison vectors, blocked pairs, ...) with `persist()`, which is
    lazy, and leaves the EM agreement-pattern counts as a view: measured at 1M records, every EM iteration
    recomputed the ~1M comparison vectors of its pass (9-13 s an iteration, where the counts are a few hundred
    rows). Here those tables and the counts are computed once.
    """
    from splink import SparkAPI

    class EagerSparkAPI(SparkAPI):
        def _break_lineage_and_repartition(self, spark_df, templated_name, physical_name):
            out = super()._break_lineage_and_repartition(spark_df, templated_name, physical_name)
            if not (out.is_cached or templated_name == "__splink__agreement_pattern_counts"):
                return out
            out.unpersist()
            return cut_lineage(out)

    return EagerSparkAPI(spark_session=spark, break_lineage_method="persist")


def _release(db_api) -> None:
    """Drop Splink's cached intermediate tables (persisted frames) once the edges are materialised."""
    cache = getattr(db_api, "_intermediate_table_cache", None)
    for table in list(getattr(cache, "values", lambda: [])()):
        with contextlib.suppress(Exception):  # best effort: a table Splink already dropped
            table.drop_table_from_database_and_remove_from_cache()


def model_json(run: MatchingRun) -> str:
    return json.dumps(run.model, indent=2, sort_keys=True, default=str)
