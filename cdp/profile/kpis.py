"""KPI marts for BI, computed from customer touchpoints (cdp.journey.touchpoints): daily KPIs per channel, a
cohort retention matrix by first-purchase month, NPS and CSAT trends, contact and complaint volume by reason.

What a purchase is comes from conf/journeys.yaml (`is_purchase`), shared with journeys and the profile. Days and
months are UTC (event_date); amounts are summed as delivered (one currency). The latest day or month of the data
may be incomplete.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp.config.journeys import JourneyConfig
from cdp.journey.touchpoints import is_purchase
from cdp.tables import KPI_COHORT_RETENTION, KPI_COMPLAINTS, KPI_DAILY_CHANNEL, KPI_SATISFACTION, Table

# Call-center contact reasons that are complaints (conf/sources/callcenter_contacts.yaml lists the reasons).
COMPLAINT_REASONS = ("complaint", "cancellation")
PROMOTER_MIN, PASSIVE_MIN = 9, 7   # NPS answers 9-10 promote, 7-8 are passive, 0-6 detract


def _month(column: str = "event_date") -> Column:
    """The first day of the date's month (a date), the grain of every monthly mart."""
    return F.trunc(F.col(column), "month")


def _months_between(start: Column, end: Column) -> Column:
    """Whole calendar months from start's month to end's (both first days of a month)."""
    return (F.year(end) * 12 + F.month(end)) - (F.year(start) * 12 + F.month(start))


def _ratio(numerator: Column, denominator: Column) -> Column:
    """numerator / denominator as a double, null when the denominator is 0 (undefined, not zero)."""
    return F.when(denominator > 0, numerator.cast("double") / denominator)


def kpi_daily_channel(touchpoints: DataFrame, config: JourneyConfig) -> DataFrame:
    """(date, channel, interactions, customers, orders, revenue, converted_customers, conversion) per UTC day and
    channel. orders and revenue: the purchases made on that channel. conversion: the share of the channel's
    customers that day who made a purchase that day on any channel, so a channel without purchases of its own
    (web, email) shows how many of its visitors bought; between 0 and 1, unlike orders / customers."""
    purchase = is_purchase(config)
    per_customer = touchpoints.groupBy(F.col("event_date").alias("date"), "channel", "customer_id").agg(
        F.count(F.lit(1)).alias("interactions"),
        F.count(F.when(purchase, True)).alias("orders"),
        F.sum(F.when(purchase, F.col("amount"))).alias("revenue"))
    # Did the customer buy that day on any channel? A window over its channel rows of the day, no second scan.
    bought = F.max(F.col("orders") > 0).over(Window.partitionBy("date", "customer_id"))
    return (per_customer.withColumn("_bought", bought)
            .groupBy("date", "channel")
            .agg(F.sum("interactions").alias("interactions"), F.count(F.lit(1)).alias("customers"),
                 F.sum("orders").alias("orders"), F.coalesce(F.sum("revenue"), F.lit(0.0)).alias("revenue"),
                 F.count(F.when(F.col("_bought"), True)).alias("converted_customers"))
            .withColumn("conversion", _ratio(F.col("converted_customers"), F.col("customers"))))


def kpi_cohort_retention(touchpoints: DataFrame, config: JourneyConfig) -> DataFrame:
    """(cohort_month, months_since_first, customers, active_customers, retention_rate): the customers whose first
    purchase fell in cohort_month, and how many of them purchased again months_since_first months later (purchase
    retention: month 0 is the whole cohort). Every cohort runs to the data's last month, zeros included."""
    purchases = touchpoints.where(is_purchase(config)).select("customer_id", _month().alias("month")).distinct()
    firsts = purchases.groupBy("customer_id").agg(F.min("month").alias("cohort_month"))
    active = (purchases.join(firsts, "customer_id")
              .groupBy("cohort_month",
                       _months_between(F.col("cohort_month"), F.col("month")).alias("months_since_first"))
              .agg(F.count(F.lit(1)).alias("active_customers")))
    last_month = touchpoints.agg(F.max(_month()).alias("_last_month"))
    grid = (firsts.groupBy("cohort_month").agg(F.count(F.lit(1)).alias("customers"))
            .crossJoin(last_month)
            .select("cohort_month", "customers", F.explode(F.sequence(
                F.lit(0), _months_between(F.col("cohort_month"), F.col("_last_month")))).alias("months_since_first")))
    active_customers = F.coalesce(F.col("active_customers"), F.lit(0)).cast("long")
    return (grid.join(active, ["cohort_month", "months_since_first"], "left")
            .select("cohort_month", "months_since_first", "customers", active_customers.alias("active_customers"),
                    _ratio(active_customers, F.col("customers")).alias("retention_rate")))


def kpi_satisfaction(touchpoints: DataFrame) -> DataFrame:
    """(month, csat_responses, csat_avg, nps_responses, promoters, passives, detractors, nps) per month with any
    CSAT (1-5) or NPS (0-10) answer; nps = 100 * (promoters - detractors) / nps_responses, from -100 to 100."""
    nps = F.col("nps")
    return (touchpoints.where(F.col("csat").isNotNull() | nps.isNotNull())
            .groupBy(_month().alias("month"))
            .agg(F.count("csat").alias("csat_responses"), F.avg("csat").alias("csat_avg"),
                 F.count(nps).alias("nps_responses"),
                 F.count(F.when(nps >= PROMOTER_MIN, True)).alias("promoters"),
                 F.count(F.when((nps >= PASSIVE_MIN) & (nps < PROMOTER_MIN), True)).alias("passives"),
                 F.count(F.when(nps < PASSIVE_MIN, True)).alias("detractors"))
            .withColumn("nps", 100 * _ratio(F.col("promoters") - F.col("detractors"), F.col("nps_responses"))))


def kpi_complaints(touchpoints: DataFrame, complaint_reasons: Sequence[str] = COMPLAINT_REASONS) -> DataFrame:
    """(month, reason, is_complaint, contacts, customers): every contact that carries a reason (the call
    center's) per month and reason, flagged when the reason is a complaint one, so BI shows complaint volume and
    its share of all contacts from one table."""
    return (touchpoints.where(F.col("reason").isNotNull())
            .groupBy(_month().alias("month"), "reason")
            .agg(F.count(F.lit(1)).alias("contacts"), F.countDistinct("customer_id").alias("customers"))
            .select("month", "reason", F.col("reason").isin(list(complaint_reasons)).alias("is_complaint"),
                    "contacts", "customers"))


def kpi_marts(touchpoints: DataFrame, config: JourneyConfig) -> dict[Table, DataFrame]:
    """Every KPI mart by its table, for the writer to gate and overwrite."""
    return {KPI_DAILY_CHANNEL: kpi_daily_channel(touchpoints, config),
            KPI_COHORT_RETENTION: kpi_cohort_retention(touchpoints, config),
            KPI_SATISFACTION: kpi_satisfaction(touchpoints),
            KPI_COMPLAINTS: kpi_complaints(touchpoints)}
