"""Attribution on hand-built touchpoints: each model's credits worked out by hand, the window (lookback, previous
purchase), purchases without touchpoints, credits summing to 1, the Markov removal effects of a three-path
example, the range join's plan, the config's one-line errors and the contract."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import pytest
from frame_asserts import assert_frame_equal
from pyspark.sql import functions as F
from touchpoints import DAY, T0, touch, touchpoints

from cdp.config.attribution import MODELS, AttributionConfig, load_attribution_config
from cdp.config.journeys import JourneyConfig, checked_journey_config
from cdp.errors import ConfigError
from cdp.journey import markov
from cdp.journey.attribution import attribute
from cdp.journey.markov import CONVERSION, NULL, START, MarkovChain, solve_chain, with_markov_credit
from cdp.quality import load_contract
from cdp.quality.gx_runner import schema_result
from cdp.tables import ATTRIBUTION, CUSTOMERS

JOURNEY = JourneyConfig.model_validate({"purchases": {"event_types": ["order_placed", "store_visit"]}})
EXCLUDED = ["purchase", "email_sent", "email_bounce"]
CONFIG = AttributionConfig(excluded_event_types=EXCLUDED)          # lookback 30 days, half-life 7 days
RULES = [m for m in MODELS if m != "markov"]
SCHEMA = ("purchase_id string, customer_id string, purchase_ts timestamp, purchase_amount double, currency string, "
          "model string, interaction_id string, channel string, event_type string, touch_ts timestamp, "
          "position int, credit double, revenue double")


def at(days: float):
    return T0 + timedelta(days=days)


def order(customer: str, days: float, amount: float, **values) -> dict:
    return touch(customer, "order_placed", days * DAY, id=f"{customer}-order-{days:g}", amount=amount,
                 currency="EUR", **values)


def as_frame(spark, rows, digits: int = 9):
    """Rows of gold.attribution as a frame, credit and revenue rounded (hand-worked fractions compare exactly)."""
    return spark.createDataFrame([(*r[:-2], round(r[-2], digits), round(r[-1], digits)) for r in rows], SCHEMA)


def where(rows, **values) -> list:
    """The collected rows whose columns have these values (checked in Python: no Spark job per test)."""
    return [r for r in rows if all(r[k] == v for k, v in values.items())]


# ann buys for 100 on day 40. Her path: the call (age 14 days), the email click (age 7), the page view (age 2).
# Not on it: the store visit (age 35 > lookback 30), the email sent (excluded), the web `purchase` event of the
# same order a minute before it (excluded).
ANN = [touch("ann", "store_visit", 5 * DAY, id="ann-store"), touch("ann", "call_inbound", 26 * DAY, id="ann-call"),
       touch("ann", "email_click", 33 * DAY, id="ann-click"), touch("ann", "page_view", 38 * DAY, id="ann-view"),
       touch("ann", "email_sent", 39 * DAY, id="ann-sent"), touch("ann", "purchase", 40 * DAY - 1, id="ann-web"),
       order("ann", 40, 100.0)]
# bob buys for 50 on day 10 with nothing before it: a 'direct' purchase.
BOB = [order("bob", 10, 50.0)]
# cat buys in the store on day 3 (after an email open on day 1), views a page on day 4 and orders on day 6: the
# second purchase's path starts after the first purchase, so the email open is credited to the first only.
CAT = [touch("cat", "email_open", 1 * DAY, id="cat-open"),
       touch("cat", "store_visit", 3 * DAY, id="cat-store", amount=20.0, currency="EUR"),
       touch("cat", "page_view", 4 * DAY, id="cat-view"), order("cat", 6, 80.0)]
# dan orders on day 30: a social post exactly 30 days before counts (the window is inclusive), a login one
# minute earlier does not.
DAN = [touch("dan", "login", -1, id="dan-login"), touch("dan", "social_post", 0, id="dan-post"), order("dan", 30, 10.0)]

ANN_PATH = [("ann-call", "callcenter", "call_inbound", at(26), 1), ("ann-click", "email", "email_click", at(33), 2),
            ("ann-view", "clickstream", "page_view", at(38), 3)]
# time decay: weights 2^(-14/7) = 0.25, 2^(-7/7) = 0.5, 2^(-2/7) = 0.820335; sum 1.570335;
# credits 0.25/1.570335 = 0.159202, 0.5/1.570335 = 0.318403, 0.820335/1.570335 = 0.522395.
_DECAY = [0.25, 0.5, 2 ** (-2 / 7)]
ANN_CREDITS = {
    "first_touch": [1.0, 0.0, 0.0],
    "last_touch": [0.0, 0.0, 1.0],
    "linear": [1 / 3, 1 / 3, 1 / 3],
    "time_decay": [w / sum(_DECAY) for w in _DECAY],
}


@pytest.fixture(scope="module")
def hand_built(spark):
    return touchpoints(spark, ANN + BOB + CAT + DAN)


@pytest.fixture(scope="module")
def credits(hand_built):
    """The rule-based attribution of the hand-built touchpoints (markov: three_paths): (frame, its rows)."""
    frame = attribute(hand_built, JOURNEY, CONFIG.model_copy(update={"models": RULES})).credits
    return frame, frame.collect()


@pytest.mark.parametrize("model", list(ANN_CREDITS), ids=list(ANN_CREDITS))
def test_each_model_credits_a_three_touch_purchase(spark, credits, model):
    actual = as_frame(spark, where(credits[1], purchase_id="ann-order-40", model=model))
    expected = [("ann-order-40", "ann", at(40), 100.0, "EUR", model, *touch_, credit, 100.0 * credit)
                for touch_, credit in zip(ANN_PATH, ANN_CREDITS[model], strict=True)]
    assert_frame_equal(actual, as_frame(spark, expected))


def test_a_touchpoint_older_than_the_lookback_window_earns_nothing(credits):
    assert where(credits[1], interaction_id="ann-store") == []


def test_the_lookback_window_includes_its_last_day(credits):
    assert [r.interaction_id for r in where(credits[1], purchase_id="dan-order-30", model="linear")] == ["dan-post"]


def test_a_path_starts_after_the_previous_purchase(credits):
    assert [r.interaction_id for r in where(credits[1], purchase_id="cat-order-6", model="linear")] == ["cat-view"]


def test_without_stopping_at_the_previous_purchase_a_touch_credits_both(hand_built):
    config = AttributionConfig(excluded_event_types=EXCLUDED, stop_at_previous_purchase=False, models=["linear"])
    second = attribute(hand_built, JOURNEY, config).credits.where(F.col("purchase_id") == "cat-order-6")
    assert sorted(r.interaction_id for r in second.collect()) == ["cat-open", "cat-view"]


def test_a_purchase_without_touchpoints_is_direct_under_every_rule(spark, credits):
    expected = [("bob-order-10", "bob", at(10), 50.0, "EUR", m, None, "direct", None, None, None, 1.0, 50.0)
                for m in RULES]
    assert_frame_equal(as_frame(spark, where(credits[1], purchase_id="bob-order-10")), as_frame(spark, expected))


def test_the_output_has_the_contracts_columns(credits, settings):
    assert schema_result(credits[0], load_contract(settings, ATTRIBUTION)).details == {
        "missing": [], "undeclared": [], "type_differs": []}


def test_the_output_columns_are_in_the_contracts_order(credits, settings):
    assert credits[0].columns == load_contract(settings, ATTRIBUTION).column_names


# ---------------------------------------------------------------- Markov: three paths worked by hand
# x1: c1 > c2 > conversion; x2: c2 > c3 > null (no purchase); x3: c1 > c3 > conversion.
# Transition probabilities: start: c1 2/3, c2 1/3; c1: c2 1/2, c3 1/2; c2: conv 1/2, c3 1/2; c3: conv 1/2, null 1/2.
# P(conv from c3) = 1/2, from c2 = 1/2 + 1/2 * 1/2 = 3/4, from c1 = 1/2 * 3/4 + 1/2 * 1/2 = 5/8;
# P(conv) = 2/3 * 5/8 + 1/3 * 3/4 = 2/3.
# Without c1: 1/3 * 3/4 = 1/4, RE = 1 - (1/4)/(2/3) = 5/8.
# Without c2: c1 -> 1/2 * 1/2 = 1/4; 2/3 * 1/4 = 1/6, RE = 1 - (1/6)/(2/3) = 3/4.
# Without c3: c2 -> 1/2, c1 -> 1/2 * 1/2 = 1/4; 2/3 * 1/4 + 1/3 * 1/2 = 1/3, RE = 1 - (1/3)/(2/3) = 1/2.
# Credits: x1's order: c1 5/8 / (5/8 + 3/4) = 5/11, c2 6/11; x3's order: c1 5/8 / (5/8 + 1/2) = 5/9, c3 4/9.
THREE_PATH_COUNTS = {(START, "c1"): 2, (START, "c2"): 1, ("c1", "c2"): 1, ("c1", "c3"): 1, ("c2", CONVERSION): 1,
                     ("c2", "c3"): 1, ("c3", NULL): 1, ("c3", CONVERSION): 1}
REMOVAL_EFFECTS = {"c1": 5 / 8, "c2": 3 / 4, "c3": 1 / 2}


def _visit(customer: str, channel: str, days: int) -> dict:
    return touch(customer, "page_view", days * DAY, id=f"{customer}-{channel}", channel=channel)


@pytest.fixture(scope="module")
def three_paths(spark):
    rows = [_visit("x1", "c1", 1), _visit("x1", "c2", 2), order("x1", 3, 10.0),
            _visit("x2", "c2", 1), _visit("x2", "c3", 2),
            _visit("x3", "c1", 1), _visit("x3", "c3", 2), order("x3", 3, 90.0),
            order("x4", 3, 5.0)]    # a direct purchase: no path, so the chain is the three paths' alone
    result = attribute(touchpoints(spark, rows), JOURNEY, CONFIG.model_copy(update={"models": ["markov"]}))
    return result.markov, result.credits.collect()


def test_removal_effects_solved_from_counts():
    assert solve_chain(THREE_PATH_COUNTS).removal_effects == pytest.approx(REMOVAL_EFFECTS, abs=1e-9)


def test_conversion_probability_solved_from_counts():
    assert solve_chain(THREE_PATH_COUNTS).p_conversion == pytest.approx(2 / 3, abs=1e-9)


def test_removal_effects_learnt_from_touchpoints(three_paths):
    chain, _ = three_paths
    assert chain.removal_effects == pytest.approx(REMOVAL_EFFECTS, abs=1e-9)


def test_the_chain_counts_its_paths(three_paths):
    chain, _ = three_paths
    assert chain.paths == 3


def test_the_chain_counts_its_conversions(three_paths):
    chain, _ = three_paths
    assert chain.conversions == 2


def test_markov_credits_follow_the_removal_effects(spark, three_paths):
    _, rows = three_paths
    expected = [("x1-order-3", "x1", at(3), 10.0, "EUR", "markov", "x1-c1", "c1", "page_view", at(1), 1, 5 / 11, 50 / 11),
                ("x1-order-3", "x1", at(3), 10.0, "EUR", "markov", "x1-c2", "c2", "page_view", at(2), 2, 6 / 11, 60 / 11),
                ("x3-order-3", "x3", at(3), 90.0, "EUR", "markov", "x3-c1", "c1", "page_view", at(1), 1, 5 / 9, 50.0),
                ("x3-order-3", "x3", at(3), 90.0, "EUR", "markov", "x3-c3", "c3", "page_view", at(2), 2, 4 / 9, 40.0)]
    assert_frame_equal(as_frame(spark, [r for r in rows if r.purchase_id != "x4-order-3"]), as_frame(spark, expected))


def test_a_purchase_without_touchpoints_is_direct_under_markov(spark, three_paths):
    _, rows = three_paths
    expected = [("x4-order-3", "x4", at(3), 5.0, "EUR", "markov", None, "direct", None, None, None, 1.0, 5.0)]
    assert_frame_equal(as_frame(spark, where(rows, purchase_id="x4-order-3")), as_frame(spark, expected))


def test_a_self_loop_changes_no_removal_effect():
    # c1 > c1 > c2 > conversion and c2 > null: the loop on c1 only delays it (c1 moves on to c2 either way).
    looped = {(START, "c1"): 1, ("c1", "c1"): 1, ("c1", "c2"): 1, ("c2", CONVERSION): 1, (START, "c2"): 1,
              ("c2", NULL): 1}
    plain = {pair: n for pair, n in looped.items() if pair != ("c1", "c1")}
    assert solve_chain(looped).removal_effects == pytest.approx(solve_chain(plain).removal_effects, abs=1e-9)


def test_markov_credit_splits_by_state_then_by_touch(spark):
    # p: c1, c1, c2 with RE 1/2 and 1: c1 earns (1/2) / (1/2 + 1) = 1/3, 1/6 per touch; c2 earns 2/3.
    # q: c3, c3, c4, whose effects are 0 (c4 is not even in the chain): 1/2 per state, 1/4 per c3 touch.
    chain = MarkovChain(0.5, {"c1": 0.5, "c2": 1.0, "c3": 0.0})
    rows = [("p", "p1", "c1"), ("p", "p2", "c1"), ("p", "p3", "c2"), ("q", "q1", "c3"), ("q", "q2", "c3"),
            ("q", "q3", "c4")]
    paths = spark.createDataFrame([(*r, "page_view") for r in rows],
                                  "purchase_id string, interaction_id string, channel string, event_type string")
    credited = paths.transform(with_markov_credit(chain, CONFIG)).select("interaction_id", F.round("markov", 9).alias("markov"))
    assert_frame_equal(credited, [("p1", round(1 / 6, 9)), ("p2", round(1 / 6, 9)), ("p3", round(2 / 3, 9)),
                                  ("q1", 0.25), ("q2", 0.25), ("q3", 0.5)], "interaction_id string, markov double")


def test_a_markov_state_can_be_channel_and_event_type(spark):
    config = CONFIG.model_copy(update={"markov_state": "channel:event_type"})
    frame = spark.createDataFrame([("email", "email_click")], "channel string, event_type string")
    assert frame.select(markov.markov_state(config)).first()[0] == "email:email_click"


def test_without_conversions_every_removal_effect_is_zero():
    assert solve_chain({(START, "c1"): 2, ("c1", NULL): 2}).removal_effects == {"c1": 0.0}


# ---------------------------------------------------------------- a bigger, seeded frame: properties
EVENTS = ["page_view", "email_open", "email_click", "email_sent", "call_inbound", "social_post", "store_visit",
          "order_placed", "purchase", "login"]


@pytest.fixture(scope="module")
def seeded(spark):
    rng = random.Random(11)
    rows = []
    for c in range(25):
        for k in range(rng.randint(0, 16)):
            event = rng.choice(EVENTS)
            amount = rng.choice([None, 0.0, round(rng.uniform(5, 200), 2)]) if event in ("order_placed", "store_visit") else None
            rows.append(touch(f"s{c:02d}", event, rng.uniform(0, 45) * DAY, id=f"s{c:02d}-{k}", amount=amount,
                              currency="EUR"))
    credits = attribute(touchpoints(spark, rows), JOURNEY, CONFIG).credits
    totals = credits.groupBy("purchase_id", "model").agg(F.sum("credit").alias("total"), F.max("position").alias("touches"))
    return credits, totals.collect()


def test_credits_sum_to_one_per_purchase_and_model(seeded):
    _, totals = seeded
    assert [(r.purchase_id, r.model, r.total) for r in totals if abs(r.total - 1.0) > 1e-9] == []


def test_every_purchase_has_every_model(seeded):
    _, totals = seeded
    models = Counter(r.purchase_id for r in totals)
    assert {p: n for p, n in models.items() if n != len(MODELS)} == {}


def test_the_seeded_frame_has_purchases_with_paths(seeded):
    """Guards the two properties above against a frame that tests nothing."""
    _, totals = seeded
    assert len({r.purchase_id for r in totals if (r.touches or 0) > 1}) >= 5


def test_the_range_join_is_no_cross_join(seeded):
    plan, _ = seeded
    text = plan._jdf.queryExecution().executedPlan().toString()
    assert [op for op in ("CartesianProduct", "BroadcastNestedLoopJoin") if op in text] == []


# ---------------------------------------------------------------- configuration
def test_the_projects_config_loads(settings):
    assert load_attribution_config(settings).lookback_days == 30


def test_the_projects_config_excludes_the_web_purchase_event(settings):
    assert "purchase" in load_attribution_config(settings).excluded_event_types


def test_a_misspelt_model_is_one_line_naming_file_and_key(tmp_path):
    path = tmp_path / "attribution.yaml"
    path.write_text("models: [linear, markow]\n")
    with pytest.raises(ConfigError, match=rf"^{path}: key 'models\.1' has a bad value 'markow': .*did you mean 'markov'\?$"):
        load_attribution_config(path=path)


def test_a_model_listed_twice_is_refused(tmp_path):
    path = tmp_path / "attribution.yaml"
    path.write_text("models: [linear, linear]\n")
    with pytest.raises(ConfigError, match=rf"^{path}: key 'models' lists 'linear' twice; keep each model once$"):
        load_attribution_config(path=path)


def test_an_unknown_key_names_the_keys_allowed(tmp_path):
    path = tmp_path / "attribution.yaml"
    path.write_text("lookback_day: 30\n")
    with pytest.raises(ConfigError, match=rf"^{path}: unknown key 'lookback_day'; did you mean 'lookback_days'\?"):
        load_attribution_config(path=path)


def test_a_non_positive_half_life_is_refused(tmp_path):
    path = tmp_path / "attribution.yaml"
    path.write_text("time_decay_half_life_days: 0\n")
    with pytest.raises(ConfigError, match=rf"^{path}: key 'time_decay_half_life_days' has a bad value 0"):
        load_attribution_config(path=path)


def test_the_journey_config_the_tests_use_is_the_projects(settings):
    from cdp.config.sources import load_sources

    assert checked_journey_config(settings, load_sources(settings)) == JOURNEY


# ---------------------------------------------------------------- the contract's suite (Great Expectations)
@pytest.mark.slow
def test_the_output_passes_its_contract(seeded, settings, spark):
    from cdp.quality.gx_runner import validate

    customers = spark.createDataFrame([(f"s{c:02d}",) for c in range(25)], "customer_id string")
    report = validate(seeded[0], load_contract(settings, ATTRIBUTION), "test", {CUSTOMERS.qualified: customers})
    assert [r.name for r in report.results if not r.success] == []
