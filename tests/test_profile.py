"""gold.customer_profile on hand-built touchpoints and a tiny gold.customers: every value below is worked out by
hand in the comments. The profile is computed once per module; each test compares one group of columns."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest
from frame_asserts import assert_frame_equal
from pyspark.sql import functions as F
from touchpoints import DAY, T0, touch, touchpoints

from cdp.config.journeys import checked_journey_config
from cdp.config.profile import PROFILE_COLUMNS, load_profile_config
from cdp.config.sources import load_sources
from cdp.errors import ConfigError
from cdp.journey.incomplete import incomplete_purchases
from cdp.journey.timeline import customer_journey
from cdp.profile.profile import customer_profile, resolve_as_of
from cdp.profile.rfm import rfm_segment
from cdp.quality import failure_condition, load_contract
from cdp.quality.gx_runner import schema_result
from cdp.tables import CUSTOMER_PROFILE

HOUR = 60
AS_OF = T0 + timedelta(days=60)          # 2025-04-30 09:00, the last event but one (see late_order)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def crm(customer_id: str, minutes: float, **attributes) -> dict:
    return touch(customer_id, "profile_updated", minutes, attributes=attributes)


ROWS = [
    # A: three orders (days 0, 10, 30: 100 + 50 + 150), carts, a failed payment, a cancellation, consent flips.
    touch("A", "order_placed", 0, amount=100.0),
    touch("A", "add_to_cart", 10 * DAY - 23 * HOUR),       # paid 23 h later: completed
    touch("A", "order_placed", 10 * DAY, amount=50.0),
    touch("A", "add_to_cart", 28 * DAY),                   # next purchase 48 h later: abandoned (1)
    touch("A", "payment_failed", 29 * DAY),
    touch("A", "order_placed", 30 * DAY, amount=150.0),
    touch("A", "order_cancelled", 31 * DAY),
    touch("A", "add_to_cart", 50 * DAY),                   # the same cart as the checkout 10 min later ...
    touch("A", "checkout_start", 50 * DAY + 10),           # ... never paid: abandoned (2)
    crm("A", 0, marketing_consent="true", signup_date="2024-12-01"),
    touch("A", "email_unsubscribe", 5 * DAY),
    crm("A", 40 * DAY, marketing_consent="yes"),           # opts in again after the unsubscribe: consent
    touch("A", "suggestion", 45 * DAY, text="Please open on Sundays, the staff are lovely"),   # lovely 0.7
    touch("A", "order_placed", 61 * DAY, amount=1000.0, id="late_order"),  # after as_of: ignored
    # B: one store purchase on day 58 (20), a post, a promoter NPS, consent '0'.
    touch("B", "store_visit", 58 * DAY, amount=20.0),
    touch("B", "social_post", 57 * DAY, text="Terrible queue, awful service"),  # (-0.9 - 0.2 - 0.9) / 3
    touch("B", "survey_nps", 59 * DAY, nps=10),
    crm("B", DAY, marketing_consent="0"),
    # C: two orders (days 5 and 45: 500 each), five inbound calls and one outbound.
    touch("C", "order_placed", 5 * DAY, amount=500.0),
    touch("C", "order_placed", 45 * DAY, amount=500.0),
    touch("C", "call_inbound", 6 * DAY, reason="complaint"),
    touch("C", "call_inbound", 7 * DAY, reason="complaint"),
    touch("C", "call_inbound", 8 * DAY, reason="billing"),
    touch("C", "call_inbound", 9 * DAY, reason="delivery"),
    touch("C", "call_inbound", 10 * DAY, reason="cancellation"),
    touch("C", "call_outbound", 11 * DAY, reason="telesales"),   # started by us: no contact, no interaction
    # D: four orders on days 1-4 (10 each) and four survey answers an hour after each.
    *[touch("D", "order_placed", d * DAY, amount=10.0) for d in (1, 2, 3, 4)],
    touch("D", "survey_csat", DAY + HOUR, csat=4),
    touch("D", "survey_nps", 2 * DAY + HOUR, nps=9),
    # 'no' flips llegó and bien (0.4); the comma ends the clause, so lento (-0.4) keeps its sign: -0.4
    touch("D", "survey_csat", 3 * DAY + HOUR, csat=2, text="El pedido no llegó bien, muy lento"),
    touch("D", "survey_nps", 4 * DAY + HOUR, nps=6),
    # E: one store purchase on day 2 (5), a visit with nothing bought, two reviews, a passive NPS.
    touch("E", "store_visit", 2 * DAY, amount=5.0),
    touch("E", "store_visit", 25 * DAY),                   # no amount: not a purchase
    touch("E", "review", 3 * DAY, stars=5, text="¡Excelente atención, muy recomendable!"),   # (0.9 + 0.7) / 2
    touch("E", "review", 20 * DAY, stars=2, text="Producto roto"),                          # -0.6
    touch("E", "survey_nps", 21 * DAY, nps=8),
    crm("E", 30 * DAY, marketing_consent="yes"),           # the same instant as an unsubscribe: no consent
    touch("E", "email_unsubscribe", 30 * DAY),
    # F: no purchase; four campaigns sent, two opened (one twice), one clicked; opt-in then unsubscribe.
    *[touch("F", "email_sent", d * DAY, campaign_id=f"K{i}") for i, d in enumerate((10, 20, 30, 60), 1)],
    touch("F", "email_open", 10 * DAY + HOUR, campaign_id="K1"),
    touch("F", "email_open", 20 * DAY + HOUR, campaign_id="K2"),
    touch("F", "email_open", 21 * DAY, campaign_id="K2"),
    touch("F", "email_click", 10 * DAY + 2 * HOUR, campaign_id="K1"),
    crm("F", 10 * DAY, marketing_consent="yes"),
    touch("F", "email_unsubscribe", 20 * DAY + 5 * HOUR),
    touch("F", "add_to_cart", 59 * DAY),                   # never paid: abandoned
    # Z is not in gold.customers: none of this reaches the profile
    touch("Z", "order_placed", 3 * DAY, amount=99.0),
]

CUSTOMERS = [  # the gold.customers columns the profile reads
    ("A", "Ana", "Alba", date(1990, 5, 1), "F", "Madrid", "28001", "ES", datetime(2025, 1, 15)),
    ("B", "Ben", "Bell", date(1990, 4, 30), "M", "Leeds", "LS1 4AP", "GB", datetime(2025, 2, 1)),
    ("C", "Cleo", "Cruz", None, "F", "Sevilla", "41001", "ES", datetime(2025, 3, 6, 9)),
    ("D", "Dan", "Diaz", date(2010, 1, 1), "M", "Madrid", "28002", "ES", datetime(2025, 3, 2)),
    ("E", "Eva", "Egan", date(1950, 1, 1), "F", "Dublin", "D02", "IE", datetime(2025, 2, 20)),
    ("F", "Fay", "Fox", date(2030, 1, 1), "X", "Bilbao", "48001", "ES", datetime(2025, 3, 11)),
    ("G", "Gus", "Gil", date(1985, 6, 15), "M", "Malaga", "29001", "ES", datetime(2025, 4, 1)),
]
CUSTOMERS_SCHEMA = ("customer_id string, first_name string, last_name string, birth_date date, gender string, "
                    "city string, postal_code string, country string, first_seen timestamp")


@pytest.fixture(scope="module")
def config(conf_dir):
    return load_profile_config(path=conf_dir / "profile.yaml")


@pytest.fixture(scope="module")
def events(spark):
    return touchpoints(spark, ROWS)


@pytest.fixture(scope="module")
def profile(spark, events, config, settings):
    """The profile, computed once and held as local rows (tests clear Spark's cache between them)."""
    journey_config = checked_journey_config(settings, load_sources(settings))
    incomplete = incomplete_purchases(customer_journey(events, journey_config), journey_config)
    frame = customer_profile(events, spark.createDataFrame(CUSTOMERS, CUSTOMERS_SCHEMA), incomplete,
                             journey_config, config, AS_OF)
    return spark.createDataFrame(frame.collect(), frame.schema)


def columns(profile, *names: str):
    """customer_id and the named columns, doubles (and the shares of channel_mix) rounded to 4 places."""
    types = {f.name: f.dataType.simpleString() for f in profile.schema.fields}

    def rounded(name: str):
        if types[name] == "double":
            return F.round(name, 4).alias(name)
        if types[name] == "map<string,double>":
            return F.transform_values(name, lambda _, v: F.round(v, 4)).alias(name)
        return name
    return profile.select("customer_id", *[rounded(n) for n in names])


# ------------------------------------------------------------------------------------------------ as_of
def test_as_of_defaults_to_the_latest_event(events, config):
    assert resolve_as_of(events, config, run_time=datetime(2030, 1, 1)) == at(61 * DAY)


def test_as_of_can_be_the_run_time(events, config):
    run = config.model_copy(update={"as_of": "run_time"})
    assert resolve_as_of(events, run, run_time=datetime(2030, 1, 1)) == datetime(2030, 1, 1)


# ------------------------------------------------------------------------------------------------ shape
def test_profile_matches_its_contract(profile, settings):
    checked = schema_result(profile, load_contract(settings, CUSTOMER_PROFILE))
    assert checked.details == {"missing": [], "undeclared": [], "type_differs": []}


def test_profile_passes_its_contract_row_checks(profile, settings):
    checks = [e for e in load_contract(settings, CUSTOMER_PROFILE).expectations
              if e.type in ("not_null", "between", "in_set")]
    failing = profile.select(*[F.sum(failure_condition(e).cast("int")).alias(e.name) for e in checks]).first()
    assert {name: n for name, n in failing.asDict().items() if n} == {}


def test_contract_lists_the_profile_columns_in_order(settings):
    assert tuple(load_contract(settings, CUSTOMER_PROFILE).column_names) == PROFILE_COLUMNS


def test_contract_segment_names_are_the_configured_ones(settings, config):
    expectations = {e.name: e for e in load_contract(settings, CUSTOMER_PROFILE).expectations}
    assert expectations["rfm_segment_configured"].values == config.rfm.segment_names


# ------------------------------------------------------------------------------------------------ demographics
def test_age_band_geography_and_tenure(profile):
    # as_of 2025-04-30. A: 34 the day before her 35th birthday; B: 35 on his birthday; D 15; E 75; F born in
    # 2030 (a typo): no age; G 39. first_seen: A's CRM signup 2024-12-01 is the earliest (150 days); C's first
    # touchpoint (day 5 order, 2025-03-06 09:00) equals her record's first_seen; others: the golden record's.
    assert_frame_equal(columns(profile, "age", "age_band", "city", "country", "first_seen", "tenure_days"), [
        ("A", 34, "25-34", "Madrid", "ES", datetime(2024, 12, 1), 150),
        ("B", 35, "35-44", "Leeds", "GB", datetime(2025, 2, 1), 88),
        ("C", None, None, "Sevilla", "ES", datetime(2025, 3, 6, 9), 55),
        ("D", 15, "<18", "Madrid", "ES", datetime(2025, 3, 2), 59),
        ("E", 75, "65+", "Dublin", "IE", datetime(2025, 2, 20), 69),
        ("F", None, None, "Bilbao", "ES", datetime(2025, 3, 11), 50),
        ("G", 39, "35-44", "Malaga", "ES", datetime(2025, 4, 1), 29),
    ], "customer_id string, age int, age_band string, city string, country string, first_seen timestamp, "
       "tenure_days int")


# ------------------------------------------------------------------------------------------------ RFM
def test_rfm_values_scores_and_segments(profile):
    # as_of 2025-04-30; last purchases: A day 30 (2025-03-31, 30 days; the day-61 order is after as_of),
    # B day 58 (2), C day 45 (15), D day 4 (56), E day 2 (58).
    # R (older first): E 1, D 2, A 3, C 4, B 5. F (fewer first, ties by spend): E(1, 5) 1, B(1, 20) 2, C(2) 3,
    # A(3) 4, D(4) 5. M: E 5 -> 1, B 20 -> 2, D 40 -> 3, A 300 -> 4, C 1000 -> 5. FM = (F + M) / 2.
    # A r3 fm4 Loyal; B r5 fm2 Potential loyalists; C r4 fm4 Loyal; D r2 fm4 At risk; E r1 fm1 Lost.
    assert_frame_equal(columns(profile, "recency_days", "frequency", "monetary", "average_order_value",
                               "r_score", "f_score", "m_score", "fm_score", "rfm_segment"), [
        ("A", 30, 3, 300.0, 100.0, 3, 4, 4, 4.0, "Loyal customers"),
        ("B", 2, 1, 20.0, 20.0, 5, 2, 2, 2.0, "Potential loyalists"),
        ("C", 15, 2, 1000.0, 500.0, 4, 3, 5, 4.0, "Loyal customers"),
        ("D", 56, 4, 40.0, 10.0, 2, 5, 3, 4.0, "At risk"),
        ("E", 58, 1, 5.0, 5.0, 1, 1, 1, 1.0, "Lost"),
        ("F", None, 0, 0.0, None, None, None, None, None, "No purchase"),
        ("G", None, 0, 0.0, None, None, None, None, None, "No purchase"),
    ], "customer_id string, recency_days int, frequency long, monetary double, average_order_value double, "
       "r_score int, f_score int, m_score int, fm_score double, rfm_segment string")


def test_inter_purchase_time(profile):
    # A: gaps 10 and 20 days: mean 15, sample sd sqrt((25 + 25) / 1) = 7.0711. C: one gap of 40 (no sd).
    # D: gaps 1, 1, 1: mean 1, sd 0. B and E bought once.
    assert_frame_equal(columns(profile, "inter_purchase_days_mean", "inter_purchase_days_stddev"), [
        ("A", 15.0, 7.0711), ("B", None, None), ("C", 40.0, None), ("D", 1.0, 0.0), ("E", None, None),
        ("F", None, None), ("G", None, None),
    ], "customer_id string, inter_purchase_days_mean double, inter_purchase_days_stddev double")


def test_segment_rules(spark, config):
    # one (R, FM) pair inside each configured rule, first match wins (R 5 FM 4.5 is also 'Loyal customers')
    cases = [(5, 5.0, "Champions"), (4, 4.5, "Loyal customers"), (1, 5.0, "Cannot lose them"), (2, 3.0, "At risk"),
             (5, 3.5, "Potential loyalists"), (5, 1.0, "New customers"), (4, 1.5, "Promising"),
             (3, 3.0, "Need attention"), (3, 2.5, "About to sleep"), (2, 2.0, "Hibernating"), (1, 1.0, "Lost"),
             (None, None, "No purchase")]
    scores = spark.createDataFrame([c[:2] for c in cases], "r_score int, fm_score double")
    assert_frame_equal(scores.select("r_score", "fm_score", rfm_segment(config.rfm).alias("rfm_segment")), cases,
                       "r_score int, fm_score double, rfm_segment string")


# ------------------------------------------------------------------------------------------------ channels
def test_channel_mix_preferred_and_last_interaction(profile):
    # Emails sent and outbound calls are ours, not the customer's: they count nowhere here.
    # A: ecommerce 5 (3 orders, failed payment, cancellation), clickstream 4, crm 2, email 1 (unsubscribe),
    #    suggestion_box 1 = 13; last: the checkout on day 50 + 10 min.
    # B: one each in four channels: the tie goes to the most recent, survey (day 59).
    # C: callcenter 5 (inbound), ecommerce 2. D: ecommerce 4 and survey 4: survey is the more recent (day 4 + 1 h).
    # E: store 2 (last day 25) ties review_site 2 (last day 20): store; crm and email share the last instant
    #    (day 30): the later channel name, email. F: email 5 (3 opens, click, unsubscribe), crm 1, clickstream 1.
    got = columns(profile, "interactions", "channels_used", "preferred_channel", "last_interaction_ts",
                  "last_interaction_channel", "channel_mix")
    assert_frame_equal(got, [
        ("A", 13, 5, "ecommerce", at(50 * DAY + 10), "clickstream",
         {"clickstream": 0.3077, "crm": 0.1538, "ecommerce": 0.3846, "email": 0.0769, "suggestion_box": 0.0769}),
        ("B", 4, 4, "survey", at(59 * DAY), "survey", {"crm": 0.25, "social": 0.25, "store": 0.25, "survey": 0.25}),
        ("C", 7, 2, "callcenter", at(45 * DAY), "ecommerce", {"callcenter": 0.7143, "ecommerce": 0.2857}),
        ("D", 8, 2, "survey", at(4 * DAY + HOUR), "survey", {"ecommerce": 0.5, "survey": 0.5}),
        ("E", 7, 5, "store", at(30 * DAY), "email",
         {"crm": 0.1429, "email": 0.1429, "review_site": 0.2857, "store": 0.2857, "survey": 0.1429}),
        ("F", 7, 3, "email", at(59 * DAY), "clickstream", {"clickstream": 0.1429, "crm": 0.1429, "email": 0.7143}),
        ("G", 0, 0, None, None, None, None),
    ], "customer_id string, interactions long, channels_used long, preferred_channel string, "
       "last_interaction_ts timestamp, last_interaction_channel string, channel_mix map<string,double>")


# ------------------------------------------------------------------------------------------------ not completed
def test_purchases_not_completed(profile):
    # A: the day-28 cart (next purchase 48 h later) and the day-50 cart + checkout (one cart, never paid);
    # the cart paid 23 h later is completed. F: a cart never paid.
    assert_frame_equal(columns(profile, "abandoned_carts", "failed_payments", "cancelled_orders"), [
        ("A", 2, 1, 1), ("B", 0, 0, 0), ("C", 0, 0, 0), ("D", 0, 0, 0), ("E", 0, 0, 0), ("F", 1, 0, 0),
        ("G", 0, 0, 0),
    ], "customer_id string, abandoned_carts long, failed_payments long, cancelled_orders long")


# ------------------------------------------------------------------------------------------------ engagement
def test_email_engagement(profile):
    # F: four emails, K1 and K2 opened (K2 twice: one open): 2 / 4; K1 clicked: 1 / 4.
    # A and E unsubscribed without receiving an email here: no rates, but unsubscribed.
    assert_frame_equal(columns(profile, "emails_received", "email_open_rate", "email_click_rate",
                               "email_unsubscribed"), [
        ("A", 0, None, None, True), ("B", 0, None, None, False), ("C", 0, None, None, False),
        ("D", 0, None, None, False), ("E", 0, None, None, True), ("F", 4, 0.5, 0.25, True),
        ("G", 0, None, None, False),
    ], "customer_id string, emails_received long, email_open_rate double, email_click_rate double, "
       "email_unsubscribed boolean")


def test_call_center_contacts_complaints_and_top_reasons(profile):
    # C: 5 inbound calls (the outbound one is ours); complaint x2 + cancellation = 3 complaints;
    # top 3: complaint (2), then the single ones from the most recent: cancellation (day 10), delivery (day 9).
    assert_frame_equal(columns(profile, "callcenter_contacts", "complaints", "top_contact_reasons"), [
        ("A", 0, 0, []), ("B", 0, 0, []), ("C", 5, 3, ["complaint", "cancellation", "delivery"]),
        ("D", 0, 0, []), ("E", 0, 0, []), ("F", 0, 0, []), ("G", 0, 0, []),
    ], "customer_id string, callcenter_contacts long, complaints long, top_contact_reasons array<string>")


def test_csat_and_nps(profile):
    # D: CSAT 4 then 2 (avg 3); NPS 9 then 6 (avg 7.5), latest 6: detractor. B: 10 promoter. E: 8 passive.
    assert_frame_equal(columns(profile, "csat_latest", "csat_avg", "nps_latest", "nps_avg", "nps_category"), [
        ("A", None, None, None, None, None), ("B", None, None, 10, 10.0, "promoter"),
        ("C", None, None, None, None, None), ("D", 2, 3.0, 6, 7.5, "detractor"),
        ("E", None, None, 8, 8.0, "passive"), ("F", None, None, None, None, None),
        ("G", None, None, None, None, None),
    ], "customer_id string, csat_latest int, csat_avg double, nps_latest int, nps_avg double, nps_category string")


def test_reviews_posts_suggestions_and_sentiment(profile):
    # Sentiment (word scores from cdp/profile/lexicons): A lovely 0.7; B (terrible -0.9, queue -0.2, awful -0.9)
    # / 3 = -0.6667; D -0.4 (see its survey comment); E mean of its reviews (0.8 and -0.6) = 0.1.
    assert_frame_equal(columns(profile, "review_stars_avg", "reviews", "social_mentions", "suggestions",
                               "sentiment_score"), [
        ("A", None, 0, 0, 1, 0.7), ("B", None, 0, 1, 0, -0.6667), ("C", None, 0, 0, 0, None),
        ("D", None, 0, 0, 0, -0.4), ("E", 3.5, 2, 0, 0, 0.1), ("F", None, 0, 0, 0, None),
        ("G", None, 0, 0, 0, None),
    ], "customer_id string, review_stars_avg double, reviews long, social_mentions long, suggestions long, "
       "sentiment_score double")


def test_consent_latest_wins(profile):
    # A: opt-in (day 0), unsubscribe (day 5), opt-in (day 40): consent. B: '0'. F: opt-in (day 10), unsubscribe
    # (day 20 + 5 h): none. E: opt-in and unsubscribe at the same instant: the more restrictive, none.
    assert_frame_equal(columns(profile, "marketing_consent", "marketing_consent_at", "email_unsubscribed_at"), [
        ("A", True, at(40 * DAY), at(5 * DAY)), ("B", False, at(DAY), None), ("C", None, None, None),
        ("D", None, None, None), ("E", False, at(30 * DAY), at(30 * DAY)),
        ("F", False, at(20 * DAY + 5 * HOUR), at(20 * DAY + 5 * HOUR)), ("G", None, None, None),
    ], "customer_id string, marketing_consent boolean, marketing_consent_at timestamp, "
       "email_unsubscribed_at timestamp")


def test_as_of_is_on_every_row(profile):
    assert_frame_equal(profile.groupBy("as_of").count(), [(AS_OF, 7)], "as_of timestamp, count long")


# ------------------------------------------------------------------------------------------------ config
def test_shipped_config_tracks_profile_columns(config):
    assert set(config.history.tracked_columns) - set(PROFILE_COLUMNS) == set()


TWO_SEGMENTS = """  segments:
    - {name: Champions, r: [3, 5], fm: [1, 5]}
    - {name: Lost, r: [1, 2], fm: [1, 5]}
"""


@pytest.mark.parametrize("change, message", [
    (("name: Lost", "name: Champions"), r"key 'rfm.segments.1.name' segment name 'Champions' is used twice"),
    (("r: [1, 2]", "r: [0, 2]"), r"key 'rfm.segments.1.r' r range must be \[min, max\] with 1 <= min <= max <= 5"),
    (("r: [1, 2]", "r: [1, 1]"), r"key 'rfm.segments' no segment matches R score 2 with FM score 1"),
    (("as_of: latest_event", "as_of: latest"), r"key 'as_of' has a bad value 'latest'"),
    (("[rfm_segment]", "[rfm_segmnt]"),
     r"key 'history.tracked_columns' 'rfm_segmnt' is not a column of gold.customer_profile"),
    (("negators: [nunca]", "negators: [nunca, bad]"), r"key 'sentiment.negators': 'bad' is also a lexicon word"),
    (("lexicons: [en, es]", "lexicons: [en, fr]"),
     r"key 'sentiment.lexicons' lexicon 'fr' is not shipped \(shipped: en, es\)"),
], ids=["segment_name_twice", "r_out_of_range", "grid_not_covered", "bad_as_of", "unknown_tracked_column",
        "negator_in_lexicon", "unknown_lexicon"])
def test_bad_profile_config_is_one_line_naming_file_and_key(tmp_path, change, message):
    body = ("as_of: latest_event\nrfm:\n" + TWO_SEGMENTS
            + "sentiment: {lexicons: [en, es], negators: [nunca]}\nhistory: {tracked_columns: [rfm_segment]}\n")
    old, new = change
    path = tmp_path / "profile.yaml"
    path.write_text(body.replace(old, new, 1))
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: {message}") as err:
        load_profile_config(path=path)
    assert "\n" not in str(err.value)
