"""gold.churn_scores: the champion model's churn probability for every customer of the scoring population at as_of
(conf/churn.yaml definition.population), its risk band, the model version, and the top drivers in words an account
manager reads.

A driver is a feature whose value, replaced by the scored population's typical value (median; most frequent
category), lowers this customer's probability the most: what makes this customer riskier than a typical one,
measured on the model itself. The candidates are the model's most important features (a tag of its registered
version); scoring them is one more distributed pass over candidates x customers rows, never a driver-side loop.
"""

from __future__ import annotations

from datetime import date

from pyspark.ml import PipelineModel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.config.churn import CATEGORICAL, FEATURES, Scoring
from cdp.frames import union_all
from cdp.ml.train import score_frame, stable_layout

MIN_CONTRIBUTION = 0.005   # a driver moves the probability by half a point at least

SCORE_COLUMNS = ("customer_id", "as_of", "churn_probability", "risk_band", "model_name", "model_version",
                 "top_drivers")


def risk_band(config: Scoring, probability: Column) -> Column:
    """The first band (highest first) whose min_probability the probability reaches."""
    band = None
    for b in config.risk_bands:
        cond = probability >= F.lit(b.min_probability)
        band = F.when(cond, F.lit(b.name)) if band is None else band.when(cond, F.lit(b.name))
    return band


def shown_value(feature: str) -> Column:
    """A feature's value as a person reads it: whole days and counts, money with cents, rates in percent,
    changes with their sign."""
    v = F.col(feature) if feature in CATEGORICAL else F.col(feature).cast("double")
    if feature in CATEGORICAL:
        text = v.cast("string")
    elif feature in ("email_open_rate_90d", "quiet_share"):
        text = F.format_string("%.0f%%", v * 100)
    elif feature.endswith(("_trend", "_change")) or feature == "sentiment_score":
        text = F.format_string("%+.1f", v)
    elif feature in ("spend_total", "spend_30d", "average_order_value"):
        text = F.format_string("%.2f", v)
    elif feature == "email_unsubscribed":
        text = F.when(v > 0, "yes").otherwise("no")
    elif feature in ("purchase_overdue_ratio", "purchases_per_30d"):
        text = F.format_string("%.1f", v)
    else:
        text = F.format_string("%.0f", v)
    # format_string prints a null as "null" cut to the precision ("%.0f" -> "", "%+.1f" -> "n"): say unknown
    return F.when(v.isNull(), F.lit("unknown")).otherwise(text)


def typical_values(frame: DataFrame, features: list[str]) -> dict[str, object]:
    """The population's median of each numeric feature and most frequent value of each categorical one (a few
    numbers on the driver, whatever the number of customers)."""
    numeric = [f for f in features if f not in CATEGORICAL]
    medians = frame.approxQuantile(numeric, [0.5], 0.01) if numeric else []
    out: dict[str, object] = {f: (m[0] if m else None) for f, m in zip(numeric, medians, strict=True)}
    for f in (f for f in features if f in CATEGORICAL):
        top = frame.where(F.col(f).isNotNull()).groupBy(f).count().orderBy(F.desc("count"), f).first()
        out[f] = top[f] if top else None
    return out


def churn_scores(model: PipelineModel, features: DataFrame, config: Scoring, model_name: str, model_version: str,
                 candidates: list[str], as_of: date, churner_weight: float = 1.0) -> DataFrame:
    """gold.churn_scores from unlabelled features (cdp.ml.features.churn_features(..., labelled=False));
    churner_weight: the class weight the model was trained with (cdp.ml.train.score_frame)."""
    # the medians are approximate, and an approximation depends on the order it sees the rows in
    typical = typical_values(stable_layout(features), candidates)
    base = features.withColumn("_driver", F.lit(None).cast("string")).withColumn("_phrase", F.lit(None).cast("string"))
    copies = [base]
    for f in candidates:
        phrase = F.format_string(FEATURES[f], shown_value(f))
        copy = features.withColumn("_phrase", phrase).withColumn(f, F.lit(typical[f]).cast(features.schema[f].dataType))
        copies.append(copy.withColumn("_driver", F.lit(f)).select(*base.columns))
    scored = score_frame(model, union_all(copies), churner_weight)
    p = F.col("churn_probability")
    per_customer = scored.groupBy("customer_id").agg(
        F.max(F.when(F.col("_driver").isNull(), p)).alias("churn_probability"),
        F.collect_list(F.when(F.col("_driver").isNotNull(), F.struct(p.alias("p"), F.col("_phrase").alias("phrase"))))
        .alias("_what_if"))
    contributions = F.transform("_what_if", lambda w: F.struct(
        (F.col("churn_probability") - w["p"]).alias("delta"), w["phrase"].alias("phrase")))
    drivers = F.slice(F.sort_array(F.filter(contributions, lambda c: c["delta"] >= MIN_CONTRIBUTION), asc=False),
                      1, config.top_drivers)
    worded = F.transform(drivers, lambda c: F.format_string(
        "%s (+%.0f points of risk)", c["phrase"], F.round(c["delta"] * 100)))
    return per_customer.select(
        "customer_id", F.lit(as_of).cast("date").alias("as_of"), "churn_probability",
        risk_band(config, F.col("churn_probability")).alias("risk_band"), F.lit(model_name).alias("model_name"),
        F.lit(str(model_version)).alias("model_version"), worded.alias("top_drivers"))

