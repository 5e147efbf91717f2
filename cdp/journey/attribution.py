"""Purchase attribution (gold.attribution): each purchase's credit shared among the touchpoints before it by
first-touch, last-touch, linear, time-decay and a data-driven Markov-chain model (cdp.journey.markov).

A purchase's touchpoints are the same customer's counted touchpoints (conf/attribution.yaml
excluded_event_types; purchases never count) strictly before it, at most lookback_days older, and (with
stop_at_previous_purchase) strictly after the customer's previous purchase. They are found with a range join on
customer_id (an equi-join plus time conditions), never a cross join. Every model lists the whole path, one row
per touchpoint (first and last touch give the others 0), and the credits of one purchase and model sum to 1;
a purchase with no touchpoint gets one 'direct' row per model with credit 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp.config.attribution import AttributionConfig
from cdp.config.journeys import JourneyConfig
from cdp.frames import cut_lineage
from cdp.journey.markov import MarkovChain, fit_chain, non_converting_touches, with_markov_credit
from cdp.journey.touchpoints import is_purchase

DIRECT = "direct"   # the channel of a purchase no touchpoint led to
ATTRIBUTION_COLUMNS = ["purchase_id", "customer_id", "purchase_ts", "purchase_amount", "currency", "model",
                       "interaction_id", "channel", "event_type", "touch_ts", "position", "credit", "revenue"]
TOUCH_COLUMNS = ["interaction_id", "channel", "event_type", "touch_ts"]
_DAY_MICROS = 86_400 * 1_000_000


@dataclass(frozen=True)
class Attribution:
    """credits: gold.attribution (ATTRIBUTION_COLUMNS); markov: the fitted chain and its removal effects (None
    when the markov model is not configured), for the run report."""

    credits: DataFrame
    markov: MarkovChain | None


def purchases_of(journey_config: JourneyConfig, config: AttributionConfig):
    """Transform: touchpoints -> one row per purchase with the bounds of its window (_earliest, _after)."""
    def select(touchpoints: DataFrame) -> DataFrame:
        earlier = (Window.partitionBy("customer_id").orderBy(F.unix_micros("purchase_ts"))
                   .rangeBetween(Window.unboundedPreceding, -1))
        purchases = touchpoints.where(is_purchase(journey_config)).select(
            F.col("interaction_id").alias("purchase_id"), "customer_id", F.col("event_ts").alias("purchase_ts"),
            F.col("amount").alias("purchase_amount"), "currency")
        after = F.max("purchase_ts").over(earlier) if config.stop_at_previous_purchase else F.lit(None)
        return (purchases
                .withColumn("_earliest", F.col("purchase_ts") - F.make_dt_interval(days=F.lit(config.lookback_days)))
                .withColumn("_after", after.cast("timestamp")))
    return select


def counted_touches(journey_config: JourneyConfig, config: AttributionConfig):
    """Transform: touchpoints -> the ones that can earn credit (customer_id, TOUCH_COLUMNS): not a purchase and
    not of an excluded event type."""
    def select(touchpoints: DataFrame) -> DataFrame:
        excluded = F.coalesce(F.col("event_type").isin(config.excluded_event_types), F.lit(False))
        return (touchpoints.where(~is_purchase(journey_config) & ~excluded)
                .select("customer_id", "interaction_id", "channel", "event_type", F.col("event_ts").alias("touch_ts")))
    return select


def purchase_paths(purchases: DataFrame, touches: DataFrame) -> DataFrame:
    """Each purchase with its touches in its window, numbered by time (position, touches); a purchase without
    any keeps one row with null touch columns. A range join: equal customer_id, then the time bounds."""
    p, t = purchases.alias("p"), touches.alias("t")
    in_window = ((F.col("p.customer_id") == F.col("t.customer_id"))
                 & (F.col("t.touch_ts") < F.col("p.purchase_ts"))
                 & (F.col("t.touch_ts") >= F.col("p._earliest"))
                 & (F.col("p._after").isNull() | (F.col("t.touch_ts") > F.col("p._after"))))
    in_order = Window.partitionBy("purchase_id").orderBy("touch_ts", "interaction_id")
    return (p.join(t, in_window, "left")
            .select("p.purchase_id", "p.customer_id", "p.purchase_ts", "p.purchase_amount", "p.currency",
                    *[f"t.{c}" for c in TOUCH_COLUMNS])
            .withColumn("position", F.when(F.col("interaction_id").isNotNull(), F.row_number().over(in_order)))
            .withColumn("touches", F.count("interaction_id").over(Window.partitionBy("purchase_id"))))


def with_decay_weight(config: AttributionConfig):
    """Transform adding `_decay`, a touch's time-decay weight 2^(-age_days / half_life) taken relative to the
    purchase's youngest touch (weight 1): the same shares once normalised, and never 0/0."""
    def add(paths: DataFrame) -> DataFrame:
        age_days = (F.unix_micros("purchase_ts") - F.unix_micros("touch_ts")) / F.lit(float(_DAY_MICROS))
        return (paths.withColumn("_age_days", age_days)
                .withColumn("_decay", F.pow(F.lit(2.0), -(F.col("_age_days") - F.min("_age_days").over(
                    Window.partitionBy("purchase_id"))) / F.lit(config.time_decay_half_life_days)))
                .drop("_age_days"))
    return add


def rule_credits() -> dict[str, Column]:
    """The credit of a touch (a row of purchase_paths, with `_decay`) under each rule-based model."""
    return {
        "first_touch": F.when(F.col("position") == 1, 1.0).otherwise(0.0),
        "last_touch": F.when(F.col("position") == F.col("touches"), 1.0).otherwise(0.0),
        "linear": F.lit(1.0) / F.greatest(F.col("touches"), F.lit(1)),
        "time_decay": F.col("_decay") / F.sum("_decay").over(Window.partitionBy("purchase_id")),
    }


def with_model_credits(models: list[str], config: AttributionConfig):
    """Transform: purchase paths -> one column per rule-based model holding its credit."""
    def add(paths: DataFrame) -> DataFrame:
        rules = rule_credits()
        return (paths.transform(with_decay_weight(config))
                .select("*", *[rules[m].alias(m) for m in models if m in rules]).drop("_decay"))
    return add


def one_row_per_model(models: list[str]):
    """Transform: one credit column per model -> one row per model (ATTRIBUTION_COLUMNS); a purchase without a
    touch gets the 'direct' channel and credit 1 under every model."""
    def unpivot(paths: DataFrame) -> DataFrame:
        ids = [c for c in paths.columns if c not in models]
        touched = F.col("interaction_id").isNotNull()
        return (paths.unpivot(ids, models, "model", "credit")
                .withColumn("channel", F.when(touched, F.col("channel")).otherwise(F.lit(DIRECT)))
                .withColumn("credit", F.when(touched, F.col("credit")).otherwise(F.lit(1.0)))
                .withColumn("position", F.col("position").cast("int"))
                .withColumn("revenue", F.col("credit") * F.col("purchase_amount"))
                .select(*ATTRIBUTION_COLUMNS))
    return unpivot


def attribute(touchpoints: DataFrame, journey_config: JourneyConfig, config: AttributionConfig) -> Attribution:
    """gold.attribution from touchpoints (TOUCHPOINT_COLUMNS) under every configured model, and the Markov chain.

    With markov configured, the purchase paths are materialised and one Spark job counts the chain's transitions
    (brought to the driver: a matrix of states x states, growing with channels, not customers); everything else
    is lazy. No customer or event is collected to the driver.
    """
    models = list(config.models)
    purchases = touchpoints.transform(purchases_of(journey_config, config))
    touches = touchpoints.transform(counted_touches(journey_config, config))
    paths = purchase_paths(purchases, touches)
    if "markov" in models:   # the chain's fit and the credits read the paths: the range join runs once
        paths = paths.transform(cut_lineage)
    credits = paths.transform(with_model_credits(models, config))
    chain = None
    if "markov" in models:
        converting = paths.where(F.col("interaction_id").isNotNull()).withColumnRenamed("purchase_id", "path_id")
        others = non_converting_touches(touches, purchases, config).withColumnRenamed("customer_id", "path_id")
        chain = fit_chain(converting, others, config)
        credits = credits.transform(with_markov_credit(chain, config))
    return Attribution(credits.transform(one_row_per_model(models)), chain)
