"""The same features and seed give the same churn model, whatever order Spark hands the rows over in (a rewritten
Delta table, another shuffle): trained twice, once on the rows shuffled into other partitions, the hyperparameters
and every held-out probability are identical (real Spark ML, tiny data)."""

from __future__ import annotations

from datetime import date

from pyspark.sql import functions as F

from cdp.config.churn import load_churn_config
from cdp.ml.train import score_frame, train_churn_models

DATES = [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)]
PER_SNAPSHOT = 80
FEATURES = ["days_since_last_activity", "purchases_total", "complaints_90d"]


def features(spark):
    """Snapshots whose churn follows inactivity and complaints, with enough noise that which depth wins the grid
    depends on which customers validate it."""
    snapshot = F.element_at(F.array(*[F.lit(d) for d in DATES]), (F.col("id") / PER_SNAPSHOT).cast("int") + 1)
    frame = spark.range(PER_SNAPSHOT * len(DATES)).select(
        F.concat(F.lit("C"), (F.col("id") % PER_SNAPSHOT).cast("string")).alias("customer_id"),
        snapshot.alias("snapshot_date"), (F.rand(seed=1) * 100).alias("days_since_last_activity"),
        F.floor(F.rand(seed=2) * 10).alias("purchases_total"), F.floor(F.rand(seed=3) * 3).alias("complaints_90d"))
    signal = F.col("days_since_last_activity") / 50 + F.col("complaints_90d") + F.randn(seed=5)
    return frame.withColumn("churned", (signal > 2.0).cast("int")).cache()


def test_training_twice_on_the_same_features_gives_the_same_scores(spark, settings):
    config = load_churn_config(settings)
    config = config.model_copy(update={
        "features": FEATURES,
        "snapshots": config.snapshots.model_copy(update={"held_out": 1}),
        # the trees: their grid has two depths to choose between (the logistic regression's one combination
        # is fitted on the same laid-out rows)
        "model": config.model.model_copy(update={"learners": ["gbt"], "grid": config.model.grid.model_copy(
            update={"max_depth": [1, 3], "max_iter": [4]})})})
    frame = features(spark)
    reshuffled = frame.orderBy(F.rand(seed=9)).repartition(3)   # the same rows, another order and layout

    def trained(rows):
        result = train_churn_models(rows, DATES, config)
        try:
            scored = score_frame(result.best.model, result.split.held_out, result.churner_weight)
            return ({c.kind: c.params for c in result.candidates},
                    sorted((r.customer_id, r.churn_probability) for r in scored.collect()))
        finally:
            result.release()

    params, scores = trained(frame)
    assert len(scores) == PER_SNAPSHOT
    assert trained(reshuffled) == (params, scores)   # exactly: no tolerance
