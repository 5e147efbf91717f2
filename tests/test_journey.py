"""Journey cores on hand-built touchpoints: the timeline (order, neighbours, sessions, stages), incomplete
purchases, funnels and paths, each compared as whole frames with values worked out by hand; and the journey
config's event-type check (no Spark).

One touchpoints frame holds every scenario, one customer (or customer prefix) per scenario; each core runs once
per module and its result is kept as a local frame, so a case only filters it."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pyarrow as pa
import pytest
from frame_asserts import assert_frame_equal
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import _parse_datatype_string
from touchpoints import DAY, T0, touch, touchpoints

from cdp.config.journeys import (
    Paths,
    checked_journey_config,
    known_channels,
    known_event_types,
    load_journey_config,
)
from cdp.config.sources import ValueSpec, load_sources
from cdp.errors import ConfigError
from cdp.journey.funnels import funnels
from cdp.journey.incomplete import incomplete_purchases
from cdp.journey.paths import journey_paths
from cdp.journey.timeline import customer_journey
from cdp.quality import load_contract
from cdp.tables import CUSTOMER_JOURNEY, FUNNELS, INCOMPLETE_PURCHASES, JOURNEY_PATHS


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def session(customer: str, first_interaction: str) -> str:
    return hashlib.sha256(f"{customer}|{first_interaction}".encode()).hexdigest()


MARCH, APRIL = date(2025, 3, 1), date(2025, 4, 1)

# ---------------------------------------------------------------- the scenarios
# sessions: gap 29.5 min (< 30: same session), a store visit 10 min later (a session of its own that does not cut
# the web session), a cart 20.5 min after the product view (same web session), a page view 30.5 min after that.
SESSIONS = [touch("sess", "page_view", 0, id="sess-1"),
            touch("sess", "product_view", 29.5, id="sess-2", product_id="P1"),
            touch("sess", "store_visit", 40, id="sess-3", amount=25.0),
            touch("sess", "add_to_cart", 50, id="sess-4", product_id="P1"),
            touch("sess", "page_view", 80.5, id="sess-5")]
# two touchpoints at the same instant: interaction_id breaks the tie ('tie-a' first)
TIE = [touch("tie", "email_click", 0, id="tie-b", campaign_id="K1"), touch("tie", "page_view", 0, id="tie-a")]
STAGE_CASES = [  # (case id, event type, reason, stage)
    ("email_sent_is_awareness", "email_sent", None, "awareness"),
    ("product_view_is_consideration", "product_view", None, "consideration"),
    ("order_placed_is_purchase", "order_placed", None, "purchase"),
    ("billing_call_is_service", "call_inbound", "billing", "service"),
    ("complaint_call_is_churn_risk", "call_inbound", "complaint", "churn_risk"),
    ("reason_compared_in_lower_case", "call_outbound", " Cancellation ", "churn_risk"),
    ("telesales_call_is_consideration", "call_outbound", "telesales", "consideration"),
    ("loyalty_enrolled_is_loyalty", "loyalty_enrolled", None, "loyalty"),
    ("unsubscribe_is_churn_risk", "email_unsubscribe", None, "churn_risk"),
    ("unmapped_event_type_is_other", "call_other", None, "other"),
]
STAGES = [touch("stg", event_type, 100 * i, id=f"stg-{case}", reason=reason)
          for i, (case, event_type, reason, _) in enumerate(STAGE_CASES)]
# incomplete purchases (window 24 h): completed 1 min inside the window; completed just after it (so abandoned);
# a cart filled again after a purchase, and another session's cart; failed payments and a cancelled order.
INCOMPLETE = [touch("kept", "add_to_cart", 0, product_id="P1"), touch("kept", "purchase", DAY - 1),
              touch("late", "add_to_cart", 0, product_id="P2"), touch("late", "checkout_start", 5, product_id="P2"),
              touch("late", "purchase", DAY + 6),
              touch("again", "add_to_cart", 0, product_id="P3"), touch("again", "purchase", 10),
              touch("again", "add_to_cart", 20, product_id="P4"), touch("again", "add_to_cart", 2 * DAY, product_id="P5"),
              touch("money", "payment_failed", 0, amount=40.0), touch("money", "payment_failed", 3 * DAY, amount=60.0),
              touch("money", "order_cancelled", 40 * DAY, amount=30.0)]
# funnels: one session per customer 'f*'
FUNNEL = [*(touch("f1", e, i) for i, e in enumerate(["product_view", "add_to_cart", "checkout_start", "purchase"])),
          *(touch("f2", e, i) for i, e in enumerate(["product_view", "checkout_start", "purchase"])),  # skips the cart
          *(touch("f3", e, i) for i, e in enumerate(["product_view", "add_to_cart"])),
          *(touch("f4", e, i) for i, e in enumerate(["email_click", "product_view", "add_to_cart", "checkout_start"])),
          *(touch("f5", e, i) for i, e in enumerate(["add_to_cart", "product_view", "add_to_cart"])),  # cart first
          touch("f6", "product_view", 40 * DAY),   # April
          touch("f7", "page_view", 0)]             # reaches no step: counts nowhere
# paths (length 3, top 2, silent after 30 days; the data ends at day 100): customers 'p*'
PATHS = [touch("p1", "email_open", 0), touch("p1", "page_view", 10), touch("p1", "page_view", 11),
         touch("p1", "product_view", 12), touch("p1", "order_placed", 60, amount=50.0),
         touch("p2", "email_click", 0), touch("p2", "page_view", 5), touch("p2", "product_view", 6),
         touch("p2", "order_placed", 30, amount=20.0), touch("p2", "store_visit", 80 * DAY),   # no ticket: no purchase
         touch("p3", "store_visit", 0, amount=30.0),
         touch("p4", "call_inbound", DAY), touch("p4", "store_visit", 2 * DAY, amount=10.0),
         touch("p4", "survey_csat", 90 * DAY),
         touch("p5", "page_view", 69 * DAY),     # 31 days before the end: silent
         touch("p6", "page_view", 71 * DAY)]     # 29 days before the end: not silent
END_OF_DATA = at(100 * DAY)


def ddl(settings, table) -> str:
    """The contract's columns as a DDL schema: expected frames have exactly the contract's names, types, order."""
    return ", ".join(f"{c.name} {c.type}" for c in load_contract(settings, table).columns)


# Frames built from Arrow are local relations: filtering and collecting them runs no Spark job, which keeps the
# many small comparisons below fast (a frame from a list of rows is an RDD: one job per collect).
def local(frame):
    """The frame computed once and kept as a local relation."""
    return frame.sparkSession.createDataFrame(frame.toArrow(), frame.schema)


def frame_of(spark, rows: list[tuple], schema: str):
    """Rows in `schema` (DDL) as a local relation."""
    struct = _parse_datatype_string(schema)
    arrow = to_arrow_schema(struct)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in arrow]
    table = pa.Table.from_arrays([pa.array(list(c), type=f.type) for c, f in zip(columns, arrow, strict=True)], schema=arrow)
    return spark.createDataFrame(table, struct)


def assert_rows(actual, rows: list[tuple], schema: str) -> None:
    assert_frame_equal(actual, frame_of(actual.sparkSession, rows, schema))


@pytest.fixture(scope="module")
def config(settings):
    return checked_journey_config(settings, load_sources(settings))   # purchases as the sources declare them


@pytest.fixture(scope="module")
def journey(spark, config):
    rows = [*SESSIONS, *TIE, *STAGES, *INCOMPLETE, *FUNNEL, *PATHS]
    return local(customer_journey(touchpoints(spark, rows), config))


def of(frame, prefix: str):
    return frame.where(frame.customer_id.startswith(prefix))


# ---------------------------------------------------------------- timeline

def test_a_journey_row_has_every_contract_column(journey, settings):
    # tie-a and tie-b share T0: 'tie-a' < 'tie-b' orders them; email is digital, so both are one session
    tie = session("tie", "tie-a")
    assert_rows(of(journey, "tie"), [
        ("tie", "tie-a", T0, MARCH, "clickstream", "clickstream_source", "page_view", "consideration", 1,
         None, None, "email", "email_click", None, tie, 1, True, False, False, None, None, None),
        ("tie", "tie-b", T0, MARCH, "email", "email_source", "email_click", "consideration", 2,
         "clickstream", "page_view", None, None, 0, tie, 2, False, True, False, None, None, "K1"),
    ], ddl(settings, CUSTOMER_JOURNEY))


def test_sequence_neighbours_and_first_last(journey):
    # seconds: 29.5 min = 1770, 10.5 min = 630, 10 min = 600, 30.5 min = 1830
    assert_rows(of(journey, "sess").select(
        "interaction_id", "sequence_number", "previous_channel", "previous_event_type", "next_channel",
        "next_event_type", "seconds_since_previous", "is_first_touch", "is_last_touch"), [
        ("sess-1", 1, None, None, "clickstream", "product_view", None, True, False),
        ("sess-2", 2, "clickstream", "page_view", "store", "store_visit", 1770, False, False),
        ("sess-3", 3, "clickstream", "product_view", "clickstream", "add_to_cart", 630, False, False),
        ("sess-4", 4, "store", "store_visit", "clickstream", "page_view", 600, False, False),
        ("sess-5", 5, "clickstream", "add_to_cart", None, None, 1830, False, True),
    ], "interaction_id string, sequence_number int, previous_channel string, previous_event_type string, "
       "next_channel string, next_event_type string, seconds_since_previous long, is_first_touch boolean, "
       "is_last_touch boolean")


def test_sessions_split_digital_touchpoints_after_the_gap(journey):
    # sess-1, -2 (29.5 min), -4 (20.5 min after sess-2: the store visit between does not count) are one web
    # session; the store visit is a session of its own; sess-5 comes 30.5 min after sess-4: a new session
    web, store, later = session("sess", "sess-1"), session("sess", "sess-3"), session("sess", "sess-5")
    assert_rows(of(journey, "sess").select("interaction_id", "session_id", "session_sequence"), [
        ("sess-1", web, 1), ("sess-2", web, 2), ("sess-4", web, 3), ("sess-3", store, 1), ("sess-5", later, 1),
    ], "interaction_id string, session_id string, session_sequence int")


@pytest.mark.parametrize(("case", "stage"), [(c[0], c[3]) for c in STAGE_CASES], ids=[c[0] for c in STAGE_CASES])
def test_stage(journey, case, stage):
    got = journey.where(journey.interaction_id == f"stg-{case}").select("interaction_id", "stage")
    assert_rows(got, [(f"stg-{case}", stage)], "interaction_id string, stage string")


def test_purchases_are_flagged(journey):
    # the store visit carries a ticket; page views, product views and carts are no purchase
    assert_rows(of(journey, "sess").where("is_purchase").select("interaction_id"), [("sess-3",)],
                       "interaction_id string")


# ---------------------------------------------------------------- incomplete purchases

@pytest.fixture(scope="module")
def incomplete(journey, config):
    return local(incomplete_purchases(journey, config))


INCOMPLETE_CASES = {
    # the purchase 23 h 59 min after the cart completes it
    "completed_within_the_window": ("kept", []),
    # the purchase is 24 h 6 min after the cart and 24 h 1 min after the checkout: both abandoned, one session
    "purchase_just_after_the_window": ("late", [
        ("late", MARCH, "abandoned_cart", 1, 2, None, ["P2"], at(0), at(5))]),
    # P3 was bought 10 min later; P4 (min 20) and P5 (day 2, another session) never were: two carts
    "cart_filled_after_a_purchase_and_another_session": ("again", [
        ("again", MARCH, "abandoned_cart", 2, 2, None, ["P4", "P5"], at(20), at(2 * DAY))]),
    # two failed payments in March (40 + 60), a cancelled order on April 10
    "failed_payments_and_a_cancelled_order": ("money", [
        ("money", MARCH, "failed_payment", 2, 2, 100.0, [], at(0), at(3 * DAY)),
        ("money", APRIL, "cancelled_order", 1, 1, 30.0, [], at(40 * DAY), at(40 * DAY))]),
}


@pytest.mark.parametrize("case", INCOMPLETE_CASES, ids=list(INCOMPLETE_CASES))
def test_incomplete_purchases(incomplete, settings, case):
    customer, expected = INCOMPLETE_CASES[case]
    assert_rows(incomplete.where(incomplete.customer_id == customer), expected,
                       ddl(settings, INCOMPLETE_PURCHASES))


# ---------------------------------------------------------------- funnels

@pytest.fixture(scope="module")
def funnel(journey, config):
    return local(funnels(of(journey, "f"), config))


FUNNEL_CASES = {
    # sessions entering by the web: f1 (all four steps), f2 (view, then checkout with no cart: stops at view),
    # f3 (view, cart), f5 (cart before view does not count; view, cart: two steps) -> 4, 3, 1, 1
    "march_web_with_a_session_skipping_the_cart": (MARCH, "clickstream", [
        (1, "product_view", 4, None, 1.0), (2, "add_to_cart", 3, 0.75, 0.75),
        (3, "checkout_start", 1, 1 / 3, 0.25), (4, "purchase", 1, 1.0, 0.25)]),
    # f4 entered by an email click and stopped at checkout
    "march_email_entry": (MARCH, "email", [
        (1, "product_view", 1, None, 1.0), (2, "add_to_cart", 1, 1.0, 1.0),
        (3, "checkout_start", 1, 1.0, 1.0), (4, "purchase", 0, 0.0, 0.0)]),
    # f6 viewed a product in April and nothing more: no conversion from a step nobody reached
    "april_nobody_past_the_first_step": (APRIL, "clickstream", [
        (1, "product_view", 1, None, 1.0), (2, "add_to_cart", 0, 0.0, 0.0),
        (3, "checkout_start", 0, None, 0.0), (4, "purchase", 0, None, 0.0)]),
}


@pytest.mark.parametrize("case", FUNNEL_CASES, ids=list(FUNNEL_CASES))
def test_funnel(funnel, settings, case):
    period, channel, steps = FUNNEL_CASES[case]
    got = funnel.where((funnel.period == period) & (funnel.channel == channel))
    assert_rows(got, [(period, channel, *step) for step in steps], ddl(settings, FUNNELS))


def test_funnel_has_no_row_for_sessions_reaching_no_step(funnel):
    # f7's page view alone reaches no step: the three (period, channel) pairs above are all there is
    assert_rows(funnel.select("period", "channel").distinct(),
                       [(MARCH, "clickstream"), (MARCH, "email"), (APRIL, "clickstream")],
                       "period date, channel string")


# ---------------------------------------------------------------- paths

@pytest.fixture(scope="module")
def paths(journey, config):
    short = config.model_copy(update={"paths": Paths(length=3, top_n=2, silent_days=30)})
    return local(journey_paths(of(journey, "p"), short, END_OF_DATA))


BEFORE_BUYING = "email > clickstream:page_view > clickstream:product_view"
PATH_CASES = {
    # p1 (its second page view collapses into the first) and p2 share a path; p3's store ticket was its first
    # touchpoint; p4's call ranks third of 4 purchases and is cut by top 2 ('(none)' < 'callcenter')
    "before_a_purchase": ("purchase", [(1, BEFORE_BUYING, 2, 0.5), (2, "(none)", 1, 0.25)]),
    # silent (last touch before day 70): p1 (after its order), p3 (its one store visit), p5 (day 69); p2, p4, p6
    # were seen after day 70. Three paths of one journey each, ranked by path; 'store' is cut.
    "before_going_silent": ("silent", [
        (1, "clickstream:page_view", 1, 1 / 3),
        (2, "clickstream:page_view > clickstream:product_view > ecommerce:order_placed", 1, 1 / 3)]),
}


@pytest.mark.parametrize("case", PATH_CASES, ids=list(PATH_CASES))
def test_paths(paths, settings, case):
    outcome, expected = PATH_CASES[case]
    assert_rows(paths.where(paths.outcome == outcome), [(outcome, *row) for row in expected],
                       ddl(settings, JOURNEY_PATHS))


# ---------------------------------------------------------------- config: event types the sources produce (no Spark)

def spec(event_type: ValueSpec) -> SimpleNamespace:
    """The part of a source spec known_event_types reads."""
    return SimpleNamespace(silver=SimpleNamespace(interaction=SimpleNamespace(event_type=event_type)))


KNOWN_CASES = {
    "a_constant": ([ValueSpec(value="store_visit")], {"store_visit"}),
    "map_values_and_default": ([ValueSpec(column="status", map={"ok": "order_placed"}, default="order_other")],
                               {"order_placed", "order_other"}),
    "a_column_without_map_opens_the_set": ([ValueSpec(value="review"), ValueSpec(column="kind")], None),
    "a_map_without_default_opens_the_set": ([ValueSpec(column="kind", map={"a": "b"})], None),
}


@pytest.mark.parametrize("case", KNOWN_CASES, ids=list(KNOWN_CASES))
def test_known_event_types(case):
    values, known = KNOWN_CASES[case]
    assert known_event_types([spec(v) for v in values]) == known


@pytest.fixture(scope="module")
def sources(settings):
    return load_sources(settings)


def test_the_shipped_config_checks_and_takes_its_purchases_from_the_sources(settings, sources):
    checked = checked_journey_config(settings, sources)
    assert checked.purchases.event_types == ["order_placed", "store_visit"]   # ecommerce_orders, store_visits
    assert checked.model_copy(update={"purchases": load_journey_config(settings).purchases}) == \
        load_journey_config(settings)


CONFIG_ERRORS = {  # (journeys.yaml after its purchases line, the message after '<file>: ')
    "unknown_event_type": (
        "stages: {purchase: [ordr_placed, store_visit]}",
        "key 'stages.purchase' names event type 'ordr_placed', which no source produces; did you mean "
        "'order_placed'? known: {event_types}"),
    "unknown_channel": (
        "sessions: {digital_channels: [clickstrem, email]}",
        "key 'sessions.digital_channels' names channel 'clickstrem', which no source has; did you mean "
        "'clickstream'? known: {channels}"),
    "event_type_in_two_stages": (  # the default service stage lists review too
        "stages: {consideration: [product_view, review]}",
        "key 'stages.service' names event type 'review', which stage 'consideration' already lists; an event type "
        "belongs to one stage"),
}


@pytest.mark.parametrize("case", CONFIG_ERRORS, ids=list(CONFIG_ERRORS))
def test_a_config_mistake_is_one_line_naming_the_file_and_the_key(settings, sources, tmp_path, case):
    yaml, message = CONFIG_ERRORS[case]
    (tmp_path / "journeys.yaml").write_text(f"purchases: {{event_types: [order_placed]}}\n{yaml}\n")
    known = {"event_types": ", ".join(sorted(known_event_types(sources))),
             "channels": ", ".join(sorted(known_channels(sources)))}
    with pytest.raises(ConfigError) as error:
        checked_journey_config(settings.model_copy(update={"conf_dir": str(tmp_path)}), sources)
    assert str(error.value) == f"{tmp_path / 'journeys.yaml'}: {message.format(**known)}"
