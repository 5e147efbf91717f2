"""Hand-built touchpoints (rows of cdp.journey.touchpoints.TOUCHPOINT_COLUMNS) for journey and profile tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from cdp.journey.touchpoints import TOUCHPOINT_COLUMNS

T0 = datetime(2025, 3, 1, 9, 0)
TYPES = {"event_ts": "timestamp", "event_date": "date", "amount": "double", "csat": "int", "nps": "int",
         "stars": "int", "attributes": "map<string,string>"}
SCHEMA = ", ".join(f"{c} {TYPES.get(c, 'string')}" for c in TOUCHPOINT_COLUMNS)

CHANNEL_OF = {"page_view": "clickstream", "product_view": "clickstream", "add_to_cart": "clickstream",
              "checkout_start": "clickstream", "purchase": "clickstream", "login": "clickstream",
              "order_placed": "ecommerce", "order_cancelled": "ecommerce", "payment_failed": "ecommerce",
              "order_returned": "ecommerce", "email_sent": "email", "email_open": "email", "email_click": "email",
              "email_unsubscribe": "email", "email_bounce": "email", "call_inbound": "callcenter",
              "call_outbound": "callcenter", "store_visit": "store", "survey_csat": "survey", "survey_nps": "survey",
              "review": "review_site", "social_post": "social", "suggestion": "suggestion_box",
              "profile_updated": "crm", "loyalty_enrolled": "loyalty"}


def touch(customer_id: str, event_type: str, minutes: float = 0, *, id: str | None = None, **values) -> dict:
    """One touchpoint of `customer_id`, `minutes` after T0 (days: minutes=60*24*n); other columns null."""
    ts = T0 + timedelta(minutes=minutes)
    row = {c: None for c in TOUCHPOINT_COLUMNS}
    channel = values.pop("channel", CHANNEL_OF.get(event_type, "other"))
    row.update(customer_id=customer_id, interaction_id=id or f"{customer_id}-{event_type}-{minutes:g}",
               source=values.pop("source", f"{channel}_source"), channel=channel, event_type=event_type,
               event_ts=ts, event_date=ts.date(), attributes=values.pop("attributes", {}), **values)
    return row


def touchpoints(spark, rows: list[dict]):
    return spark.createDataFrame([tuple(r[c] for c in TOUCHPOINT_COLUMNS) for r in rows], SCHEMA)


DAY = 60 * 24
