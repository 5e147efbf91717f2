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

from cdp.identity.clusters import EDGE_SCHEMA
from cdp.identity.config import PROBABILISTIC_RULE, Comparison, Probabilistic
from cdp.identity.rules import dates_compatible, names_compatible
from cdp.spark import cut_lineage


@dataclass
class MatchingRun:
    """What one probabilistic pass did: its model (Splink JSON) and pair counts."""

    model: dict = field(default_factory=dict, repr=False)
    candidates: int = 0
    links: int = 0
    trained: bool = False


def comparison(c: Comparison):
    import splink.comparison_library as cl

    if c.method == "name":
        made = cl.NameComparison(c.attribute, **({"jaro_winkler_thresholds": c.thresholds} if c.thresholds else {}))
    elif c.method == "date":
        made = cl.DateOfBirthComparison(c.attribute, input_is_string=False)
    elif c.method == "email":
        made = cl.EmailComparison(c.attribute)
    elif c.method == "jaro_winkler":
        made = cl.JaroWinklerAtThresholds(c.attribute, c.thresholds or [0.9, 0.7])
    elif c.method == "levenshtein":
        made = cl.LevenshteinAtThresholds(c.attribute, [int(t) for t in c.thresholds] or [1, 2])
    else:
        made = cl.ExactMatch(c.attribute)
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
    used = list(dict.fromkeys([c.attribute for c in p.comparisons] + [a for b in p.blocking for a in b]))
    return records.where(cond).select("record_id", *used, *([across] if across else []))


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

    name: Jaro-Winkler (Splink's function) at least `veto_similarity`, or names the household guard calls
    compatible (equal, same first token, an initial, `max_edit_distance` typos): laura / sarah and steven /
    kevin disagree, pilar / pliar and a / ana do not; jaro_winkler: at least the lowest threshold; date: equal,
    one typo or under a month apart; levenshtein: within the largest distance; exact / email: equal.
    """
    if c.method == "name":
        ok = ((F.call_function("jaro_winkler", left, right) >= veto_similarity)
              | names_compatible(left, right, max_edit_distance))
    elif c.method == "jaro_winkler":
        lowest = min(c.thresholds) if c.thresholds else 0.7  # Splink's lowest default level for both
        ok = F.call_function("jaro_winkler", left, right) >= lowest
    elif c.method == "date":
        ok = dates_compatible(left, right)
    elif c.method == "levenshtein":
        ok = F.levenshtein(left, right) <= int(max(c.thresholds or [2]))
    else:
        ok = left == right
    return F.coalesce(ok, F.lit(True))


def veto_disagreements(pairs: DataFrame, todo: DataFrame, p: Probabilistic, max_edit_distance: int = 1) -> DataFrame:
    """Drop scored pairs that disagree outright on a must_not_disagree attribute (two lookups of the pair's
    records; pairs are only those above the threshold)."""
    vetoed = [c for c in p.comparisons if c.attribute in p.must_not_disagree]
    if not vetoed:
        return pairs
    cols = [c.attribute for c in vetoed]
    left = todo.select(F.col("record_id").alias("record_id_l"), *[F.col(a).alias(f"{a}__l") for a in cols])
    right = todo.select(F.col("record_id").alias("record_id_r"), *[F.col(a).alias(f"{a}__r") for a in cols])
    joined = pairs.join(left, "record_id_l").join(right, "record_id_r")
    keep = reduce(lambda x, y: x & y, [agrees(c, F.col(f"{c.attribute}__l"), F.col(f"{c.attribute}__r"),
                                              p.veto_similarity, max_edit_distance) for c in vetoed])
    return joined.where(keep).drop(*[f"{a}__{side}" for a in cols for side in ("l", "r")])


def _quiet_splink() -> None:
    for name in ("splink", "py4j"):
        logging.getLogger(name).setLevel(logging.WARNING)


def train_model(linker, p: Probabilistic) -> None:
    """Prior from exact-agreement rules, u from random pairs (seeded), m by EM over each blocking pass."""
    from splink import block_on

    if p.training.prior_rules:
        # P(two random records match) = pairs the exact rules find / all pairs, scaled up by their recall
        linker.training.estimate_probability_two_random_records_match(
            [block_on(*r) for r in p.training.prior_rules], recall=p.training.prior_recall)
    linker.training.estimate_u_using_random_sampling(max_pairs=p.training.u_max_pairs, seed=p.training.seed,
                                                     num_chunks=p.training.u_chunks)
    for block in p.training.em_blocking:
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on(*block), estimate_without_term_frequencies=True, max_pairs=p.training.em_max_pairs)


def probabilistic_edges(records: DataFrame, p: Probabilistic, max_edit_distance: int = 1,
                        across: str | None = None) -> tuple[DataFrame, MatchingRun]:
    """records (identity columns incl. derived ones) -> (edges src < dst with evidence, the run's model and counts).
    max_edit_distance: the household guard's, for the name vetoes (see `agrees`). across: a column (the
    deterministic cluster) whose equal values mean "already linked": such pairs are trained on, never predicted.

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
    if run.candidates < 2:
        return spark.createDataFrame([], EDGE_SCHEMA), run
    db_api = eager_spark_api(spark)
    if p.model:  # a saved model's parameters, with this conf's candidate pairs
        model_source = json.loads(Path(p.model).read_text())
        model_source["blocking_rules_to_generate_predictions"] = [
            r.create_blocking_rule_dict("spark") for r in prediction_blocking(p, across)]
    else:
        model_source = splink_settings(p, across)
    linker = Linker(db_api.register(todo), model_source, log_level=logging.WARNING)
    if not p.model:
        train_model(linker, p)
        run.trained = True
    run.model = linker.misc.save_model_to_json()
    scored = linker.inference.predict(threshold_match_probability=p.threshold, warning_mode="never")
    pairs = scored.as_spark_dataframe()
    pairs = veto_disagreements(pairs, todo, p, max_edit_distance)
    edges = pairs.select(
        F.least("record_id_l", "record_id_r").alias("src"), F.greatest("record_id_l", "record_id_r").alias("dst"),
        F.lit(PROBABILISTIC_RULE).alias("rule"), evidence_column(run.model).alias("attribute_values"),
        F.lit(float(p.weight)).alias("weight"),
    ).dropDuplicates(["src", "dst"]).transform(cut_lineage)
    run.links = edges.count()
    _release(db_api)
    return edges, run


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
