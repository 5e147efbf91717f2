"""Customer value against published results: the summary of the CDNOW sample against lifetimes' CDNOW summary,
the fitted BG/NBD and Gamma-Gamma parameters against Fader, Hardie and Lee (2005), the conditional expectation
against Hardie's worked example and the paper's formula evaluated on the driver; then the small cases by hand."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from frame_asserts import assert_frame_equal
from scipy import special

from cdp.ml.value import (
    BgNbd,
    GammaGamma,
    customer_value,
    expected_purchases,
    expected_spend,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_value_models,
    p_alive,
    purchase_summary,
    repeat_spend_mean,
    summary_grid,
)

# lifetimes ships the CDNOW data; it is read by path, never imported (it does not import cleanly on numpy 2)
CDNOW = Path(importlib.util.find_spec("lifetimes").submodule_search_locations[0]) / "datasets"
CALIBRATION_END = datetime(1997, 9, 30)     # the end of the 39-week calibration period
PURCHASES_SCHEMA = "customer_id string, event_ts timestamp, amount double"
SUMMARY_SCHEMA = "customer_id string, frequency int, recency double, T double, monetary_value double"
# Fader, Hardie and Lee (2005), "Counting your customers the easy way", CDNOW calibration (LL -9582.4)
PUBLISHED_BGNBD = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=-9582.4, customers=2357)
# Fader, Hardie and Lee (2005), "RFM and CLV": the spend model on the same customers
PUBLISHED_GAMMA_GAMMA = GammaGamma(p=6.25, q=3.74, v=15.44, log_likelihood=float("nan"), customers=946)


def utc(day: datetime, minutes: float = 0) -> datetime:
    return (day + timedelta(minutes=minutes)).replace(tzinfo=timezone.utc)


def assert_within(fitted, published, names: str, relative: float) -> None:
    off = {n: (getattr(fitted, n), getattr(published, n)) for n in names.split()
           if abs(getattr(fitted, n) / getattr(published, n) - 1) > relative}
    assert not off, f"(fitted, published) more than {relative:.0%} apart: {off}"


@pytest.fixture(scope="module")
def cdnow_sample() -> pd.DataFrame:
    """CDNOW_sample.txt: customer id, the summary files' ID, yyyymmdd, quantity, dollars."""
    return pd.read_csv(CDNOW / "CDNOW_sample.txt", sep=r"\s+", header=None,
                       names=["customer_id", "ID", "date", "quantity", "amount"],
                       dtype={"customer_id": str, "ID": int, "date": str})


@pytest.fixture(scope="module")
def cdnow_summary(spark, cdnow_sample):
    """purchase_summary of the CDNOW sample at the end of calibration, computed once and held as local rows."""
    purchases = spark.createDataFrame(
        [(c, utc(datetime.strptime(d, "%Y%m%d")), a)
         for c, d, a in cdnow_sample[["customer_id", "date", "amount"]].itertuples(index=False)],
        PURCHASES_SCHEMA)
    frame = purchase_summary(purchases, CALIBRATION_END)
    return spark.createDataFrame(frame.collect(), frame.schema)


# ------------------------------------------------------------------------------------------------ CDNOW
def test_summary_reproduces_the_published_cdnow_summary(cdnow_summary, cdnow_sample):
    # Published values are in weeks rounded to 0.01. as_of's own day ends T (Jan 1 to Sep 30 is 272 days, 38.86
    # weeks) and purchases on as_of's day count; zbar is the mean of the repeat days, the first day left out.
    ours = cdnow_summary.toPandas().merge(cdnow_sample[["customer_id", "ID"]].drop_duplicates(), on="customer_id")
    published = (pd.read_csv(CDNOW / "cdnow_customers_summary.csv")
                 .merge(pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")[["ID", "zbar"]],
                        on="ID", how="left"))
    both = published.merge(ours, on="ID", how="outer", suffixes=("_published", ""), indicator=True)
    assert len(both) == 2357 and (both["_merge"] == "both").all()
    assert (both["frequency"] == both["frequency_published"]).all()
    for ours_name, theirs in (("recency", "recency_published"), ("T", "T_published")):
        assert (both[ours_name] - both[theirs]).abs().max() <= 0.005 + 1e-9, ours_name
    assert (both["monetary_value"] - both["zbar"]).abs().max() <= 0.005 + 1e-9


def test_bgnbd_on_the_cdnow_summary_matches_the_paper(cdnow_summary):
    models = fit_value_models(cdnow_summary)
    bgnbd, gamma_gamma = models.bgnbd, models.gamma_gamma
    assert models.note is None
    assert_within(bgnbd, PUBLISHED_BGNBD, "r alpha a b", 0.01)
    assert bgnbd.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    assert bgnbd.customers == 2357
    assert_within(gamma_gamma, PUBLISHED_GAMMA_GAMMA, "p q v", 0.01)   # from unrounded spend
    assert gamma_gamma.customers == 946


def test_the_grid_is_small_and_fits_as_every_customer_would(cdnow_summary):
    grid = summary_grid(cdnow_summary)
    assert grid.customers.sum() == 2357 and len(grid.customers) < 2357 / 1.5
    assert grid.spend_customers.sum() == 946     # repeat customers, each with a positive mean spend
    rows = cdnow_summary.toPandas()
    per_customer = fit_bgnbd(rows["frequency"], rows["recency"], rows["T"])
    weighted = fit_bgnbd(grid.frequency, grid.recency, grid.T, grid.customers)
    for name in ("r", "alpha", "a", "b", "log_likelihood"):
        assert getattr(weighted, name) == pytest.approx(getattr(per_customer, name), rel=1e-5), name


def test_gamma_gamma_on_the_published_summary_matches_the_paper():
    published = pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")
    fitted = fit_gamma_gamma(published["x"], published["zbar"])     # frequency 0 rows are skipped
    assert_within(fitted, PUBLISHED_GAMMA_GAMMA, "p q v", 0.01)
    assert fitted.customers == 946


# ------------------------------------------------------------------------------------------------ scoring
def paper_expectation(m: BgNbd, t: float, x: int, t_x: float, T: float) -> float:
    """Eq. 10 of the BG/NBD paper as printed, on the driver (value.py evaluates a transformed 2F1)."""
    hypergeometric = special.hyp2f1(m.r + x, m.b + x, m.a + m.b + x - 1, t / (m.alpha + T + t))
    grown = (m.a + m.b + x - 1) / (m.a - 1) * (1 - ((m.alpha + T) / (m.alpha + T + t)) ** (m.r + x) * hypergeometric)
    return grown / (1 + (x > 0) * m.a / (m.b + x - 1) * ((m.alpha + T) / (m.alpha + t_x)) ** (m.r + x))


def likelihood_p_alive(m: BgNbd, x: int, t_x: float, T: float) -> float:
    """P(alive) as the share of the likelihood in which the customer has not dropped out (paper eq. 6 and 13)."""
    alive = special.betaln(m.a, m.b + x) - (m.r + x) * np.log(m.alpha + T)
    dropped = special.betaln(m.a + 1, m.b + x - 1) - (m.r + x) * np.log(m.alpha + t_x) if x else -np.inf
    return float(np.exp(alive - np.logaddexp(alive, dropped)))


CUSTOMERS = [("hardie", 2, 30.43, 38.86), ("new", 0, 0.0, 38.86), ("recent", 1, 1.71, 38.86),
             ("lapsed", 7, 5.0, 38.86), ("loyal", 20, 38.0, 38.86), ("heavy", 60, 38.5, 38.86)]


def test_expected_purchases_and_p_alive_match_the_paper(spark):
    frame = spark.createDataFrame(CUSTOMERS, "customer_id string, frequency int, recency double, T double")
    rows = frame.select("customer_id", "frequency", "recency", "T", p_alive(PUBLISHED_BGNBD).alias("alive"),
                        expected_purchases(PUBLISHED_BGNBD, 39.0).alias("purchases")).collect()
    by_id = {r.customer_id: r for r in rows}
    # Hardie's BG/NBD spreadsheet for the paper: 1.226 purchases in the next 39 weeks
    assert by_id["hardie"].purchases == pytest.approx(1.226, abs=5e-4)
    for r in rows:
        assert r.purchases == pytest.approx(paper_expectation(PUBLISHED_BGNBD, 39.0, r.frequency, r.recency, r.T),
                                            rel=1e-9), r.customer_id
        assert r.alive == pytest.approx(likelihood_p_alive(PUBLISHED_BGNBD, r.frequency, r.recency, r.T),
                                        rel=1e-9), r.customer_id
    assert by_id["new"].alive == 1.0


def test_p_alive_falls_with_time_since_the_last_purchase(spark):
    frame = spark.createDataFrame([(2, 10.0, float(T)) for T in range(10, 80, 5)] + [(0, 0.0, 70.0)],
                                  "frequency int, recency double, T double")
    rows = frame.select("frequency", "T", p_alive(PUBLISHED_BGNBD).alias("alive")).orderBy("frequency", "T").collect()
    assert rows[0].alive == 1.0                    # frequency 0: alive whatever T
    alive = [r.alive for r in rows[1:]]
    assert alive[0] == pytest.approx(1 / (1 + PUBLISHED_BGNBD.a / (PUBLISHED_BGNBD.b + 1)))   # T = t_x
    assert all(later < earlier for earlier, later in zip(alive, alive[1:], strict=False))


def test_customer_value(spark):
    g = replace(PUBLISHED_GAMMA_GAMMA, log_likelihood=0.0)
    summary = spark.createDataFrame([("A", 2, 30.43, 38.86, 22.35), ("B", 0, 0.0, 38.86, 0.0)], SUMMARY_SCHEMA)
    valued = customer_value(summary, PUBLISHED_BGNBD, g, 39.0)
    # A: 6.25 * (15.44 + 2 * 22.35) / (6.25 * 2 + 3.74 - 1) = 375.875 / 15.24; B: 6.25 * 15.44 / 2.74
    spend = {"A": 375.875 / 15.24, "B": 96.5 / 2.74}
    rows = {r.customer_id: r for r in valued.collect()}
    assert valued.columns == ["customer_id", "frequency", "recency", "T", "monetary_value", "p_alive",
                              "expected_purchases", "expected_spend", "expected_value"]
    for cid, r in rows.items():
        assert r.expected_spend == pytest.approx(spend[cid], rel=1e-12)
        assert r.expected_value == pytest.approx(r.expected_purchases * spend[cid], rel=1e-12)
        assert r.expected_purchases == pytest.approx(paper_expectation(PUBLISHED_BGNBD, 39.0, r.frequency,
                                                                       r.recency, r.T), rel=1e-9)


def test_without_gamma_gamma_each_customer_is_expected_to_spend_their_own_mean(spark):
    summary = spark.createDataFrame([("A", 2, 30.43, 38.86, 22.35), ("B", 0, 0.0, 38.86, 0.0)], SUMMARY_SCHEMA)
    got = {r.customer_id: r.expected_spend for r in customer_value(summary, PUBLISHED_BGNBD, None, 39.0,
                                                                    fallback_spend=30.0).collect()}
    assert got == {"A": 22.35, "B": 30.0}   # B has no repeat purchase: the repeat customers' mean


# ------------------------------------------------------------------------------------------------ by hand
def test_purchase_summary_by_hand(spark):
    day = datetime(2025, 1, 1)
    purchases = spark.createDataFrame([
        ("A", utc(day, 9 * 60), 10.0),
        ("A", utc(day, 20 * 60), 5.0),                 # the same day: one purchase of 15
        ("A", utc(day + timedelta(days=3), 23 * 60 + 30), 20.0),
        ("A", utc(day + timedelta(days=4), 30), 40.0),  # an hour later but the next UTC day: a repeat purchase
        ("A", utc(day + timedelta(days=10), 12 * 60), 1000.0),   # after as_of: ignored
        ("B", utc(day + timedelta(days=6)), 7.0),       # one purchase day: frequency 0, spend 0
    ], PURCHASES_SCHEMA)
    summary = purchase_summary(purchases, day + timedelta(days=8, hours=6), time_unit_days=1.0)
    # A: days 0, 3, 4 -> frequency 2, recency 4, T 8 (as_of is on day 8), spend (20 + 40) / 2; B: day 6, T 2
    assert_frame_equal(summary, [("A", 2, 4.0, 8.0, 30.0), ("B", 0, 0.0, 2.0, 0.0)], SUMMARY_SCHEMA)


def test_a_date_as_of_is_the_end_of_that_day_in_the_time_zone(spark):
    # New York is UTC-5 in January: 04:30 UTC on the 9th is 23:30 on the 8th there, 05:30 UTC is the 9th
    purchases = spark.createDataFrame([
        ("A", datetime(2025, 1, 1, 15, tzinfo=timezone.utc), 10.0),
        ("A", datetime(2025, 1, 9, 4, 30, tzinfo=timezone.utc), 20.0),    # on as_of's day: counts
        ("A", datetime(2025, 1, 9, 5, 30, tzinfo=timezone.utc), 999.0),   # the day after: does not
    ], PURCHASES_SCHEMA)
    summary = purchase_summary(purchases, date(2025, 1, 8), time_unit_days=1.0, timezone="America/New_York")
    # one repeat day, 7 days after the first in New York's calendar (8 in UTC's); T ends on as_of's day
    assert_frame_equal(summary, [("A", 1, 7.0, 7.0, 20.0)], SUMMARY_SCHEMA)


def test_grid_collapses_customers_and_rounds_spend(spark):
    summary = spark.createDataFrame([
        ("A", 2, 4.0, 8.0, 30.0), ("B", 2, 4.0, 8.0, 30.004), ("C", 0, 0.0, 2.0, 0.0), ("D", 1, 1.0, 2.0, -5.0),
    ], SUMMARY_SCHEMA)
    grid = summary_grid(summary)
    bgnbd = sorted(zip(grid.frequency, grid.recency, grid.T, grid.customers, strict=True))
    assert bgnbd == [(0, 0.0, 2.0, 1), (1, 1.0, 2.0, 1), (2, 4.0, 8.0, 2)]
    # 30.004 is 30.00 to 4 significant digits; D's negative spend (returns) has no place in Gamma-Gamma
    assert list(zip(grid.spend_frequency, grid.spend_value, grid.spend_customers, strict=True)) == [(2, 30.0, 2)]
    assert repeat_spend_mean(grid) == 30.0
    with pytest.raises(ValueError, match=re.escape("the BG/NBD grid has more than 2 cells: fit on a sample")):
        summary_grid(summary, max_cells=2)


def test_too_few_customers_is_a_clear_error():
    with pytest.raises(ValueError, match=re.escape(
            "Gamma-Gamma needs at least 2 customers with a repeat purchase; got 1")):
        fit_gamma_gamma([0, 3, 0], [0.0, 12.5, 0.0])
    with pytest.raises(ValueError, match=re.escape(
            "BG/NBD needs at least 4 customers, at least 1 with a repeat purchase; got 3, 0 with a repeat")):
        fit_bgnbd([0, 0, 0], [0.0, 0.0, 0.0], [5.0, 6.0, 7.0])


def test_an_unidentified_fit_is_a_clear_error():
    # every repeat customer spends exactly the same: the spread between customers is zero, q and v run off
    with pytest.raises(ValueError, match="the Gamma-Gamma fit did not converge"):
        fit_gamma_gamma([1, 2, 3, 4] * 5, [10.0] * 20)


def test_expected_spend_needs_a_finite_population_mean():
    with pytest.raises(ValueError, match=re.escape("Gamma-Gamma q = 0.9 <= 1")):
        expected_spend(GammaGamma(p=2.0, q=0.9, v=1.0, log_likelihood=0.0, customers=10))


def test_the_conditional_expectation_runs_in_a_udf_not_on_the_driver(spark):
    frame = spark.createDataFrame([(2, 30.43, 38.86)], "frequency int, recency double, T double")
    scored = frame.select(expected_purchases(PUBLISHED_BGNBD, 39.0).alias("e"))
    assert "ArrowEvalPython" in scored._jdf.queryExecution().executedPlan().toString()


def test_a_fit_on_a_ridge_stops_on_it_instead_of_failing():
    # the demo's 300 customers: one dropout probability for all, so a and b grow together without end and the
    # simplex runs out of iterations; the bounded search stops on the ridge, as likely as the simplex's best point
    grid = np.loadtxt(Path(__file__).parent / "cases" / "bgnbd_ridge_grid.csv", delimiter=",", skiprows=3)
    m = fit_bgnbd(grid[:, 0], grid[:, 1], grid[:, 2], grid[:, 3])
    assert m.customers == 185 and m.a / (m.a + m.b) == pytest.approx(0.124, abs=0.002)
    assert m.log_likelihood / m.customers == pytest.approx(-6.33404, abs=1e-4)
