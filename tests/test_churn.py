"""Churn features (point in time, no leakage), the configuration's one-line errors, and retention actions (never
on a channel without consent), on hand-built touchpoints and real Spark."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from frame_asserts import assert_frame_equal
from touchpoints import DAY, T0, touch, touchpoints

from cdp.config.churn import FEATURES, load_churn_config
from cdp.config.journeys import checked_journey_config
from cdp.config.profile import load_profile_config
from cdp.errors import ConfigError, InsufficientData
from cdp.ml.actions import next_best_action
from cdp.ml.features import churn_features, snapshot_dates, snapshot_frame, training_features
from cdp.quality import load_contract
from cdp.quality.gx_runner import schema_result
from cdp.tables import CHURN_FEATURES

SNAPSHOT = date(2025, 4, 30)         # its end is 2025-05-01 00:00 UTC; T0 is 2025-03-01 09:00, day 61 2025-05-01 09:00
CUSTOMERS = "customer_id string, birth_date date, gender string, country string"


@pytest.fixture(scope="module")
def configs(settings):
    from cdp.config.sources import load_sources

    return (checked_journey_config(settings, load_sources(settings)), load_profile_config(settings),
            load_churn_config(settings))


def history() -> list[dict]:
    """A buys on days 0, 20 and 50, complains on day 55 and answers an NPS of 3; B browses and opens emails."""
    return [
        touch("A", "order_placed", 0, amount=100.0), touch("A", "order_placed", 20 * DAY, amount=40.0),
        touch("A", "order_placed", 50 * DAY, amount=60.0),
        touch("A", "call_inbound", 55 * DAY, reason="complaint"), touch("A", "survey_nps", 56 * DAY, nps=3),
        touch("B", "page_view", 10 * DAY), touch("B", "email_sent", 30 * DAY, campaign_id="C1"),
        touch("B", "email_open", 31 * DAY, campaign_id="C1"), touch("B", "store_visit", 59 * DAY, amount=25.0),
    ]


def features_at(spark, rows, configs, snapshots=(SNAPSHOT,)):
    journey, profile, churn = configs
    customers = spark.createDataFrame([("A", date(1980, 6, 1), "F", "ES"), ("B", None, "M", "GB")], CUSTOMERS)
    return churn_features(touchpoints(spark, rows), customers, snapshot_frame(spark, list(snapshots), churn), journey,
                          profile, churn)


@pytest.fixture(scope="module")
def base_rows(spark, configs):
    """The features of history() at SNAPSHOT, collected once for the module."""
    return features_at(spark, history(), configs).collect()


def test_features_count_only_the_past(base_rows):
    got = next(r for r in base_rows if r.customer_id == "A")
    # the snapshot ends 2025-05-01 00:00; A's last order 2025-04-20 09:00 = 10.6 days before; gaps 20 and 30 days
    assert got.purchases_total == 3 and got.spend_total == 200.0 and got.average_order_value == pytest.approx(200 / 3)
    assert got.days_since_last_purchase == pytest.approx(10.625)
    assert got.inter_purchase_days_mean == pytest.approx(25.0)
    assert got.purchase_overdue_ratio == pytest.approx(10.625 / 25)
    assert (got.complaints_total, got.complaints_90d, got.nps_latest) == (1.0, 1.0, 3.0)
    assert (got.age, got.gender, got.country) == (44.0, "F", "ES")
    assert got.tenure_days == pytest.approx(60.625)        # since the first touchpoint, 2025-03-01 09:00
    # activity is the three orders (the complaint and the survey are contact): every 25 days, quiet for 10.625
    assert (got.activity_gap_days_mean, got.activity_gap_overdue_ratio) == pytest.approx((25.0, 10.625 / 25))
    assert got.churned == 1          # nothing after the snapshot: no activity in the horizon


# Each change happens at or after the end of the snapshot day: none may move a feature of that snapshot.
FUTURE_CHANGES = {
    "a new purchase": lambda rows: rows + [touch("A", "order_placed", 61 * DAY, amount=999.0)],
    "a purchase exactly at the snapshot": lambda rows: rows + [touch("B", "order_placed", 61 * DAY - 9 * 60,
                                                                     amount=5.0)],
    "a complaint and a bad survey": lambda rows: rows + [touch("B", "call_inbound", 70 * DAY, reason="complaint"),
                                                         touch("B", "survey_csat", 71 * DAY, csat=1)],
    "an event months later": lambda rows: [*rows, touch("A", "order_placed", 300 * DAY, amount=1.0)],
}


@pytest.mark.parametrize("change", list(FUTURE_CHANGES), ids=list(FUTURE_CHANGES))
def test_no_leakage_from_after_the_snapshot(spark, configs, base_rows, change):
    after = features_at(spark, FUTURE_CHANGES[change](history()), configs)
    before = spark.createDataFrame(base_rows, after.schema)
    assert_frame_equal(after.drop("churned"), before.drop("churned"))


def test_the_label_looks_only_at_the_horizon(spark, configs):
    rows = history() + [touch("A", "page_view", 61 * DAY), touch("B", "page_view", 430 * DAY)]  # B: past a year
    got = {r.customer_id: r.churned for r in features_at(spark, rows, configs).collect()}
    assert got == {"A": 0, "B": 1}


def test_features_match_their_contract(spark, configs, settings):
    frame = features_at(spark, history(), configs, snapshots=(SNAPSHOT, SNAPSHOT + timedelta(days=30)))
    assert schema_result(frame, load_contract(settings, CHURN_FEATURES)).success
    assert frame.columns == ["customer_id", "snapshot_date", *FEATURES, "churned"]


def test_snapshots_need_enough_history(configs):
    churn = configs[2]
    latest = date(2025, 12, 31)
    dates = snapshot_dates(latest, churn, date(2024, 1, 1))
    assert dates[-1] == latest - timedelta(days=churn.definition.horizon_days)   # its label window ends with latest
    assert [b - a for a, b in zip(dates, dates[1:], strict=False)] == [timedelta(days=30)] * 5
    with pytest.raises(InsufficientData, match=r"^too little history .* spans 121 days .* need 605; lower snapshots"):
        snapshot_dates(latest, churn, latest - timedelta(days=120))


def test_a_short_history_gets_the_snapshots_that_fit(configs):
    churn = configs[2]
    s = churn.snapshots.model_copy(update={"count": 12, "min_count": 3, "every_days": 30, "min_history_days": 60})
    short = churn.model_copy(update={"snapshots": s, "definition": churn.definition.model_copy(
        update={"population": "all", "horizon_days": 90})})
    # 273 days (CDNOW's calibration): 60 before the first, 90 after the last, 4 gaps of 30 between 5 snapshots
    dates = snapshot_dates(date(1997, 9, 30), short, date(1997, 1, 1))
    assert dates == [date(1997, 3, 4), date(1997, 4, 3), date(1997, 5, 3), date(1997, 6, 2), date(1997, 7, 2)]
    with pytest.raises(InsufficientData, match=r"spans 200 days .* 3 snapshots .* need 210; lower "
                                               r"snapshots.min_count, snapshots.every_days, "
                                               r"snapshots.min_history_days or definition.horizon_days"):
        snapshot_dates(date(1997, 7, 19), short, date(1997, 1, 1))


def with_definition(churn, **changes):
    return churn.model_copy(update={"definition": churn.definition.model_copy(update=changes)})


def test_the_population_rule_decides_who_is_scored_and_trained_on(spark, configs):
    journey, profile, churn = configs
    # C bought once, 200 days before the snapshot; D only received an email (the company's doing, not activity)
    rows = history() + [touch("C", "order_placed", -140 * DAY, amount=30.0),
                        touch("D", "email_sent", 10 * DAY, campaign_id="C1")]

    def population(kind: str) -> set[str]:
        config = with_definition(churn, population=kind)
        return {r.customer_id for r in features_at(spark, rows, (journey, profile, config)).collect()}

    assert population("active") == {"A", "B"}         # activity in the 90 days before the snapshot
    assert population("all") == {"A", "B", "C"}       # anyone who ever bought or was active


UTC = timezone.utc


def at(when: datetime) -> float:
    """touch()'s minutes after T0 (naive UTC) of an aware instant."""
    return (when - T0.replace(tzinfo=UTC)) / timedelta(minutes=1)


def test_as_of_is_the_end_of_the_day_in_the_configured_zone_and_nothing_later_leaks(spark, configs):
    journey, profile, churn = configs
    config = with_definition(churn, population="all", horizon_days=30).model_copy(update={
        "snapshots": churn.snapshots.model_copy(update={"count": 3, "every_days": 10, "min_history_days": 0,
                                                        "held_out": 1}),
        "scoring": churn.scoring.model_copy(update={"timezone": "America/New_York"})})
    as_of = date(2025, 4, 30)              # ends at 2025-05-01 04:00 UTC (New York is UTC-4 in spring)
    customers = spark.createDataFrame([("A", None, None, None), ("C", None, None, None)], CUSTOMERS)
    known = history()[:3] + [touch("C", "order_placed", at(datetime(2025, 3, 25, 12, tzinfo=UTC)), amount=8.0),
                             # 23:30 on as_of's day in New York: it counts
                             touch("C", "order_placed", at(datetime(2025, 5, 1, 3, 30, tzinfo=UTC)), amount=9.0)]
    future = [touch("C", "order_placed", at(datetime(2025, 5, 1, 4, 30, tzinfo=UTC)), amount=99.0),   # 00:30 May 1
              touch("A", "order_placed", 70 * DAY, amount=99.0)]

    def training(rows):
        dates, frame = training_features(touchpoints(spark, rows), customers, journey, profile, config, as_of)
        return dates, frame.orderBy(*frame.columns[:2]).collect()

    dates, rows = training(known)
    # the last label window ends with as_of: 30 days after the last snapshot
    assert dates == [date(2025, 3, 11), date(2025, 3, 21), date(2025, 3, 31)]
    # C's order late on as_of's day (already May 1 in UTC) is in the horizon of the last snapshot: not churned
    assert {(r.customer_id, r.snapshot_date): r.churned for r in rows}[("C", date(2025, 3, 31))] == 0
    assert training(known + future) == (dates, rows)     # what happened after as_of changes nothing

    scored = churn_features(touchpoints(spark, known + future), customers, snapshot_frame(spark, [as_of], config),
                            journey, profile, config, labelled=False)
    c = scored.where("customer_id = 'C'").first()
    assert (c.purchases_total, c.days_since_last_purchase) == (2.0, pytest.approx(0.5 / 24))


def test_a_backtest_refuses_features_labelled_after_its_date(spark, settings, lake):
    from cdp.ml.step import train_churn_model

    dates = [(f"C{i}", d) for i, d in enumerate([date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)])]
    lake.overwrite(spark.createDataFrame(dates, "customer_id string, snapshot_date date"), CHURN_FEATURES)
    # the demo's horizon is a year: the last snapshot's label looks until 2025-03-01, after the backtest's date
    with pytest.raises(InsufficientData, match=r"^gold.churn_features was built for a later date: its last snapshot, "
                                               r"2024-03-01, is labelled with what happened until 2025-03-01, after "
                                               r"2025-01-15; rebuild it for this date: cdp run --steps "
                                               r"churn_features,churn_model --as-of 2025-01-15$"):
        train_churn_model(lake, settings, "test", as_of=date(2025, 1, 15))


@pytest.mark.parametrize("key, value, message", [
    ("features", "[days_since_last_purchse]",
     r"key 'features' .*unknown feature 'days_since_last_purchse'; did you mean 'days_since_last_purchase'\?"),
    ("definition", "{activity_event_types: [order_placed], horizon_days: 0}", r"key 'definition.horizon_days'"),
    ("scoring", "{risk_bands: [{name: high, min_probability: 0.5}]}", r"min_probability 0"),
    ("scoring", "{timezone: Europe/Madird, risk_bands: [{name: low, min_probability: 0.0}]}",
     r"key 'scoring.timezone' .*unknown time zone 'Europe/Madird'; use an IANA name"),
])
def test_config_mistakes_are_one_line(tmp_path, key, value, message):
    from cdp.config import DEFAULT_CONF_DIR

    text = (DEFAULT_CONF_DIR / "churn.yaml").read_text()
    lines, out, skipping = text.splitlines(), [], False
    for line in lines:            # replace the top-level block `key:` with `key: value`
        if line.startswith(f"{key}:"):
            out.append(f"{key}: {value}")
            skipping = True
        elif skipping and (line.startswith((" ", "#")) or not line.strip()):
            continue
        else:
            skipping = False
            out.append(line)
    path = tmp_path / "churn.yaml"
    path.write_text("\n".join(out) + "\n")
    with pytest.raises(ConfigError, match=message) as err:
        load_churn_config(path=path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_unknown_activity_event_type_names_the_key(settings, tmp_path):
    import shutil

    from cdp.config import load_settings
    from cdp.config.churn import checked_churn_config
    from cdp.config.sources import load_sources

    conf = tmp_path / "conf"
    shutil.copytree(settings.conf_dir, conf)
    path = conf / "churn.yaml"
    path.write_text(path.read_text().replace("activity_event_types: [order_placed,", "activity_event_types: [order_placd,"))
    custom = load_settings("local", conf_dir=conf)
    with pytest.raises(ConfigError, match=r"key 'definition.activity_event_types' names event type 'order_placd', "
                                          r"which no source produces; did you mean 'order_placed'"):
        checked_churn_config(custom, load_sources(custom))


# ---------------------------------------------------------------- next best action

SCORES = "customer_id string, as_of date, churn_probability double, risk_band string, model_name string, " \
         "model_version string, top_drivers array<string>"


@pytest.mark.parametrize("consent, complained, value, preferred, expected", [
    (True, False, 500.0, "email", ("retention_call", "phone")),            # high risk, high value, consented
    (True, True, 500.0, "email", ("complaint_follow_up_survey", "email")),  # a complaint first
    (True, False, 50.0, "callcenter", ("service_check_in_call", "phone")),  # comes to us by phone
    (True, False, 50.0, "email", ("email_win_back_offer", "email")),
    (False, False, 500.0, "callcenter", ("no_consented_channel", None)),   # rules match; none may contact
    (None, True, 500.0, "email", ("no_consented_channel", None)),          # unknown consent is no consent
], ids=["call", "complaint", "check-in", "win-back", "no consent", "unknown consent"])
def test_actions_never_use_a_channel_without_consent(spark, configs, consent, complained, value, preferred,
                                                     expected):
    churn = configs[2]
    as_of = date(2025, 6, 1)
    scores = spark.createDataFrame([("A", as_of, 0.9, "high", "m", "1", []), ("L", as_of, 0.1, "low", "m", "1", [])],
                                   SCORES)
    value_df = spark.createDataFrame([("A", value), ("L", 10.0)], "customer_id string, expected_value double")
    profile = spark.createDataFrame([("A", preferred, consent), ("L", "email", True)],
                                    "customer_id string, preferred_channel string, marketing_consent boolean")
    complaints = spark.createDataFrame([("A", datetime(2025, 5, 20))] if complained else [],
                                       "customer_id string, last_complaint_at timestamp")
    got = next_best_action(scores, value_df, profile, complaints, churn.actions, churn.scoring).collect()
    assert [(r.customer_id, r.action, r.channel) for r in got] == [("A", *expected)]   # L is low risk: no row
    if expected[1] is None:
        assert got[0].reason == "a rule matched, but the customer has not consented to its channel"
    else:
        assert got[0].reason.endswith(f"consented to {expected[1]}")


def test_channel_diversity_leaves_out_what_the_company_sent(base_rows):
    got = next(r for r in base_rows if r.customer_id == "B")
    assert got.channels_used_90d == 3.0   # clickstream, email (the open; the send is ours) and store
    assert (got.emails_received_90d, got.email_open_rate_90d) == (1.0, 1.0)
