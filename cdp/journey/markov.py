"""Data-driven attribution: a first-order Markov chain over customer journeys and each state's removal effect.

States are (start), one per channel (or channel:event_type, conf/attribution.yaml markov_state), and the two
absorbing ends (conversion) and (null). A journey is a path (start) -> touch states in time order -> its end.
Spark counts the transitions over every journey (one groupBy); the result is a states x states matrix, a
dozen channels wide whatever the number of customers, so the chain is solved on the driver with numpy.
The removal effect of a state c is RE(c) = 1 - P(conversion | c removed) / P(conversion), where removing c
sends every transition into c to (null).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp.config.attribution import AttributionConfig

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"
ENDS = (CONVERSION, NULL)
UNKNOWN = "(unknown)"   # the state of a touchpoint without a channel


@dataclass(frozen=True)
class MarkovChain:
    """The fitted chain: P(conversion) from (start), each state's removal effect, and the paths it learnt from."""

    p_conversion: float
    removal_effects: dict[str, float] = field(default_factory=dict)
    paths: int = 0
    conversions: int = 0


def markov_state(config: AttributionConfig) -> Column:
    """A touchpoint's state in the chain: its channel, or channel:event_type."""
    channel = F.coalesce(F.col("channel"), F.lit(UNKNOWN))
    return channel if config.markov_state == "channel" else F.concat_ws(":", channel, "event_type")


def non_converting_touches(touches: DataFrame, purchases: DataFrame, config: AttributionConfig) -> DataFrame:
    """Each customer's counted touches after their last purchase (all of them when they never bought) and within
    lookback_days of their last one: journeys that have not ended in a purchase within the data. Windowed like the
    converting paths, so a customer's years of browsing are not one path weighed against 30-day converting ones.

    touches: customer_id, interaction_id, channel, event_type, touch_ts; purchases: customer_id, purchase_ts.
    """
    last_purchase = purchases.groupBy("customer_id").agg(F.max("purchase_ts").alias("_last_purchase_ts"))
    customer = Window.partitionBy("customer_id")
    return (touches.join(last_purchase, "customer_id", "left")
            .where(F.col("_last_purchase_ts").isNull() | (F.col("touch_ts") > F.col("_last_purchase_ts")))
            .withColumn("_last_touch_ts", F.max("touch_ts").over(customer))
            .where(F.col("touch_ts") >= F.col("_last_touch_ts") - F.make_dt_interval(days=F.lit(config.lookback_days)))
            .drop("_last_purchase_ts", "_last_touch_ts"))


def path_transitions(paths: DataFrame) -> DataFrame:
    """(from_state, to_state, transitions) counted over paths: rows (path_id, touch_ts, interaction_id, state, end),
    one per touch, `end` the path's absorbing state. Each path adds (start) -> first, each step, last -> end."""
    in_path = Window.partitionBy("path_id").orderBy("touch_ts", "interaction_id")
    steps = F.array(F.struct(F.col("_previous").alias("from_state"), F.col("state").alias("to_state")))
    last = F.array(F.struct(F.col("state").alias("from_state"), F.col("end").alias("to_state")))
    return (paths.withColumn("_previous", F.coalesce(F.lag("state").over(in_path), F.lit(START)))
            .withColumn("_is_last", F.lead("interaction_id").over(in_path).isNull())
            .select(F.explode(F.when(F.col("_is_last"), F.concat(steps, last)).otherwise(steps)).alias("t"))
            .groupBy("t.from_state", "t.to_state").agg(F.count(F.lit(1)).alias("transitions")))


def solve_chain(counts: dict[tuple[str, str], int]) -> MarkovChain:
    """P(conversion) and every state's removal effect from transition counts {(from, to): n}. Driver-side and
    small: one linear solve per state of a (states x states) system, states being channels, not customers."""
    states = sorted({s for pair in counts for s in pair} - {START, *ENDS})
    paths = sum(n for (a, _), n in counts.items() if a == START)
    conversions = sum(n for (_, b), n in counts.items() if b == CONVERSION)
    if not conversions:
        return MarkovChain(0.0, {s: 0.0 for s in states}, paths, 0)
    index = {s: i for i, s in enumerate([START, *states])}
    n = len(index)
    flows = np.zeros((n, n))          # transient -> transient counts
    converts = np.zeros(n)            # transient -> (conversion) counts
    leaves = np.zeros(n)              # every count out of a state, the row total
    for (a, b), k in counts.items():
        leaves[index[a]] += k
        if b == CONVERSION:
            converts[index[a]] += k
        elif b != NULL:
            flows[index[a], index[b]] += k
    leaves = np.maximum(leaves, 1.0)  # a state with no way out (never so on observed paths): p 0, not 0/0
    q, r = flows / leaves[:, None], converts / leaves

    def p_conversion(removed: str | None = None) -> float:
        qq, rr = q.copy(), r.copy()
        if removed is not None:        # into the removed state = into (null): its absorption probability is 0
            qq[:, index[removed]] = 0.0
            qq[index[removed], :] = 0.0
            rr[index[removed]] = 0.0
        return float(np.linalg.solve(np.eye(n) - qq, rr)[index[START]])

    base = p_conversion()
    effects = {s: max(0.0, 1.0 - p_conversion(s) / base) for s in states}
    return MarkovChain(base, effects, paths, conversions)


def fit_chain(converting: DataFrame, non_converting: DataFrame, config: AttributionConfig) -> MarkovChain:
    """The chain over converting paths (one per purchase: path_id = purchase_id) and non-converting ones (one per
    customer). Both frames: path_id, interaction_id, channel, event_type, touch_ts. One Spark job; the counts it
    brings to the driver are at most (states + 1)^2 rows."""
    def as_path(frame: DataFrame, end: str) -> DataFrame:
        return frame.select("path_id", "touch_ts", "interaction_id", markov_state(config).alias("state"),
                            F.lit(end).alias("end"))

    paths = as_path(converting, CONVERSION).unionByName(as_path(non_converting, NULL))
    counts = {(r.from_state, r.to_state): r.transitions for r in path_transitions(paths).collect()}
    return solve_chain(counts)


def with_markov_credit(chain: MarkovChain, config: AttributionConfig):
    """Transform adding `markov`, the credit of each touch (rows: purchase_id, interaction_id, channel,
    event_type): 1 split among the states on the purchase's path in proportion to their removal effects (evenly
    when they are all 0), then equally among each state's touches."""
    def add(touches: DataFrame) -> DataFrame:
        effects = touches.sparkSession.createDataFrame(sorted(chain.removal_effects.items()),
                                                       "_state string, _removal_effect double")
        purchase, state = Window.partitionBy("purchase_id"), Window.partitionBy("purchase_id", "_state")
        effect = F.coalesce(F.col("_removal_effect"), F.lit(0.0))
        total = F.sum(effect / F.col("_in_state")).over(purchase)   # the sum of the path's distinct states' effects
        states = F.greatest(F.size(F.collect_set("_state").over(purchase)), F.lit(1))
        share = F.when(F.col("_total") > 0, F.try_divide(effect, F.col("_total"))).otherwise(F.lit(1.0) / states)
        return (touches.withColumn("_state", markov_state(config))
                .join(F.broadcast(effects), "_state", "left")
                .withColumn("_in_state", F.count(F.lit(1)).over(state))
                .withColumn("_total", total)
                .withColumn("markov", share / F.col("_in_state"))
                .drop("_state", "_removal_effect", "_in_state", "_total"))
    return add
