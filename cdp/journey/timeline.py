"""gold.customer_journey: every touchpoint of a customer in order, with its neighbours, session and stage.

Pure: touchpoints (cdp.journey.touchpoints) and config in, one frame out. Every window is partitioned by
customer_id and ordered by (event_ts, interaction_id), so equal timestamps still give one order on every run.
Sessions follow dbt's segment sessionization (lag -> gap -> new-session flag -> running sum), one `with_*`
transform per step, over the customer's digital touchpoints only: a call or a store visit is a session of its
own and does not cut the web session around it.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp.journey.config import OTHER_STAGE, STAGES, JourneyConfig, Sessions, Stages, is_purchase

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


def _digital_order() -> Window:
    # digital and other touchpoints apart: the gap is measured between digital touchpoints only
    return Window.partitionBy("customer_id", "_digital").orderBy(*ORDER)


def with_gap_to_previous_digital(df: DataFrame) -> DataFrame:
    """_gap_micros: time since the customer's previous touchpoint of the same kind (digital or not)."""
    previous = F.lag("event_ts").over(_digital_order())
    return df.withColumn("_gap_micros", F.unix_micros(F.col("event_ts")) - F.unix_micros(previous))


def with_new_session_flag(sessions: Sessions):
    """_new_session: a non-digital touchpoint, a customer's first digital one, or one after more than the gap."""
    gap = sessions.inactivity_gap_minutes * 60 * _MICROS_PER_SECOND

    def step(df: DataFrame) -> DataFrame:
        return df.withColumn("_new_session", ~F.col("_digital") | F.coalesce(F.col("_gap_micros") > gap, F.lit(True)))
    return step


def with_session(df: DataFrame) -> DataFrame:
    """session_id (sha2 of customer_id and the session's first interaction_id: the same on every run) and
    session_sequence (1 = the session's first touchpoint), carried forward from each session start."""
    w = _digital_order()
    upto_here = w.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    row = F.row_number().over(w)
    start = F.col("_new_session")
    return (df.withColumn("_row", row)
            .withColumn("_start_id", F.last(F.when(start, F.col("interaction_id")), ignorenulls=True).over(upto_here))
            .withColumn("_start_row", F.last(F.when(start, F.col("_row")), ignorenulls=True).over(upto_here))
            .withColumn("session_id", F.sha2(F.concat_ws("|", "customer_id", "_start_id"), 256))
            .withColumn("session_sequence", F.col("_row") - F.col("_start_row") + 1))
