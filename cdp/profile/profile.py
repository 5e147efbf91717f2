"""gold.customer_profile (Customer 360): one row per gold.customers customer, every fact aggregated at customer
grain and left-joined onto the golden record in one final step. Pure: frames and config in, one frame out."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.config.journeys import JourneyConfig
from cdp.config.profile import PROFILE_COLUMNS, ProfileConfig
from cdp.journey.touchpoints import is_purchase
from cdp.profile.facts import channel_activity, contact_center, customer_aggregates, purchases_not_completed
from cdp.profile.rfm import rfm

# Facts that are counts: a customer with no such touchpoint has zero of them, not an unknown number.
COUNTS = ("interactions", "channels_used", "frequency", "abandoned_carts", "failed_payments", "cancelled_orders",
          "emails_received", "callcenter_contacts", "complaints", "reviews", "social_mentions", "suggestions")


def resolve_as_of(touchpoints: DataFrame, config: ProfileConfig, run_time: datetime) -> datetime:
    """The profile's as_of (naive UTC): the latest touchpoint, or run_time if so configured or there is none."""
    # latest_event makes the profile a function of its input: a re-run on the same data gives the same rows
    if config.as_of == "run_time":
        return run_time
    latest = touchpoints.agg(F.max("event_ts")).first()[0]
    return latest if latest is not None else run_time


def age_band(age: Column, edges: list[int]) -> Column:
    """'<18', '18-24', ..., '65+' for edges [18, 25, ..., 65]; NULL for an unknown age."""
    band = F.when(age < edges[0], F.lit(f"<{edges[0]}"))
    for low, high in zip(edges, edges[1:], strict=False):
        band = band.when(age < high, F.lit(f"{low}-{high - 1}"))
    return F.when(age.isNotNull(), band.otherwise(F.lit(f"{edges[-1]}+")))


def demographics(customers: DataFrame, config: ProfileConfig, as_of: Column) -> DataFrame:
    """(customer_id, names, age and age_band at as_of, gender, city, postal_code, country, _customer_since)."""
    # gold.customers has no region, so neither does the profile; a birth date after as_of is a typo, not an age
    years = F.floor(F.months_between(F.to_date(as_of), F.col("birth_date")) / 12).cast("int")
    age = F.when(years >= 0, years)
    return customers.select("customer_id", "first_name", "last_name", age.alias("age"),
                            age_band(age, config.age_bands).alias("age_band"), "gender", "city", "postal_code",
                            "country", F.col("first_seen").alias("_customer_since"))


def customer_facts(touchpoints: DataFrame, customers: DataFrame, incomplete: DataFrame, journey_config: JourneyConfig,
                   config: ProfileConfig, as_of: Column) -> list[DataFrame]:
    """Every fact about the customers as (customer_id, ...) frames, one per grain: the per-customer aggregates,
    the purchases (RFM), the channel mix, the contact reasons and the purchases not completed."""
    events = config.events
    # Quintiles rank the profile's customers: a purchase of anyone else must not move them. The other facts
    # need no such cut, the final left join drops what belongs to nobody in `customers`.
    purchases = touchpoints.where(is_purchase(journey_config)).join(customers.select("customer_id"), "customer_id",
                                                                    "left_semi")
    return [
        customer_aggregates(touchpoints, events, config.consent, config.sentiment),
        rfm(purchases, config.rfm, as_of),
        channel_activity(touchpoints, events),
        contact_center(touchpoints, events, config.complaint_reasons),
        purchases_not_completed(incomplete),
    ]


def _profile_columns(config: ProfileConfig, as_of: Column) -> list[Column]:
    first_seen = F.least("_customer_since", "first_touch_ts", F.col("signup_date").cast("timestamp"))
    # a record observed after as_of (an update time past the last event) still makes a customer of 0 days
    tenure = F.greatest(F.lit(0), F.datediff(F.to_date(as_of), F.to_date(first_seen)))
    derived = {
        "first_seen": first_seen,
        "tenure_days": tenure,
        "rfm_segment": F.coalesce("rfm_segment", F.lit(config.rfm.no_purchase_segment)),
        "monetary": F.coalesce("monetary", F.lit(0.0)),
        "top_contact_reasons": F.coalesce("top_contact_reasons", F.array().cast("array<string>")),
        "email_unsubscribed": F.col("email_unsubscribed_at").isNotNull(),
        "as_of": as_of,
        **{c: F.coalesce(F.col(c), F.lit(0)).cast("long") for c in COUNTS},
    }
    return [derived.get(c, F.col(c)).alias(c) for c in PROFILE_COLUMNS]


def customer_profile(touchpoints: DataFrame, customers: DataFrame, incomplete: DataFrame, journey_config: JourneyConfig,
                     config: ProfileConfig, as_of: datetime) -> DataFrame:
    """gold.customer_profile: a row per customer of `customers` (gold.customers), from touchpoints up to as_of and
    `incomplete` (gold.incomplete_purchases)."""
    as_of_col = F.lit(as_of).cast("timestamp")
    seen = touchpoints.where(F.col("event_ts") <= as_of_col)
    profile = demographics(customers, config, as_of_col)
    for facts in customer_facts(seen, customers, incomplete, journey_config, config, as_of_col):
        profile = profile.join(facts, "customer_id", "left")
    return profile.select(*_profile_columns(config, as_of_col))
