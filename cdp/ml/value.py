"""Customer value: BG/NBD (Fader, Hardie and Lee 2005, "Counting your customers the easy way") for how many
purchases a customer will make and whether they are still active, Gamma-Gamma (Fader, Hardie and Lee 2005,
"RFM and CLV") for what they will spend per purchase. Both are fitted by maximum likelihood with scipy on the
driver, over a grid of distinct customer summaries with their counts; the fitted parameters are then applied to
every customer as Spark columns, the BG/NBD conditional expectation's hypergeometric function in a pandas UDF."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import timezone as tz

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import DoubleType
from scipy import optimize, special

from cdp.ml.as_of import day_of, end_of_day, local_day_number

EPOCH = datetime(1970, 1, 1, tzinfo=tz.utc)
MIN_BGNBD_CUSTOMERS = 4          # one per parameter
MIN_BGNBD_REPEAT_CUSTOMERS = 1   # with none, a and b (the dropout after a purchase) are not identified
MIN_GAMMA_GAMMA_CUSTOMERS = 2    # with a repeat purchase: the only ones whose spend the model sees
MAX_GRID_CELLS = 2_000_000       # per model: 64 MB of float64; ~0.1 s a likelihood, ~1 min a BG/NBD fit
SPEND_DIGITS = 4                 # significant digits of an average spend in the Gamma-Gamma grid
_LOG_PARAMETER_LIMIT = 25.0      # |log(parameter)| beyond this (e^25 ~ 7e10) is a fit running off to a boundary


@dataclass(frozen=True)
class BgNbd:
    """BG/NBD: purchase rates ~ Gamma(r, alpha) while alive, dropout after a purchase ~ Beta(a, b)."""
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int


@dataclass(frozen=True)
class GammaGamma:
    """Gamma-Gamma: spend per purchase ~ Gamma(p, nu), each customer's nu ~ Gamma(q, v)."""
    p: float
    q: float
    v: float
    log_likelihood: float
    customers: int


@dataclass(frozen=True)
class SummaryGrid:
    """What the driver fits on: the distinct (frequency, recency, T) cells with their customer counts for BG/NBD,
    the distinct (frequency, monetary_value) cells of the repeat customers for Gamma-Gamma."""
    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    customers: np.ndarray
    spend_frequency: np.ndarray
    spend_value: np.ndarray
    spend_customers: np.ndarray


def _col(c: Column | str) -> Column:
    return F.col(c) if isinstance(c, str) else c


# ------------------------------------------------------------------------------------------------ summary
def purchase_summary(purchases: DataFrame, as_of: datetime | date, time_unit_days: float = 7.0,
                     timezone: str = "UTC") -> DataFrame:
    """(customer_id, frequency, recency, T, monetary_value) at as_of, in lifetimes' convention, from purchases
    (customer_id, event_ts, amount); purchases after as_of are ignored. A date as_of is the end of that day in
    `timezone` (its purchases count); a naive datetime is UTC.

    The purchases of a customer on one calendar day (in `timezone`) are one purchase of their summed amount.
    frequency is the number of repeat purchase days, recency the time from the first to the last purchase day, T
    from the first purchase day to as_of's day (in units of time_unit_days), monetary_value the mean amount of the
    repeat days (0.0 without one: the first purchase is left out, as the Gamma-Gamma model expects).
    """
    if time_unit_days <= 0:
        raise ValueError(f"time_unit_days must be positive, got {time_unit_days}")
    if isinstance(as_of, datetime):
        last = as_of.replace(tzinfo=tz.utc) if as_of.tzinfo is None else as_of
    else:
        last = end_of_day(as_of, timezone) - timedelta(microseconds=1)
    as_of_micros = (last - EPOCH) // timedelta(microseconds=1)
    as_of_day = (day_of(last, timezone) - EPOCH.date()).days
    day = local_day_number("event_ts", timezone)
    days = (purchases.where(F.col("event_ts") <= F.timestamp_micros(F.lit(as_of_micros)))
            .groupBy("customer_id", day.alias("_day"))
            .agg(F.sum("amount").alias("_amount")))
    unit = float(time_unit_days)
    repeat_days = F.col("_days") - 1
    return (days.groupBy("customer_id")
            .agg(F.min("_day").alias("_first"), F.max("_day").alias("_last"), F.count(F.lit(1)).alias("_days"),
                 F.sum("_amount").alias("_total"), F.min_by("_amount", "_day").alias("_first_amount"))
            .select("customer_id", repeat_days.cast("int").alias("frequency"),
                    ((F.col("_last") - F.col("_first")) / unit).alias("recency"),
                    ((F.lit(as_of_day) - F.col("_first")) / unit).alias("T"),
                    F.when(repeat_days > 0, (F.col("_total") - F.col("_first_amount")) / repeat_days)
                    .otherwise(F.lit(0.0)).alias("monetary_value")))


def _significant(value: Column, digits: int) -> Column:
    """value rounded to `digits` significant digits (value > 0)."""
    scale = F.pow(F.lit(10.0), F.floor(F.log10(value)) - (digits - 1))
    return F.round(value / scale) * scale


def summary_grid(summary: DataFrame, spend_digits: int = SPEND_DIGITS, max_cells: int = MAX_GRID_CELLS
                 ) -> SummaryGrid:
    """The distinct summaries and how many customers share each, in one pass over `summary` (one Spark job).

    BG/NBD cells are exact: recency and T are whole days over the time unit, so a history of D days allows
    x <= t_x <= T <= D (in days), about D^3 / 6 cells, but never more than there are customers, and they
    concentrate where the customers do (small x; CDNOW's 2,357 customers make 1,016 cells). An average spend is
    continuous, so the Gamma-Gamma cells hold it to `spend_digits` significant digits (a relative error of at
    most 5e-4 at 4, far below the parameters' sampling error): at most 9,000 values per decade of spend for each
    frequency (CDNOW's 946 repeat customers make 753 cells).
    Customers whose repeat purchases sum to zero or less (returns) have no spend the model can describe and are
    left out of it. More than max_cells cells for either model is a ValueError: fit on a sample of customers.
    """
    eligible = (F.col("frequency") > 0) & (F.col("monetary_value") > 0)
    cells = (summary.withColumn("_spend", F.when(eligible, _significant(F.col("monetary_value"), spend_digits)))
             .groupingSets([["frequency", "recency", "T"], ["frequency", "_spend"]],
                           "frequency", "recency", "T", "_spend")
             .agg(F.count(F.lit(1)).alias("customers"), F.grouping("_spend").alias("_bgnbd"))
             .where((F.col("_bgnbd") == 1) | F.col("_spend").isNotNull())
             .orderBy("_bgnbd", "frequency", "recency", "T", "_spend")   # the fit depends on the cells' order
             .limit(2 * max_cells + 1)
             .toArrow())
    table = {name: cells.column(name).to_numpy(zero_copy_only=False) for name in cells.column_names}
    bgnbd = table["_bgnbd"] == 1
    for model, rows in (("BG/NBD", int(bgnbd.sum())), ("Gamma-Gamma", int((~bgnbd).sum()))):
        if rows > max_cells:
            raise ValueError(f"the {model} grid has more than {max_cells:,} cells: fit on a sample of customers "
                             f"(e.g. summary.sample(fraction=0.1, seed=1)) or raise max_cells")
    as_float = {name: np.asarray(values, dtype=float) for name, values in table.items()}
    return SummaryGrid(frequency=as_float["frequency"][bgnbd], recency=as_float["recency"][bgnbd],
                       T=as_float["T"][bgnbd], customers=as_float["customers"][bgnbd],
                       spend_frequency=as_float["frequency"][~bgnbd], spend_value=as_float["_spend"][~bgnbd],
                       spend_customers=as_float["customers"][~bgnbd])


# ------------------------------------------------------------------------------------------------ fitting
def _maximise(mean_log_likelihood, names: tuple[str, ...], model: str) -> tuple[np.ndarray, float]:
    """(parameters, mean log-likelihood) at the maximum, searched over log-parameters from all-ones."""
    def objective(log_params: np.ndarray) -> float:
        value = mean_log_likelihood(np.exp(log_params))
        return -value if np.isfinite(value) else np.inf   # an overflow is a bad point, not a failure

    # Nelder-Mead: no gradient to lose precision on, and it steps back from an infinite value
    result = optimize.minimize(objective, np.zeros(len(names)), method="Nelder-Mead",
                               options={"xatol": 1e-7, "fatol": 1e-11, "maxiter": 5_000 * len(names)})
    if not result.success and np.isfinite(result.fun):
        # Out of iterations on a ridge: BG/NBD's a and b grow together when the data show one dropout probability
        # for everyone (the likelihood depends on a/(a+b) only). A bounded quasi-Newton search from the start stops
        # on the ridge at moderate values; taken when it is as good as the best point the simplex found.
        bounded = optimize.minimize(objective, np.zeros(len(names)), method="L-BFGS-B",
                                    bounds=[(-_LOG_PARAMETER_LIMIT, _LOG_PARAMETER_LIMIT)] * len(names))
        if bounded.success and bounded.fun <= result.fun + 1e-4 * abs(result.fun):
            result = bounded
    if not result.success or not np.isfinite(result.fun):
        raise ValueError(f"the {model} fit did not converge ({result.message}): check the summary's values")
    drifted = [f"{n}={np.exp(lp):.3g}" for n, lp in zip(names, result.x, strict=True)
               if abs(lp) > _LOG_PARAMETER_LIMIT]
    if drifted:
        raise ValueError(f"the {model} fit did not converge: {', '.join(drifted)} ran off to a boundary "
                         "(the data do not identify the model; more customers or a longer history may)")
    return np.exp(result.x), -float(result.fun)


def _weights(size: int, weights) -> np.ndarray:
    w = np.ones(size) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (size,) or (w < 0).any():
        raise ValueError(f"weights must be {size} non-negative customer counts, one per row")
    return w


def fit_bgnbd(frequency, recency, T, weights=None) -> BgNbd:
    """BG/NBD by maximum likelihood; weights count the customers sharing a row (a summary_grid cell)."""
    x, t_x, t_cal = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    w = _weights(x.size, weights)
    customers, repeat = float(w.sum()), float(w[x > 0].sum())
    if customers < MIN_BGNBD_CUSTOMERS or repeat < MIN_BGNBD_REPEAT_CUSTOMERS:
        raise ValueError(f"BG/NBD needs at least {MIN_BGNBD_CUSTOMERS} customers, at least "
                         f"{MIN_BGNBD_REPEAT_CUSTOMERS} with a repeat purchase; got {customers:.0f}, "
                         f"{repeat:.0f} with a repeat purchase")
    # the terms of x alone are computed once per distinct x: a grid has thousands of cells but few frequencies
    x_values, x_cell = np.unique(x, return_inverse=True)
    repeated = x_values > 0
    total = w.sum()

    def mean_log_likelihood(params: np.ndarray) -> float:
        r, alpha, a, b = params
        common = special.gammaln(r + x_values) - special.gammaln(r) + r * np.log(alpha) - special.betaln(a, b)
        # L = B(a, b+x) / (alpha+T)^(r+x) + [x > 0] B(a+1, b+x-1) / (alpha+t_x)^(r+x), times the common terms:
        # summed in log space, since either power alone underflows for a frequent customer
        still_alive = special.betaln(a, b + x_values)
        dropped = np.where(repeated, special.betaln(a + 1, np.where(repeated, b + x_values - 1, 1.0)), -np.inf)
        power = r + x
        ll = common[x_cell] + np.logaddexp(still_alive[x_cell] - power * np.log(alpha + t_cal),
                                           dropped[x_cell] - power * np.log(alpha + t_x))
        return float(w @ ll / total)

    (r, alpha, a, b), mean = _maximise(mean_log_likelihood, ("r", "alpha", "a", "b"), "BG/NBD")
    return BgNbd(r=float(r), alpha=float(alpha), a=float(a), b=float(b), log_likelihood=float(mean * total),
                 customers=round(customers))


def fit_gamma_gamma(frequency, monetary_value, weights=None) -> GammaGamma:
    """Gamma-Gamma by maximum likelihood on the customers with frequency > 0 (the others are skipped); weights
    count the customers sharing a row. monetary_value is their mean spend per repeat purchase."""
    x_all, m_all = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
    w_all = _weights(x_all.size, weights)
    keep = x_all > 0
    x, m, w = x_all[keep], m_all[keep], w_all[keep]
    customers = float(w.sum())
    if customers < MIN_GAMMA_GAMMA_CUSTOMERS:
        raise ValueError(f"Gamma-Gamma needs at least {MIN_GAMMA_GAMMA_CUSTOMERS} customers with a repeat "
                         f"purchase; got {customers:.0f}")
    if (m <= 0).any():
        raise ValueError(f"Gamma-Gamma needs a positive monetary_value for every customer with a repeat purchase; "
                         f"{int((m <= 0).sum())} rows have none (leave them out, as summary_grid does)")
    x_values, x_cell = np.unique(x, return_inverse=True)
    log_m, log_x = np.log(m), np.log(x_values)

    def mean_log_likelihood(params: np.ndarray) -> float:
        p, q, v = params
        px = p * x_values
        # density of the mean of x spends: each ~ Gamma(p, nu), nu ~ Gamma(q, v)
        common = (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(v)
                  + px * log_x)
        ll = common[x_cell] + (px[x_cell] - 1) * log_m - (px[x_cell] + q) * np.log(v + x * m)
        return float(w @ ll / customers)

    (p, q, v), mean = _maximise(mean_log_likelihood, ("p", "q", "v"), "Gamma-Gamma")
    return GammaGamma(p=float(p), q=float(q), v=float(v), log_likelihood=float(mean * customers),
                      customers=round(customers))


@dataclass(frozen=True)
class ValueModels:
    """The fitted models: BG/NBD, and Gamma-Gamma unless the data do not identify it (then `note` says why and the
    expected spend is each customer's own mean, `fallback_spend` for a customer without a repeat purchase)."""
    bgnbd: BgNbd
    gamma_gamma: GammaGamma | None
    fallback_spend: float
    note: str | None = None


def fit_value_models(summary: DataFrame) -> ValueModels:
    """Both models, fitted on the driver from the grid of `summary` (a purchase_summary frame). ValueError when
    BG/NBD cannot be fitted (too few customers, a fit that does not converge on these data)."""
    grid = summary_grid(summary)
    bgnbd = fit_bgnbd(grid.frequency, grid.recency, grid.T, grid.customers)
    try:
        gamma_gamma = fit_gamma_gamma(grid.spend_frequency, grid.spend_value, grid.spend_customers)
    except ValueError as exc:   # spend heterogeneity the data do not identify: each customer's own mean
        return ValueModels(bgnbd, None, repeat_spend_mean(grid),
                           f"Gamma-Gamma not used ({exc}); expected spend is each customer's own mean")
    return ValueModels(bgnbd, gamma_gamma, repeat_spend_mean(grid))


# ------------------------------------------------------------------------------------------------ scoring
@pandas_udf(DoubleType())   # a type, not "double": parsing a DDL string needs a session at import
def _hyp2f1(a: pd.Series, b: pd.Series, c: pd.Series, z: pd.Series) -> pd.Series:
    """The Gauss hypergeometric function 2F1(a, b; c; z), on the executors."""
    return pd.Series(special.hyp2f1(a.to_numpy(), b.to_numpy(), c.to_numpy(), z.to_numpy()), index=a.index)


def p_alive(m: BgNbd, frequency: Column | str = "frequency", recency: Column | str = "recency",
            T: Column | str = "T") -> Column:
    """P(the customer is still active at T): 1 without a repeat purchase (BG/NBD drops a customer out only
    right after a repeat purchase)."""
    x, t_x, t_cal = _col(frequency), _col(recency), _col(T)
    # 1 / (1 + a / (b+x-1) * ((alpha+T) / (alpha+t_x))^(r+x)), the odds in log space so a power cannot overflow
    log_odds = F.log(m.a / (m.b + x - 1)) + (m.r + x) * F.log((m.alpha + t_cal) / (m.alpha + t_x))
    return F.when(x == 0, F.lit(1.0)).otherwise(1.0 / (1.0 + F.exp(log_odds)))


def expected_purchases(m: BgNbd, t: float, frequency: Column | str = "frequency",
                       recency: Column | str = "recency", T: Column | str = "T") -> Column:
    """E[purchases in (T, T + t] | x, t_x, T], the BG/NBD conditional expectation (the paper's eq. 10)."""
    if t < 0:
        raise ValueError(f"the horizon t must be 0 or more time units, got {t}")
    x, t_cal = _col(frequency), _col(T)
    z = t / (m.alpha + t_cal + t)
    c = m.a + m.b + x - 1
    # Eq. 10's ((alpha+T) / (alpha+T+t))^(r+x) 2F1(r+x, b+x; c; z) after Euler's transformation, (1-z)^(a-1)
    # 2F1(a+b-1-r, a-1; c; z): the same value, but a series in small parameters that converges quickly however
    # large x is, instead of a vanishing power times a huge hypergeometric
    hypergeometric = _hyp2f1(F.lit(m.a + m.b - 1 - m.r), F.lit(m.a - 1), c.cast("double"), z.cast("double"))
    grown = c / (m.a - 1) * (1 - F.pow(1 - z, m.a - 1) * hypergeometric)
    return grown * p_alive(m, frequency, recency, T)


def expected_spend(g: GammaGamma, frequency: Column | str = "frequency",
                   monetary_value: Column | str = "monetary_value") -> Column:
    """E[spend per purchase | x, mean spend]: the population mean p v / (q - 1) weighed against the customer's
    own mean by how many repeat purchases back it; the population mean for frequency 0."""
    if g.q <= 1:
        raise ValueError(f"Gamma-Gamma q = {g.q:.3g} <= 1: the population's mean spend is infinite, so there is "
                         "no expected spend")
    x, mean_spend = _col(frequency), _col(monetary_value)
    return (F.when(x == 0, F.lit(g.p * g.v / (g.q - 1)))
            .otherwise(g.p * (g.v + x * mean_spend) / (g.p * x + g.q - 1)))


def own_mean_spend(fallback: float, frequency: Column | str = "frequency",
                   monetary_value: Column | str = "monetary_value") -> Column:
    """The spend expected when Gamma-Gamma is not identified by the data: the customer's own mean repeat spend,
    `fallback` (the repeat customers' mean) without a repeat purchase."""
    return F.when(_col(frequency) > 0, _col(monetary_value)).otherwise(F.lit(fallback))


def repeat_spend_mean(grid: SummaryGrid) -> float:
    """The mean spend per repeat purchase over the repeat customers of a grid (their cells weighted by count)."""
    total = float(grid.spend_customers.sum())
    return float(grid.spend_value @ grid.spend_customers / total) if total else 0.0


def customer_value(summary: DataFrame, m: BgNbd, g: GammaGamma | None, horizon_units: float,
                   fallback_spend: float = 0.0) -> DataFrame:
    """(customer_id, frequency, recency, T, monetary_value, p_alive, expected_purchases, expected_spend,
    expected_value) per customer of `summary`: expected_value is the undiscounted spend expected over the next
    horizon_units (the summary's time unit), expected_purchases times expected_spend. Without a Gamma-Gamma
    model (g None: not identified), the expected spend is own_mean_spend(fallback_spend)."""
    spend = expected_spend(g) if g is not None else own_mean_spend(fallback_spend)
    return (summary
            .select("customer_id", "frequency", "recency", "T", "monetary_value",
                    p_alive(m).alias("p_alive"),
                    expected_purchases(m, horizon_units).alias("expected_purchases"),
                    spend.alias("expected_spend"))
            .withColumn("expected_value", F.col("expected_purchases") * F.col("expected_spend")))


VALUE_COLUMNS = ("customer_id", "as_of", "frequency", "recency", "T", "monetary_value", "p_alive",
                 "expected_purchases", "expected_spend", "expected_value")


def customer_value_table(summary: DataFrame, models: ValueModels, horizon_units: float, as_of: date) -> DataFrame:
    """gold.customer_value's rows: customer_value() of every customer of `summary`, as of a day."""
    return (customer_value(summary, models.bgnbd, models.gamma_gamma, horizon_units, models.fallback_spend)
            .withColumn("as_of", F.lit(as_of).cast("date"))
            .select(*VALUE_COLUMNS))
