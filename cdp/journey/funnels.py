"""gold.funnels: how many sessions reach each funnel step, in order, per period and entry channel.

The unit is the session, not the customer: a funnel describes one visit's path from product view to purchase,
and a customer who browses in March and buys in May did not convert in one visit. Steps count only in order
within the session: a checkout with no cart before it does not reach checkout (nor anything after it). A session
is counted in the period it starts in, under the channel of its first touchpoint (an email click that opens the
shop is an email session); each session has one such (period, channel), so entrants add up across channels.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.config.journeys import Funnel, JourneyConfig

FUNNEL_COLUMNS = ["period", "channel", "step_number", "step", "entrants", "conversion_from_previous",
                  "conversion_from_first"]


def funnels(journey: DataFrame, config: JourneyConfig) -> DataFrame:
    """One row per (period, channel, step): FUNNEL_COLUMNS, from gold.customer_journey rows. A (period, channel)
    appears when at least one of its sessions reached the first step; later steps no session reached have 0."""
    f = config.funnel
    return journey.transform(session_depths(f)).transform(entrants_per_step(f)).transform(with_conversion)


def _step_number(steps: list[str]) -> Column:
    out = F.lit(None).cast("int")
    for number, event_type in reversed(list(enumerate(steps, start=1))):
        out = F.when(F.col("event_type") == event_type, F.lit(number)).otherwise(out)
    return out


def session_depths(f: Funnel):
    """(period, channel, depth) per session: depth = the last step reached in order (0: not even the first)."""
    def step(journey: DataFrame) -> DataFrame:
        number = _step_number(f.steps)
        marks = F.collect_list(F.when(number.isNotNull(),   # only the session's step events, in session order
                                      F.struct(F.col("session_sequence").alias("at"), number.alias("step"))))
        # walk the session's step events in order; a step counts only right after the one before it was reached
        depth = F.aggregate(F.array_sort(marks), F.lit(0),
                            lambda reached, mark: F.when(mark["step"] == reached + 1, reached + 1).otherwise(reached))
        return (journey.groupBy("session_id")
                .agg(F.min_by("channel", "session_sequence").alias("channel"), F.min("event_ts").alias("_start"),
                     depth.alias("depth"))
                .where(F.col("depth") > 0)
                .select(F.date_trunc(f.period, "_start").cast("date").alias("period"), "channel", "depth"))
    return step


def entrants_per_step(f: Funnel):
    """(period, channel, step_number, step, entrants, _previous, _first): sessions that reached each step."""
    def step(depths: DataFrame) -> DataFrame:
        reached = [F.count(F.when(F.col("depth") >= n, 1)).alias(f"_reached_{n}") for n in range(1, len(f.steps) + 1)]
        rows = F.array(*[F.struct(F.lit(n).alias("step_number"), F.lit(name).alias("step"),
                                  F.col(f"_reached_{n}").alias("entrants"),
                                  (F.col(f"_reached_{n - 1}") if n > 1 else F.lit(None).cast("long")).alias("_previous"),
                                  F.col("_reached_1").alias("_first"))
                         for n, name in enumerate(f.steps, start=1)])
        return (depths.groupBy("period", "channel").agg(*reached)
                .select("period", "channel", F.inline(rows)))
    return step


def _share(part: Column, whole: Column) -> Column:
    return F.when(whole > 0, part / whole)   # ANSI mode: no division by zero, a step nobody entered is null


def with_conversion(df: DataFrame) -> DataFrame:
    return (df.withColumn("conversion_from_previous", _share(F.col("entrants"), F.col("_previous")))
            .withColumn("conversion_from_first", _share(F.col("entrants"), F.col("_first")))
            .select(*FUNNEL_COLUMNS))
