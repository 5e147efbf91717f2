"""KPI marts on a small set of touchpoints, every value worked out by hand (dates are UTC; T0 = 2025-03-01 09:00)."""

from __future__ import annotations

from datetime import date

import pytest
from frame_asserts import assert_frame_equal
from touchpoints import DAY, touch, touchpoints

from cdp.config.journeys import checked_journey_config
from cdp.profile.kpis import (
    kpi_cohort_retention,
    kpi_complaints,
    kpi_daily_channel,
    kpi_marts,
    kpi_satisfaction,
)
from cdp.quality import load_contract
from cdp.quality.gx_runner import schema_result

MAR1, MAR2, MAR3 = date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)
APR1, APR5, APR6, MAY1 = date(2025, 4, 1), date(2025, 4, 5), date(2025, 4, 6), date(2025, 5, 1)
# Purchases (conf/journeys.yaml): order_placed and store_visit with an amount above 0.
ROWS = [
    touch("a", "page_view", 0),                                   # Mar 1
    touch("a", "purchase", 5, amount=50.0),                       # web funnel step, not a second purchase
    touch("a", "order_placed", 10, amount=50.0),
    touch("a", "order_placed", 60, amount=30.0),
    touch("a", "email_open", 120),
    touch("b", "page_view", 30),
    touch("c", "call_inbound", 200, reason="complaint"),
    touch("b", "store_visit", DAY, amount=40.0),                  # Mar 2: b's first purchase
    touch("b", "survey_nps", DAY + 10, nps=10),
    touch("b", "survey_csat", DAY + 20, csat=4),
    touch("c", "call_inbound", DAY + 30, reason="billing"),
    touch("a", "call_inbound", 2 * DAY, reason="complaint"),      # Mar 3
    touch("c", "call_inbound", 2 * DAY + 100, reason="complaint"),
    touch("a", "order_placed", 31 * DAY, amount=20.0),            # Apr 1
    touch("c", "store_visit", 31 * DAY + 5, amount=0.0),          # no amount: not a purchase
    touch("c", "order_placed", 35 * DAY, amount=10.0),            # Apr 5: c's first purchase
    touch("c", "survey_nps", 35 * DAY + 5, nps=6),
    touch("c", "survey_csat", 35 * DAY + 6, csat=2),
    touch("a", "survey_nps", 36 * DAY, nps=8),                    # Apr 6
    touch("a", "survey_csat", 36 * DAY + 1, csat=5),
    touch("c", "page_view", 61 * DAY),                            # May 1: the data's last month
    touch("b", "call_inbound", 61 * DAY + 1, reason="cancellation"),
]


@pytest.fixture(scope="module")
def tp(spark):
    return touchpoints(spark, ROWS)


@pytest.fixture(scope="module")
def journeys(settings):
    from cdp.config.sources import load_sources

    return checked_journey_config(settings, load_sources(settings))


def test_daily_channel(tp, journeys):
    # conversion: of the channel's customers that day, those who purchased that day on any channel
    assert_frame_equal(kpi_daily_channel(tp, journeys), [
        (MAR1, "clickstream", 3, 2, 0, 0.0, 1, 0.5),   # a (bought on ecommerce that day), b (did not)
        (MAR1, "ecommerce", 2, 1, 2, 80.0, 1, 1.0),
        (MAR1, "email", 1, 1, 0, 0.0, 1, 1.0),
        (MAR1, "callcenter", 1, 1, 0, 0.0, 0, 0.0),
        (MAR2, "store", 1, 1, 1, 40.0, 1, 1.0),
        (MAR2, "survey", 2, 1, 0, 0.0, 1, 1.0),
        (MAR2, "callcenter", 1, 1, 0, 0.0, 0, 0.0),
        (MAR3, "callcenter", 2, 2, 0, 0.0, 0, 0.0),
        (APR1, "ecommerce", 1, 1, 1, 20.0, 1, 1.0),
        (APR1, "store", 1, 1, 0, 0.0, 0, 0.0),
        (APR5, "ecommerce", 1, 1, 1, 10.0, 1, 1.0),
        (APR5, "survey", 2, 1, 0, 0.0, 1, 1.0),
        (APR6, "survey", 2, 1, 0, 0.0, 0, 0.0),
        (MAY1, "clickstream", 1, 1, 0, 0.0, 0, 0.0),
        (MAY1, "callcenter", 1, 1, 0, 0.0, 0, 0.0),
    ], "date date, channel string, interactions long, customers long, orders long, revenue double, "
       "converted_customers long, conversion double")


def test_cohort_retention(tp, journeys):
    # March cohort: a, b (first purchases Mar 1, Mar 2); a buys again in April. April cohort: c. Data ends in May.
    assert_frame_equal(kpi_cohort_retention(tp, journeys), [
        (MAR1, 0, 2, 2, 1.0), (MAR1, 1, 2, 1, 0.5), (MAR1, 2, 2, 0, 0.0),
        (APR1, 0, 1, 1, 1.0), (APR1, 1, 1, 0, 0.0),
    ], "cohort_month date, months_since_first int, customers long, active_customers long, retention_rate double")


def test_satisfaction(tp):
    # March: CSAT 4; NPS 10 -> 100. April: CSAT 2, 5 -> 3.5; NPS 6 (detractor), 8 (passive) -> (0 - 1) / 2 = -50.
    assert_frame_equal(kpi_satisfaction(tp), [
        (MAR1, 1, 4.0, 1, 1, 0, 0, 100.0),
        (APR1, 2, 3.5, 2, 0, 1, 1, -50.0),
    ], "month date, csat_responses long, csat_avg double, nps_responses long, promoters long, passives long, "
       "detractors long, nps double")


def test_complaints(tp):
    # March complaints: c (Mar 1, Mar 3) and a (Mar 3): three contacts, two customers.
    assert_frame_equal(kpi_complaints(tp), [
        (MAR1, "complaint", True, 3, 2),
        (MAR1, "billing", False, 1, 1),
        (MAY1, "cancellation", True, 1, 1),
    ], "month date, reason string, is_complaint boolean, contacts long, customers long")


def test_marts_match_their_contracts(tp, journeys, settings):
    problems = {table.qualified: schema_result(df, load_contract(settings, table)).details
                for table, df in kpi_marts(tp, journeys).items()}
    assert problems == {t: {"missing": [], "undeclared": [], "type_differs": []} for t in problems}
