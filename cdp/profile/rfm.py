"""RFM: recency, frequency and monetary value of each purchasing customer, their quintile scores, the FM score,
the named segment (conf/profile.yaml rfm.segments) and the time between purchases."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp.config.profile import Rfm

SECONDS_PER_DAY = 86_400.0


def inter_purchase_days(purchase_times: Column) -> tuple[Column, Column]:
    """Mean and sample deviation of the days between consecutive purchases, from their sorted times (micros)."""
    # sample deviation: one gap (two purchases) has a mean but no spread, so it needs three purchases
    gaps = F.zip_with(F.slice(purchase_times, 2, F.size(purchase_times)), purchase_times,
                      lambda later, earlier: (later - earlier) / (SECONDS_PER_DAY * 1_000_000))
    gaps = F.filter(gaps, lambda g: g.isNotNull())   # zip_with pads the shorter array with NULL
    n = F.size(gaps)
    mean = F.aggregate(gaps, F.lit(0.0), lambda acc, g: acc + g) / n
    squares = F.aggregate(gaps, F.lit(0.0), lambda acc, g: acc + (g - mean) * (g - mean))
    return F.when(n >= 1, mean), F.when(n >= 2, F.sqrt(squares / (n - 1)))


def rfm_values(purchases: DataFrame, as_of: Column) -> DataFrame:
    """(customer_id, recency_days, frequency, monetary, average_order_value, inter_purchase_days_mean and _stddev)
    of the customers with a purchase, in one aggregation (the purchase times sorted per customer: a customer's
    purchases, not all events)."""
    mean_gap, gap_deviation = inter_purchase_days(F.col("_times"))
    return (purchases.groupBy("customer_id")
            .agg(F.max("event_ts").alias("_last_purchase_ts"), F.count(F.lit(1)).alias("frequency"),
                 F.sum("amount").alias("monetary"),
                 F.array_sort(F.collect_list(F.unix_micros("event_ts"))).alias("_times"))
            .select("customer_id", F.datediff(F.to_date(as_of), F.to_date("_last_purchase_ts")).alias("recency_days"),
                    "frequency", "monetary", (F.col("monetary") / F.col("frequency")).alias("average_order_value"),
                    mean_gap.alias("inter_purchase_days_mean"), gap_deviation.alias("inter_purchase_days_stddev")))


def _quintile(*order: Column) -> Column:
    # One window over every purchasing customer: ntile needs the global order. The rows are four narrow columns
    # per customer, so a single partition holds millions; the trailing customer_id makes ties deterministic.
    return F.ntile(5).over(Window.orderBy(*order, F.col("customer_id")))


def with_rfm_scores(values: DataFrame) -> DataFrame:
    """Adds r_score, f_score, m_score (quintiles 1..5, 5 = most recent, most frequent, highest spend), fm_score."""
    # Customers equal on a measure are ordered by the other two (then customer_id): a tie goes to the better
    # customer rather than to an arbitrary one.
    recency, frequency, monetary = F.col("recency_days"), F.col("frequency"), F.col("monetary")
    return (values
            .withColumn("r_score", _quintile(recency.desc(), frequency, monetary))
            .withColumn("f_score", _quintile(frequency, monetary, recency.desc()))
            .withColumn("m_score", _quintile(monetary, frequency, recency.desc()))
            .withColumn("fm_score", (F.col("f_score") + F.col("m_score")) / 2.0))


def rfm_segment(config: Rfm, r_score: Column | str = "r_score", fm_score: Column | str = "fm_score") -> Column:
    """The first configured segment whose r and fm ranges hold the scores; no_purchase_segment when unscored."""
    r = F.col(r_score) if isinstance(r_score, str) else r_score
    fm = F.col(fm_score) if isinstance(fm_score, str) else fm_score
    segment = F.when(r.isNull(), F.lit(config.no_purchase_segment))
    for s in config.segments:
        segment = segment.when(r.between(*s.r) & fm.between(*s.fm), F.lit(s.name))
    return segment


def rfm(purchases: DataFrame, config: Rfm, as_of: Column) -> DataFrame:
    """One row per purchasing customer: RFM values, scores, segment and inter-purchase time."""
    return (rfm_values(purchases, as_of)
            .transform(with_rfm_scores)
            .withColumn("rfm_segment", rfm_segment(config)))
