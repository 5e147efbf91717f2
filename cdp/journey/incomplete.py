"""gold.incomplete_purchases: purchases that did not complete (abandoned carts, failed payments, cancelled orders),
per customer, month and kind.

A cart event (abandonment.cart_event_types) is abandoned when no completing event of the same customer follows
it within abandonment.window_hours (inclusive): a range join on customer_id, never a cross join. The abandoned
cart events of one session are ONE abandoned cart: adding three products and leaving is one lost sale, not three.
A failed payment or a cancelled order is one occurrence per event.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.config.journeys import Abandonment, JourneyConfig
from cdp.frames import union_all

INCOMPLETE_COLUMNS = ["customer_id", "period", "kind", "occurrences", "events", "amount", "products",
                      "first_event_ts", "last_event_ts"]
KINDS = ("abandoned_cart", "failed_payment", "cancelled_order")
_EVENT = ["customer_id", "kind", "occurrence", "event_ts", "amount", "product_id"]


def incomplete_purchases(journey: DataFrame, config: JourneyConfig) -> DataFrame:
    """One row per (customer_id, period = first day of the month, kind): INCOMPLETE_COLUMNS, from
    gold.customer_journey rows (cdp.journey.timeline.customer_journey)."""
    a = config.abandonment
    events = union_all([abandoned_cart_events(journey, a),
                        order_events(journey, a.failed_payment_event_types, "failed_payment"),
                        order_events(journey, a.cancelled_order_event_types, "cancelled_order")])
    return events.transform(per_occurrence).transform(per_customer_month)


def abandoned_cart_events(journey: DataFrame, a: Abandonment) -> DataFrame:
    """The cart events with no completing event of the customer within the window; occurrence = their session."""
    window = int(a.window_hours * 3600 * 1_000_000)
    carts = (journey.where(F.col("event_type").isin(a.cart_event_types))
             .withColumn("_at", F.unix_micros("event_ts")))
    completions = (journey.where(F.col("event_type").isin(a.completing_event_types))
                   .select(F.col("customer_id").alias("_customer_id"), F.unix_micros("event_ts").alias("_done_at")))
    completed_in_time = ((F.col("customer_id") == F.col("_customer_id")) & (F.col("_done_at") >= F.col("_at"))
                         & (F.col("_done_at") <= F.col("_at") + window))
    return (carts.join(completions, completed_in_time, "left_anti")
            .select("customer_id", F.lit("abandoned_cart").alias("kind"), F.col("session_id").alias("occurrence"),
                    *_EVENT[3:]))


def order_events(journey: DataFrame, event_types: list[str], kind: str) -> DataFrame:
    """Events of `event_types`, each an occurrence of `kind` of its own."""
    return (journey.where(F.col("event_type").isin(event_types))
            .select("customer_id", F.lit(kind).alias("kind"), F.col("interaction_id").alias("occurrence"),
                    *_EVENT[3:]))


def per_occurrence(events: DataFrame) -> DataFrame:
    """One row per incomplete purchase; its month is the month of its first event (it is counted once)."""
    return (events.groupBy("customer_id", "kind", "occurrence")
            .agg(F.count(F.lit(1)).alias("events"), F.sum("amount").alias("amount"),
                 F.collect_set("product_id").alias("products"), F.min("event_ts").alias("first_event_ts"),
                 F.max("event_ts").alias("last_event_ts"))
            .withColumn("period", F.trunc(F.col("first_event_ts").cast("date"), "month")))


def per_customer_month(occurrences: DataFrame) -> DataFrame:
    return (occurrences.groupBy("customer_id", "period", "kind")
            .agg(F.count(F.lit(1)).alias("occurrences"), F.sum("events").alias("events"),
                 F.sum("amount").alias("amount"),
                 F.array_sort(F.array_distinct(F.flatten(F.collect_list("products")))).alias("products"),
                 F.min("first_event_ts").alias("first_event_ts"), F.max("last_event_ts").alias("last_event_ts"))
            .select(*INCOMPLETE_COLUMNS))
