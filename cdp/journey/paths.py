"""gold.journey_paths: the most frequent routes to a purchase and to silence.

A path is the customer's last `paths.length` touchpoints before an outcome, oldest first, joined by ' > '. Its
elements are the channel, or channel:event_type for the channels in paths.event_type_channels. Outcome
'purchase': each purchase (is_purchase), the path ending with the touchpoint before it ('(none)' when it was the
first). Outcome 'silent': each customer whose last touchpoint is more than paths.silent_days before the end of
the data, the path ending with that last touchpoint. With paths.collapse_repeats, consecutive equal elements
count once, except purchases: each is an outcome and stays in later paths.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp.config.journeys import JourneyConfig, Paths
from cdp.frames import union_all

PATH_COLUMNS = ["outcome", "rank", "path", "journeys", "share"]
OUTCOMES = ("purchase", "silent")
NO_PATH = "(none)"


def journey_paths(journey: DataFrame, config: JourneyConfig, end_of_data: datetime) -> DataFrame:
    """The top paths per outcome (PATH_COLUMNS), from gold.customer_journey rows; `end_of_data` is the time the
    data reaches (e.g. the latest event_ts), against which silence is measured."""
    p = config.paths
    silent_before = end_of_data - timedelta(days=p.silent_days)
    paths = journey.transform(with_element(p)).transform(with_paths(p))
    before_purchase = paths.where("is_purchase").select(F.lit("purchase").alias("outcome"), _text("_before"))
    before_silence = (paths.where(F.col("_last_kept") & (F.col("_last_ts") < F.lit(silent_before)))
                      .select(F.lit("silent").alias("outcome"), _text("_upto")))
    return union_all([before_purchase, before_silence]).transform(top_paths(p.top_n))


def with_element(p: Paths):
    """_element: 'channel' or 'channel:event_type'."""
    def step(journey: DataFrame) -> DataFrame:
        detailed = F.col("channel").isin(p.event_type_channels)
        return journey.withColumn("_element", F.when(detailed, F.concat_ws(":", "channel", "event_type"))
                                  .otherwise(F.col("channel")))
    return step


def _order() -> Window:
    return Window.partitionBy("customer_id").orderBy("sequence_number")


def with_paths(p: Paths):
    """Per kept touchpoint: _before (the `length` elements before it), _upto (the last `length` up to it),
    _last_kept (the customer's last kept row) and _last_ts (the customer's last touchpoint time)."""
    def step(journey: DataFrame) -> DataFrame:
        df = journey.withColumn("_last_ts", F.max("event_ts").over(Window.partitionBy("customer_id")))
        if p.collapse_repeats:
            repeat = F.coalesce(F.col("_element") == F.lag("_element").over(_order()), F.lit(False))
            df = df.withColumn("_repeat", repeat).where(~F.col("_repeat") | F.col("is_purchase"))
        w = _order()
        return (df.withColumn("_before", F.collect_list("_element").over(w.rowsBetween(-p.length, -1)))
                .withColumn("_upto", F.collect_list("_element").over(w.rowsBetween(1 - p.length, 0)))
                .withColumn("_last_kept", F.lead(F.lit(1)).over(w).isNull()))
    return step


def _text(elements: str) -> Column:
    return F.when(F.size(elements) == 0, F.lit(NO_PATH)).otherwise(F.array_join(elements, " > ")).alias("path")


def top_paths(top_n: int):
    """(outcome, path) counted; rank 1 = most frequent (ties: alphabetical path), share of the outcome's journeys."""
    def step(paths: DataFrame) -> DataFrame:
        counted = paths.groupBy("outcome", "path").agg(F.count(F.lit(1)).alias("journeys"))
        by_outcome = Window.partitionBy("outcome")
        return (counted.withColumn("share", F.col("journeys") / F.sum("journeys").over(by_outcome))
                .withColumn("rank", F.row_number().over(by_outcome.orderBy(F.desc("journeys"), "path")))
                .where(F.col("rank") <= top_n)
                .select(*PATH_COLUMNS))
    return step
