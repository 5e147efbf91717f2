"""Touchpoints and the unattributed: one left join of silver.interactions to gold.identity_map; an interaction whose
identity record has a customer is a touchpoint, the others are counted by source and reason, none dropped."""

from __future__ import annotations

from frame_asserts import assert_frame_equal
from touchpoints import SCHEMA, touch

from cdp.journey.touchpoints import TOUCHPOINT_COLUMNS, customer_touchpoints, owned, unowned, with_owner

# (interaction's identity_record_id, interaction): r1 and r2 have customers, r9 is anonymous (not in the map)
INTERACTIONS = [
    ("r1", touch("-", "page_view", 0, id="i1", source="clickstream_events")),
    ("r2", touch("-", "order_placed", 5, id="i2", source="ecommerce_orders")),
    ("r1", touch("-", "email_open", 9, id="i3", source="email_events")),
    ("r9", touch("-", "page_view", 12, id="i4", source="clickstream_events")),
    (None, touch("-", "page_view", 15, id="i5", source="clickstream_events")),
    (None, touch("-", "review", 20, id="i6", source="review_sites")),
]
IDENTITY_MAP = [("r1", "C1"), ("r2", "C2")]


def interactions(spark):
    rows = [(record, *(r[c] for c in TOUCHPOINT_COLUMNS if c != "customer_id")) for record, r in INTERACTIONS]
    columns = [c for c in SCHEMA.split(", ") if not c.startswith("customer_id ")]
    return spark.createDataFrame(rows, ", ".join(["identity_record_id string", *columns]))


def test_an_interaction_whose_record_has_a_customer_is_its_touchpoint(spark):
    got = customer_touchpoints(interactions(spark), spark.createDataFrame(IDENTITY_MAP, "record_id string, customer_id string"))
    assert_frame_equal(got.select("customer_id", "interaction_id", "source"),
                       [("C1", "i1", "clickstream_events"), ("C2", "i2", "ecommerce_orders"), ("C1", "i3", "email_events")],
                       "customer_id string, interaction_id string, source string")


def test_every_other_interaction_is_counted_by_source_and_reason(spark):
    both = with_owner(interactions(spark), spark.createDataFrame(IDENTITY_MAP, "record_id string, customer_id string"))
    assert_frame_equal(unowned(both), [("clickstream_events", "anonymous_record", 1),
                                       ("clickstream_events", "no_identifiers", 1), ("review_sites", "no_identifiers", 1)],
                       "source string, reason string, interactions long")


def test_touchpoints_and_the_unattributed_add_up_to_every_interaction(spark):
    both = with_owner(interactions(spark), spark.createDataFrame(IDENTITY_MAP, "record_id string, customer_id string"))
    counted = sum(r.interactions for r in unowned(both).collect())
    assert owned(both).count() + counted == len(INTERACTIONS)
