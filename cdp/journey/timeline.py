"""gold.customer_journey: every touchpoint of a customer in order, with its neighbours, session and stage.

Pure: touchpoints (cdp.journey.touchpoints) and config in, one frame out. Every window is partitioned by
customer_id and ordered by (event_ts, interaction_id), so equal timestamps still give one order on every run.
Sessions follow dbt's segment sessionization (lag -> gap -> new-session flag -> running sum), one `with_*`
transform per step, over the customer's digital touchpoints only: a call or a store visit is a session of its
own and does not cut the web session around it. All windows share one partitioning and order: one shuffle.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp.config.journeys import OTHER_STAGE, STAGES, JourneyConfig, Sessions, Stages
from cdp.journey.touchpoints import is_purchase

JOURNEY_COLUMNS = ["customer_id", "interaction_id", "event_ts", "event_date", "channel", "source", "event_type",
                   "stage", "sequence_number", "previous_channel", "previous_event_type", "next_channel",
                   "next_event_type", "seconds_since_previous", "session_id", "session_sequence", "is_first_touch",
                   "is_last_touch", "is_purchase", "amount", "product_id", "campaign_id"]
ORDER = ("event_ts", "interaction_id")
_MICROS_PER_SECOND = 1_000_000


def customer_journey(touchpoints: DataFrame, config: JourneyConfig) -> DataFrame:
    """One row per touchpoint (JOURNEY_COLUMNS): its place in the customer's journey, session and stage."""
    return (touchpoints
            .withColumn("stage", stage(config.stages))
            .transform(with_sequence)
            .transform(with_neighbours)
            .transform(with_digital_flag(config.sessions))
            .transform(with_gap_to_previous_digital)
            .transform(with_new_session_flag(config.sessions))
            .transform(with_session)
            .withColumn("is_purchase", is_purchase(config))
            .select(*JOURNEY_COLUMNS))


def stage(stages: Stages) -> Column:
    """The journey stage of a touchpoint: the first matching reason override, else its event type's stage, else
    'other'."""
    reason = F.lower(F.trim(F.col("reason")))
    branches = [(F.col("event_type").isin(o.event_types) & reason.isin([r.lower() for r in o.reasons]), o.stage)
                for o in stages.reason_overrides]
    branches += [(F.col("event_type").isin(getattr(stages, s)), s) for s in STAGES if getattr(stages, s)]
    out = F.lit(OTHER_STAGE)
    for condition, name in reversed(branches):
        out = F.when(condition, F.lit(name)).otherwise(out)
    return out


def _customer_order() -> Window:
    return Window.partitionBy("customer_id").orderBy(*ORDER)


def with_sequence(df: DataFrame) -> DataFrame:
    """sequence_number (1 = first touchpoint of the customer), is_first_touch, is_last_touch."""
    w = _customer_order()
    return (df.withColumn("sequence_number", F.row_number().over(w))
            .withColumn("is_first_touch", F.col("sequence_number") == 1)
            .withColumn("is_last_touch", F.lead(F.lit(1)).over(w).isNull()))


def _seconds_between(earlier: Column, later: Column) -> Column:
    return ((F.unix_micros(later) - F.unix_micros(earlier)) / _MICROS_PER_SECOND).cast("long")


def with_neighbours(df: DataFrame) -> DataFrame:
    """The previous and next touchpoint's channel and event type, and whole seconds since the previous one."""
    w = _customer_order()
    return (df.withColumn("previous_channel", F.lag("channel").over(w))
            .withColumn("previous_event_type", F.lag("event_type").over(w))
            .withColumn("next_channel", F.lead("channel").over(w))
            .withColumn("next_event_type", F.lead("event_type").over(w))
            .withColumn("seconds_since_previous", _seconds_between(F.lag("event_ts").over(w), F.col("event_ts"))))


def with_digital_flag(sessions: Sessions):
    def step(df: DataFrame) -> DataFrame:
        return df.withColumn("_digital", F.col("channel").isin(sessions.digital_channels))
    return step


def with_gap_to_previous_digital(df: DataFrame) -> DataFrame:
    """_gap_micros: time since the customer's previous digital touchpoint (digital touchpoints only; null for the
    first). The touchpoints in between are skipped, not cut at: one window order serves every step (one shuffle)."""
    before = _customer_order().rowsBetween(Window.unboundedPreceding, -1)
    previous = F.last(F.when(F.col("_digital"), F.col("event_ts")), ignorenulls=True).over(before)
    return df.withColumn("_gap_micros", F.when(F.col("_digital"),
                                               F.unix_micros(F.col("event_ts")) - F.unix_micros(previous)))


def with_new_session_flag(sessions: Sessions):
    """_new_session: a non-digital touchpoint, a customer's first digital one, or one after more than the gap."""
    gap = sessions.inactivity_gap_minutes * 60 * _MICROS_PER_SECOND

    def step(df: DataFrame) -> DataFrame:
        return df.withColumn("_new_session", ~F.col("_digital") | F.coalesce(F.col("_gap_micros") > gap, F.lit(True)))
    return step


def with_session(df: DataFrame) -> DataFrame:
    """session_id (sha2 of customer_id and the session's first interaction_id: the same on every run) and
    session_sequence (1 = the session's first touchpoint): a digital session's start carried forward over the
    digital touchpoints after it (the running-sum step, keeping the start instead of a count)."""
    upto_here = _customer_order().rowsBetween(Window.unboundedPreceding, Window.currentRow)
    digital_start = F.col("_digital") & F.col("_new_session")

    def carried(value: str) -> Column:
        return F.last(F.when(digital_start, F.col(value)), ignorenulls=True).over(upto_here)

    digital = F.col("_digital")
    return (df.withColumn("_digital_row", F.sum(digital.cast("int")).over(upto_here))
            .withColumn("_start_id", F.when(digital, carried("interaction_id")).otherwise(F.col("interaction_id")))
            .withColumn("session_id", F.sha2(F.concat_ws("|", "customer_id", "_start_id"), 256))
            .withColumn("session_sequence", F.when(digital, F.col("_digital_row") - carried("_digital_row") + 1)
                        .otherwise(1).cast("int")))
