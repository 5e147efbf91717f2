"""The prediction steps, the writers: gold.churn_features (point-in-time training data), the churn model (trained,
tracked, registered and aliased in MLflow), gold.churn_scores (from models:/<name>@champion), gold.customer_value
(BG/NBD + Gamma-Gamma) and gold.next_best_action. Each core is pure (cdp.ml.features, train, scoring, value,
actions); here frames are read, gated on their contracts and written whole. Re-running a step on the same input
writes the same rows (training registers a new version, whose alias follows the champion/challenger rule)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.config import Settings
from cdp.config.churn import ChurnConfig
from cdp.config.project import ProjectConfig
from cdp.errors import InsufficientData
from cdp.frames import cache_columns, uncache
from cdp.io import Lakehouse
from cdp.journey.touchpoints import customer_touchpoints, is_purchase
from cdp.ml.as_of import day_of, end_of_day, local_date
from cdp.ml.features import churn_features, event_signals, snapshot_frame, training_features
from cdp.quality.gold import publish, published
from cdp.tables import (
    CHURN_FEATURES,
    CHURN_SCORES,
    CUSTOMER_PROFILE,
    CUSTOMER_VALUE,
    CUSTOMERS,
    IDENTITY_MAP,
    INTERACTIONS,
    NEXT_BEST_ACTION,
)


def _touchpoints(lake: Lakehouse, touchpoints: DataFrame | None) -> DataFrame:
    return touchpoints if touchpoints is not None else customer_touchpoints(lake.read(INTERACTIONS),
                                                                            lake.read(IDENTITY_MAP))


def _event_span(touchpoints: DataFrame, timezone: str) -> tuple[date | None, date | None]:
    """The first and the last calendar day (in `timezone`) with a touchpoint."""
    day = local_date("event_ts", timezone)
    row = touchpoints.agg(F.min(day), F.max(day)).first()
    return row[0], row[1]


def fixed_as_of(config: ChurnConfig, as_of: date | None) -> date | None:
    """The day nothing after may be seen (a backtest): --as-of, else scoring.as_of when it is a date; None when
    the steps look at everything there is (latest_event, run_time)."""
    if as_of is not None:
        return as_of
    return config.scoring.as_of if isinstance(config.scoring.as_of, date) else None


def resolve_scoring_date(config: ChurnConfig, latest_day: date | None, now: datetime,
                         as_of: date | None = None) -> date:
    """The day scoring and value look up to the end of (scoring.timezone): --as-of, else scoring.as_of (a date,
    the run's day, or the day of the latest touchpoint)."""
    fixed = fixed_as_of(config, as_of)
    if fixed is not None:
        return fixed
    if config.scoring.as_of == "run_time" or latest_day is None:
        return day_of(now, config.scoring.timezone)
    return latest_day


def _up_to(touchpoints: DataFrame, day: date | None, timezone: str) -> DataFrame:
    """The touchpoints up to the end of `day` (all of them when None): a backtest sees nothing later."""
    return touchpoints if day is None else touchpoints.where(F.col("event_ts") < F.lit(end_of_day(day, timezone)))


# ---------------------------------------------------------------- gold.churn_features

@dataclass
class FeaturesResult:
    snapshots: list[date] = field(default_factory=list)
    rows: int = 0
    churn_rate: float = 0.0


def build_churn_features(lake: Lakehouse, conf: ProjectConfig | Settings, run_id: str,
                         touchpoints: DataFrame | None = None, as_of: date | None = None) -> FeaturesResult:
    """gold.churn_features for the configured snapshots, gated and overwritten. With as_of (cdp run --as-of, or
    scoring.as_of a date) only the touchpoints up to its end are read, so the last label window ends by then."""
    conf = ProjectConfig.of(conf)
    config = conf.churn
    dates, frame = training_features(_touchpoints(lake, touchpoints), lake.read(CUSTOMERS), conf.journeys,
                                     conf.profile, config, fixed_as_of(config, as_of))
    with published(lake, conf, {CHURN_FEATURES: frame}, run_id, "churn_features") as written:
        stats = written[CHURN_FEATURES].agg(F.count(F.lit(1)), F.avg("churned")).first()
    return FeaturesResult(dates, stats[0], float(stats[1] or 0.0))


# ---------------------------------------------------------------- the model

def train_churn_model(lake: Lakehouse, conf: ProjectConfig | Settings, run_id: str, as_of: date | None = None):
    """Train on gold.churn_features, track and register in MLflow; (TrainingResult, Registration). With as_of,
    features whose churn label looks past it are refused: they would teach a backtest the future."""
    from cdp.ml.registry import log_and_register
    from cdp.ml.train import train_churn_models

    conf = ProjectConfig.of(conf)
    config = conf.churn
    features = lake.read(CHURN_FEATURES)
    dates = sorted(r[0] for r in features.select("snapshot_date").distinct().collect())   # a few dates
    if len(dates) <= config.snapshots.held_out:
        raise InsufficientData(f"gold.churn_features holds {len(dates)} snapshot date(s) and snapshots.held_out "
                               f"is {config.snapshots.held_out}: run the churn_features step with more snapshots")
    day, horizon = fixed_as_of(config, as_of), timedelta(days=config.definition.horizon_days)
    if day is not None and dates[-1] + horizon > day:
        raise InsufficientData(f"gold.churn_features was built for a later date: its last snapshot, {dates[-1]}, "
                               f"is labelled with what happened until {dates[-1] + horizon}, after {day}; rebuild "
                               f"it for this date: cdp run --steps churn_features,churn_model --as-of {day}")
    result = train_churn_models(features, dates, config)
    try:
        registration = log_and_register(conf.settings, config, result, run_name=f"churn-{run_id}")
    finally:
        result.release()
    return result, registration


# ---------------------------------------------------------------- gold.churn_scores

@dataclass
class ScoringResult:
    as_of: date
    customers: int
    model_version: str
    bands: dict[str, int] = field(default_factory=dict)


def score_churn(lake: Lakehouse, conf: ProjectConfig | Settings, run_id: str, now: datetime,
                as_of: date | None = None, touchpoints: DataFrame | None = None) -> ScoringResult:
    """gold.churn_scores as of the end of a day, by models:/<name>@champion (NoChampion if there is none): every
    customer of definition.population then."""
    from cdp.ml.registry import DRIVERS_TAG, churner_weight, load_champion
    from cdp.ml.scoring import churn_scores

    conf = ProjectConfig.of(conf)
    config = conf.churn
    model, version = load_champion(conf.settings, config)
    tp = _touchpoints(lake, touchpoints)
    day = resolve_scoring_date(config, _event_span(tp, config.scoring.timezone)[1], now, as_of)
    features = churn_features(tp, lake.read(CUSTOMERS), snapshot_frame(lake.spark, [day], config), conf.journeys,
                              conf.profile, config, labelled=False).transform(cache_columns)
    try:
        candidates = [f for f in (version.tags.get(DRIVERS_TAG) or "").split(",") if f]
        scores = churn_scores(model, features, config.scoring, config.model.name, version.version, candidates, day,
                              churner_weight(version))
        publish(lake, conf, {CHURN_SCORES: scores}, run_id, "churn_scores")
    finally:
        uncache(features)
    bands = {r.risk_band: r[1] for r in lake.read(CHURN_SCORES).groupBy("risk_band").count().collect()}
    return ScoringResult(day, sum(bands.values()), version.version, bands)


# ---------------------------------------------------------------- gold.customer_value

@dataclass
class ValueResult:
    as_of: date
    customers: int
    bgnbd: object
    gamma_gamma: object | None       # None: not identified by the data (see note)
    mlflow_run: str | None = None
    note: str | None = None


def build_customer_value(lake: Lakehouse, conf: ProjectConfig | Settings, run_id: str, now: datetime,
                         as_of: date | None = None, touchpoints: DataFrame | None = None) -> ValueResult:
    """gold.customer_value: BG/NBD and Gamma-Gamma fitted on the purchases up to the end of the scoring date
    (the core: cdp.ml.value.fit_value_models, customer_value_table)."""
    from cdp.ml.value import customer_value_table, fit_value_models, purchase_summary

    conf = ProjectConfig.of(conf)
    config = conf.churn
    tp = _touchpoints(lake, touchpoints)
    tz = config.scoring.timezone
    day = resolve_scoring_date(config, _event_span(tp, tz)[1], now, as_of)
    purchases = (_up_to(tp, day, tz).where(is_purchase(conf.journeys))
                 .join(lake.read(CUSTOMERS).select("customer_id"), "customer_id", "left_semi")
                 .select("customer_id", "event_ts", F.col("amount").cast("double").alias("amount")))
    summary = purchase_summary(purchases, day, config.value.time_unit_days, tz).transform(cache_columns)
    try:
        try:
            models = fit_value_models(summary)
        except ValueError as exc:   # too few customers, or a fit that does not converge on these data
            raise InsufficientData(f"customer value as of {day}: {exc}") from None
        horizon = config.value.horizon_days / config.value.time_unit_days
        value = customer_value_table(summary, models, horizon, day)
        with published(lake, conf, {CUSTOMER_VALUE: value}, run_id, "customer_value") as written:
            customers = written[CUSTOMER_VALUE].count()
    finally:
        uncache(summary)
    mlflow_run = _log_value_fit(conf.settings, config, run_id, day, models.bgnbd, models.gamma_gamma, models.note)
    return ValueResult(day, customers, models.bgnbd, models.gamma_gamma, mlflow_run, models.note)


def _log_value_fit(settings: Settings, config: ChurnConfig, run_id: str, day: date, bgnbd, gg,
                   note: str | None) -> str | None:
    from dataclasses import asdict

    from cdp.tracking import log_evaluation

    params = {"time_unit_days": config.value.time_unit_days, "horizon_days": config.value.horizon_days,
              "as_of": str(day), "spend_model": note or "gamma_gamma"}
    metrics = {**{f"bgnbd_{k}": v for k, v in asdict(bgnbd).items()},
               **({f"gamma_gamma_{k}": v for k, v in asdict(gg).items()} if gg is not None else {})}
    return log_evaluation(settings, config.model.experiment, f"customer-value-{run_id}", params, metrics)


# ---------------------------------------------------------------- gold.next_best_action

def choose_actions(lake: Lakehouse, conf: ProjectConfig | Settings, run_id: str,
                   touchpoints: DataFrame | None = None) -> dict[str, int]:
    """gold.next_best_action from the scores, the value and the profile's consent; rows per action."""
    from cdp.ml.actions import next_best_action

    conf = ProjectConfig.of(conf)
    config = conf.churn
    tp = _touchpoints(lake, touchpoints)
    complaints = (event_signals(tp, conf.journeys, conf.profile, config).where("is_complaint")
                  .groupBy("customer_id").agg(F.max("event_ts").alias("last_complaint_at")))
    actions = next_best_action(lake.read(CHURN_SCORES), lake.read(CUSTOMER_VALUE), lake.read(CUSTOMER_PROFILE),
                               complaints, config.actions, config.scoring)
    publish(lake, conf, {NEXT_BEST_ACTION: actions}, run_id, "next_best_action")
    return {r.action: r[1] for r in lake.read(NEXT_BEST_ACTION).groupBy("action").count().collect()}
