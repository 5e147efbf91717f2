"""Point-in-time churn features and labels: one row per (customer, snapshot date), every feature computed from the
touchpoints up to the end of the snapshot day and the label from the activity in the horizon after it.

A snapshot date D is the end of day D in conf/churn.yaml scoring.timezone (cdp.ml.as_of): the events of D count,
the horizon starts after D. Scoring as of D builds the same row, so what the model learnt from matches what it
scores.

Pure: frames and config in, frames out. The touchpoints are first reduced to one narrow row of flags per event
(`event_signals`, computed once: sentiment scoring is the costly part), then paired with each snapshot after them
(a broadcast join against the few snapshot dates) and aggregated once per (customer, snapshot). An event after a
snapshot's end never reaches that snapshot's features: the join condition is the whole leakage guard, and
tests/test_churn.py proves it by changing the future.
"""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp.config.churn import FEATURES, ChurnConfig
from cdp.config.journeys import JourneyConfig
from cdp.config.profile import ProfileConfig
from cdp.errors import InsufficientData
from cdp.journey.touchpoints import is_purchase
from cdp.ml.as_of import end_of_day, local_date
from cdp.profile.sentiment import sentiment_score

SECONDS_PER_DAY = 86_400.0
KEY = ("customer_id", "snapshot_date")


# ---------------------------------------------------------------- snapshots

def warmup_days(config: ChurnConfig) -> int:
    """Days of history the first snapshot needs before it: snapshots.min_history_days, and with population
    active its whole active window."""
    d = config.definition
    return max(config.snapshots.min_history_days, d.active_days if d.population == "active" else 0)


def snapshot_dates(history_end: date | None, config: ChurnConfig, history_start: date | None = None) -> list[date]:
    """The training snapshots, oldest first, `every_days` apart: `count` of them, or with snapshots.min_count as
    many as the history holds down to min_count. The last is horizon_days before history_end (the last day whose
    events are known, so the last label window ends with it) unless snapshots.last fixes it; the first has
    warmup_days of history before it. InsufficientData (one line: the history there is, the history needed,
    what to change) when the data cannot hold them."""
    s, horizon = config.snapshots, config.definition.horizon_days
    if history_end is None:
        raise InsufficientData("there are no touchpoints yet: churn training needs purchase history; run the "
                               "earlier steps on some data first")
    last = s.last or history_end - timedelta(days=horizon)
    if last + timedelta(days=horizon) > history_end:
        raise InsufficientData(f"snapshots.last {last} plus the {horizon}-day horizon ends after the history "
                               f"({history_end}): its churn label is not known yet; set snapshots.last to "
                               f"{history_end - timedelta(days=horizon)} or earlier in conf/churn.yaml, or remove it")
    warmup = warmup_days(config)
    if history_start is None:
        fit = s.count
    else:
        room = (last - history_start).days + 1 - warmup    # days of history left between the snapshots
        fit = min(s.count, room // s.every_days + 1) if room >= 0 else 0
    if fit < s.fewest:
        have = (history_end - history_start).days + 1
        needed = warmup + (s.fewest - 1) * s.every_days + horizon
        raise InsufficientData(
            f"too little history for the configured snapshots: the activity spans {have} days "
            f"({history_start} to {history_end}), and {s.fewest} snapshots {s.every_days} days apart with {warmup} "
            f"days of history before the first and a {horizon}-day horizon after the last need {needed}; lower "
            f"{'snapshots.min_count' if s.min_count else 'snapshots.count (or set snapshots.min_count)'}, "
            "snapshots.every_days, snapshots.min_history_days or definition.horizon_days in conf/churn.yaml")
    return [last - timedelta(days=s.every_days * i) for i in reversed(range(fit))]


def snapshot_frame(spark: SparkSession, dates: list[date], config: ChurnConfig) -> DataFrame:
    """(snapshot_date, snapshot_ts, label_end_ts): features see the events before snapshot_ts (the end of the
    snapshot day in scoring.timezone), the label those from then until label_end_ts, horizon_days later.
    Computed here, not by Spark interval arithmetic, which follows the session's zone across a DST change."""
    tz, horizon = config.scoring.timezone, config.definition.horizon_days
    rows = [(d, end_of_day(d, tz), end_of_day(d + timedelta(days=horizon), tz)) for d in dates]
    return spark.createDataFrame(rows, "snapshot_date date, snapshot_ts timestamp, label_end_ts timestamp")


# ---------------------------------------------------------------- one narrow row per event

def is_activity(journey: JourneyConfig, config: ChurnConfig) -> Column:
    """True for what a retained customer does: a purchase, or an event of definition.activity_event_types."""
    return F.col("event_type").isin(config.definition.activity_event_types) | is_purchase(journey)


def event_signals(touchpoints: DataFrame, journey: JourneyConfig, profile: ProfileConfig, config: ChurnConfig
                  ) -> DataFrame:
    """(customer_id, event_ts, channel, flags and values) per touchpoint: what every feature counts, decided once."""
    events, a = profile.events, journey.abandonment
    contact = F.col("event_type").isin(events.contact)
    own_text = F.col("channel").isin(profile.sentiment.channels) & F.col("text").isNotNull()
    purchase = is_purchase(journey)
    return touchpoints.select(
        "customer_id", "event_ts",
        F.when(~F.col("event_type").isin(events.company_initiated), F.col("channel")).alias("own_channel"),
        purchase.alias("is_purchase"),
        F.when(purchase, F.col("amount")).alias("purchase_amount"),
        is_activity(journey, config).alias("is_activity"),
        F.col("event_type").isin(a.cart_event_types).alias("is_cart"),
        F.col("event_type").isin(a.completing_event_types).alias("is_completion"),
        F.col("event_type").isin(a.failed_payment_event_types).alias("is_failed_payment"),
        F.col("event_type").isin(a.cancelled_order_event_types).alias("is_cancelled_order"),
        contact.alias("is_contact"),
        (contact & F.lower("reason").isin([r.lower() for r in profile.complaint_reasons])).alias("is_complaint"),
        F.col("event_type").isin(events.email_sent).alias("is_email_sent"),
        F.col("event_type").isin(events.email_open).alias("is_email_open"),
        F.col("event_type").isin(profile.consent.unsubscribe_event_types).alias("is_unsubscribe"),
        F.col("csat").cast("double").alias("csat"), F.col("nps").cast("double").alias("nps"),
        F.when(own_text, sentiment_score("text", profile.sentiment)).alias("sentiment"),
    )


# ---------------------------------------------------------------- features

def _days(ts: Column) -> Column:
    return (F.unix_micros(F.col("snapshot_ts")) - F.unix_micros(ts)) / (SECONDS_PER_DAY * 1_000_000)


def _n(condition: Column) -> Column:
    return F.count(F.when(condition, F.lit(1))).cast("double")


def _sum(condition: Column, value: str) -> Column:
    return F.coalesce(F.sum(F.when(condition, F.col(value))), F.lit(0.0))


def _latest(value: str) -> Column:
    return F.max_by(value, F.when(F.col(value).isNotNull(), F.col("event_ts")))


def _rate(num: Column, den: Column) -> Column:
    return F.when(den > 0, F.least(F.lit(1.0), num / den))


def snapshot_aggregates(signals: DataFrame, snapshots: DataFrame) -> DataFrame:
    """Every event-based feature of every (customer, snapshot), from the events before the snapshot's end, in
    one aggregation (the snapshot dates are few: broadcast, each event paired with the snapshots after it)."""
    paired = signals.join(F.broadcast(snapshots), signals.event_ts < snapshots.snapshot_ts)
    d = F.col("_days")
    last30, prior60 = d <= 30, (d > 30) & (d <= 90)
    last90, prior90 = d <= 90, (d > 90) & (d <= 180)
    p, act = F.col("is_purchase"), F.col("is_activity")
    complaint, sent, opened = F.col("is_complaint"), F.col("is_email_sent"), F.col("is_email_open")
    agg = (paired.withColumn("_days", _days(F.col("event_ts")))
           .groupBy(*KEY, "snapshot_ts")
           .agg(F.max("_days").alias("_days_since_first"),
                F.min(F.when(p, d)).alias("days_since_last_purchase"),
                F.min(F.when(act, d)).alias("days_since_last_activity"),
                F.max(F.when(act, d)).alias("_days_since_first_activity"), _n(act).alias("_activities"),
                F.max(F.when(p, d)).alias("_days_since_first_purchase"),
                _n(p).alias("purchases_total"), _sum(p, "purchase_amount").alias("spend_total"),
                _n(p & last30).alias("purchases_30d"), _n(p & prior60).alias("purchases_prior_60d"),
                _sum(p & last30, "purchase_amount").alias("spend_30d"),
                _sum(p & prior60, "purchase_amount").alias("_spend_prior_60d"),
                _n(act & last30).alias("activity_30d"), _n(act & prior60).alias("_activity_prior_60d"),
                _n(act & last90).alias("activity_90d"), _n(act & (d <= 365)).alias("activity_365d"),
                _n(p & (d <= 365)).alias("purchases_365d"),
                _n(F.col("is_cart") & last90).alias("_carts_90d"),
                _n(F.col("is_completion") & last90).alias("_completions_90d"),
                _n(F.col("is_failed_payment") & last90).alias("failed_payments_90d"),
                _n(F.col("is_cancelled_order") & last90).alias("cancelled_orders_90d"),
                _n(complaint).alias("complaints_total"), _n(complaint & last90).alias("complaints_90d"),
                F.min(F.when(complaint, d)).alias("days_since_last_complaint"),
                _n(F.col("is_contact") & last90).alias("contact_center_calls_90d"),
                _latest("csat").alias("csat_latest"),
                F.avg(F.when(last90, F.col("csat"))).alias("_csat_90d"),
                F.avg(F.when(d > 90, F.col("csat"))).alias("_csat_before"),
                _latest("nps").alias("nps_latest"),
                F.avg(F.when(last90, F.col("nps"))).alias("_nps_90d"),
                F.avg(F.when(d > 90, F.col("nps"))).alias("_nps_before"),
                _n(sent & last90).alias("emails_received_90d"), _n(opened & last90).alias("_opens_90d"),
                _n(sent & prior90).alias("_emails_prior_90d"), _n(opened & prior90).alias("_opens_prior_90d"),
                F.max(F.col("is_unsubscribe").cast("double")).alias("email_unsubscribed"),
                F.size(F.collect_set(F.when(last90, F.col("own_channel")))).cast("double").alias("channels_used_90d"),
                F.avg("sentiment").alias("sentiment_score")))
    ipt = F.when(F.col("purchases_total") >= 2,
                 (F.col("_days_since_first_purchase") - F.col("days_since_last_purchase")) / (F.col("purchases_total") - 1))
    open_rate = _rate(F.col("_opens_90d"), F.col("emails_received_90d"))
    return (agg
            .withColumn("average_order_value",
                        F.when(F.col("purchases_total") > 0, F.col("spend_total") / F.col("purchases_total")))
            .withColumn("purchase_trend", F.col("purchases_30d") - F.col("purchases_prior_60d") / 2)
            .withColumn("spend_trend", F.col("spend_30d") - F.col("_spend_prior_60d") / 2)
            .withColumn("activity_trend", F.col("activity_30d") - F.col("_activity_prior_60d") / 2)
            .withColumn("inter_purchase_days_mean", ipt)
            .withColumn("activity_gap_days_mean", F.when(
                F.col("_activities") >= 2,
                (F.col("_days_since_first_activity") - F.col("days_since_last_activity")) / (F.col("_activities") - 1)))
            .withColumn("activity_gap_overdue_ratio", F.when(
                F.col("activity_gap_days_mean") > 0, F.col("days_since_last_activity") / F.col("activity_gap_days_mean")))
            .withColumn("purchase_overdue_ratio",
                        F.when(ipt > 0, F.col("days_since_last_purchase") / ipt))
            .withColumn("abandoned_carts_90d", F.greatest(F.lit(0.0), F.col("_carts_90d") - F.col("_completions_90d")))
            .withColumn("csat_change", F.col("_csat_90d") - F.col("_csat_before"))
            .withColumn("nps_change", F.col("_nps_90d") - F.col("_nps_before"))
            .withColumn("email_open_rate_90d", open_rate)
            .withColumn("email_engagement_change",
                        open_rate - _rate(F.col("_opens_prior_90d"), F.col("_emails_prior_90d")))
            .withColumn("tenure_days", F.col("_days_since_first"))
            # BG/NBD's summary (purchases, the time from the first to the last, tenure) as a rate and a share:
            # counts and days grow with tenure, so the scoring date, horizon_days after the last snapshot, shows
            # larger ones than training did; a rate and a share keep one scale
            .withColumn("purchases_per_30d", F.col("purchases_total") * 30.0
                        / F.greatest(F.lit(30.0), F.col("_days_since_first_purchase")))
            .withColumn("quiet_share", F.when(F.col("tenure_days") > 0,
                                              F.col("days_since_last_purchase") / F.col("tenure_days")))
            # the activities the customer's own pace over the last year (or their tenure) says they would have
            # done since the last one: a quiet customer is not overdue after a month, a weekly one is
            .withColumn("activity_overdue", F.col("days_since_last_activity") * F.col("activity_365d")
                        / F.greatest(F.lit(1.0), F.least(F.lit(365.0), F.col("tenure_days")))))


def demographic_features(customers: DataFrame, snapshots: DataFrame) -> DataFrame:
    """(customer_id, snapshot_date, age, gender, country): the golden record's slowly changing attributes, the
    age counted at each snapshot."""
    years = F.floor(F.months_between(F.col("snapshot_date"), F.col("birth_date")) / 12)
    return (customers.select("customer_id", "birth_date", "gender", "country")
            .crossJoin(F.broadcast(snapshots.select("snapshot_date")))
            .select(*KEY, F.when(years >= 0, years).cast("double").alias("age"), "gender", "country"))


# ---------------------------------------------------------------- labels and the training frame

def activity_after(signals: DataFrame, snapshots: DataFrame) -> DataFrame:
    """(customer_id, snapshot_date, activity_in_horizon): activity events in [snapshot_ts, label_end_ts)."""
    act = signals.where("is_activity").select("customer_id", "event_ts")
    return (act.join(F.broadcast(snapshots),
                     (act.event_ts >= F.col("snapshot_ts")) & (act.event_ts < F.col("label_end_ts")))
            .groupBy(*KEY).agg(F.count(F.lit(1)).alias("activity_in_horizon")))


def in_population(config: ChurnConfig) -> Column:
    """Who a snapshot holds (definition.population): every customer with an activity (a purchase included)
    before it, or only those with one in the active_days before it."""
    d = config.definition
    recency = F.col("days_since_last_activity")
    return recency.isNotNull() if d.population == "all" else recency <= d.active_days


def churn_features(touchpoints: DataFrame, customers: DataFrame, snapshots: DataFrame, journey: JourneyConfig,
                   profile: ProfileConfig, config: ChurnConfig, labelled: bool = True) -> DataFrame:
    """gold.churn_features: one row per customer of the population at a snapshot (in_population), the
    configured features, and (labelled) `churned`: no activity in the horizon_days after the snapshot.
    A label is only known once its horizon has passed; unlabelled frames (scoring as of a date) leave it NULL."""
    signals = event_signals(touchpoints, journey, profile, config)
    aggregates = snapshot_aggregates(signals, snapshots)
    population = aggregates.where(in_population(config))
    frame = population.join(demographic_features(customers, snapshots), list(KEY), "left")
    if labelled:
        after = activity_after(signals, snapshots)
        churned = F.coalesce(F.col("activity_in_horizon"), F.lit(0)) == 0
        frame = frame.join(after, list(KEY), "left").withColumn("churned", churned.cast("int"))
    else:
        frame = frame.withColumn("churned", F.lit(None).cast("int"))
    return frame.select(*KEY, *FEATURES, "churned")


def training_features(touchpoints: DataFrame, customers: DataFrame, journey: JourneyConfig, profile: ProfileConfig,
                      config: ChurnConfig, as_of: date | None = None) -> tuple[list[date], DataFrame]:
    """(snapshot dates, gold.churn_features) for training. With as_of (a backtest) the touchpoints after the end
    of that day are dropped first: the history ends there, so the last label window ends by it as well."""
    tz = config.scoring.timezone
    if as_of is not None:
        touchpoints = touchpoints.where(F.col("event_ts") < F.lit(end_of_day(as_of, tz)))
    # the history is the span of the activity (a CRM record from years back says nothing about activity then)
    day = local_date("event_ts", tz)
    span = touchpoints.where(is_activity(journey, config)).agg(F.min(day), F.max(day)).first()
    dates = snapshot_dates(span[1], config, span[0])
    snapshots = snapshot_frame(touchpoints.sparkSession, dates, config)
    return dates, churn_features(touchpoints, customers, snapshots, journey, profile, config)
