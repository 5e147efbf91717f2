"""How good is a churn score on held-out snapshots: ROC-AUC, PR-AUC, lift and capture in the top decile,
calibration, and the curves behind them. Every figure is a Spark aggregation; what reaches the driver is bounded
by the number of bins (never one row per customer)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.frames import cache_columns, uncache

LABEL = "label"
CURVE_BINS = 200
CALIBRATION_BINS = 10


@dataclass
class Evaluation:
    """The figures of one score on one labelled frame."""
    roc_auc: float
    pr_auc: float
    top_decile_lift: float
    top_decile_capture: float
    base_rate: float
    rows: int
    calibration_error: float | None = None          # expected calibration error (probabilities only)
    calibration: list[tuple[float, float, int]] = field(default_factory=list)   # (mean predicted, observed, rows)
    roc: list[tuple[float, float]] = field(default_factory=list)                 # (false positive rate, recall)
    pr: list[tuple[float, float]] = field(default_factory=list)                  # (recall, precision)

    def metrics(self, prefix: str) -> dict[str, float]:
        names = ("roc_auc", "pr_auc", "top_decile_lift", "top_decile_capture", "base_rate", "calibration_error")
        return {f"{prefix}{n}": float(getattr(self, n)) for n in names if getattr(self, n) is not None}


def churn_probability(probability: str = "probability") -> Column:
    """P(churned) from a Spark ML classifier's probability vector."""
    return vector_to_array(F.col(probability))[1]


def evaluate_score(scored: DataFrame, score: str, is_probability: bool = True) -> Evaluation:
    """Figures of `score` (higher = more likely to churn) against `label` (1.0 = churned) on `scored`. The two
    columns are materialised once: every figure below is its own job, and `scored` is often a model's transform."""
    frame = (scored.select(F.col(score).cast("double").alias("_score"), F.col(LABEL).cast("double").alias(LABEL))
             .where(F.col("_score").isNotNull()).transform(cache_columns))
    try:
        return _figures(frame, is_probability)
    finally:
        uncache(frame)


def _figures(frame: DataFrame, is_probability: bool) -> Evaluation:
    evaluator = BinaryClassificationEvaluator(rawPredictionCol="_score", labelCol=LABEL)
    roc_auc = evaluator.setMetricName("areaUnderROC").evaluate(frame)
    pr_auc = evaluator.setMetricName("areaUnderPR").evaluate(frame)
    totals = frame.agg(F.count(F.lit(1)).alias("n"), F.sum(LABEL).alias("pos")).first()
    n, pos = totals["n"], totals["pos"] or 0.0
    # the top decile: scores at or above the 90th percentile (approximate to 0.1%; ties may make it a bit larger)
    cut = frame.approxQuantile("_score", [0.9], 0.001)[0]
    top = frame.where(F.col("_score") >= cut).agg(F.count(F.lit(1)).alias("n"), F.sum(LABEL).alias("pos")).first()
    base = pos / n if n else 0.0
    top_rate = (top["pos"] or 0.0) / top["n"] if top["n"] else 0.0
    result = Evaluation(roc_auc=roc_auc, pr_auc=pr_auc, top_decile_lift=top_rate / base if base else 0.0,
                        top_decile_capture=(top["pos"] or 0.0) / pos if pos else 0.0, base_rate=base, rows=n)
    if is_probability:
        result.calibration, result.calibration_error = _calibration(frame, n)
        result.roc, result.pr = _curves(frame)
    return result


def _calibration(frame: DataFrame, n: int) -> tuple[list[tuple[float, float, int]], float]:
    bins = F.least(F.floor(F.col("_score") * CALIBRATION_BINS), F.lit(CALIBRATION_BINS - 1))
    rows = (frame.groupBy(bins.alias("bin"))
            .agg(F.avg("_score").alias("predicted"), F.avg(LABEL).alias("observed"), F.count(F.lit(1)).alias("n"))
            .orderBy("bin").collect())
    table = [(r["predicted"], r["observed"], r["n"]) for r in rows]
    ece = sum(k / n * abs(p - o) for p, o, k in table) if n else 0.0
    return table, ece


def _curves(frame: DataFrame) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """ROC and PR points from the positives and negatives per score bin, highest scores first."""
    bins = F.least(F.floor(F.col("_score") * CURVE_BINS), F.lit(CURVE_BINS - 1))
    rows = (frame.groupBy(bins.alias("bin"))
            .agg(F.sum(LABEL).alias("pos"), F.sum(1 - F.col(LABEL)).alias("neg"))
            .orderBy(F.desc("bin")).collect())
    total_pos = sum(r["pos"] for r in rows) or 1.0
    total_neg = sum(r["neg"] for r in rows) or 1.0
    tp = fp = 0.0
    roc, pr = [(0.0, 0.0)], []
    for r in rows:
        tp, fp = tp + r["pos"], fp + r["neg"]
        roc.append((fp / total_neg, tp / total_pos))
        pr.append((tp / total_pos, tp / (tp + fp) if tp + fp else 1.0))
    return roc, pr
