"""Churn, value and retention-action settings: conf/churn.yaml, validated at load (one line naming the file and the
key on a mistake, before Spark starts). The feature catalogue lives here too, as plain names and the words an
account manager reads for each (cdp.ml.features holds their Spark definitions; a test keeps the two in step)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from cdp.config.journeys import _check_names
from cdp.config.loading import KeyProblem, Strict, load_yaml_model
from cdp.config.settings import Settings, conf_file
from cdp.config.sources import known_event_types

HINT = "see the comments in the project's conf/churn.yaml"

# name -> what a high value of it means, in an account manager's words (a driver of a customer's churn risk).
# %s is the customer's value, formatted by cdp.ml.scoring.
FEATURES: dict[str, str] = {
    "days_since_last_purchase": "%s days since the last purchase",
    "days_since_last_activity": "%s days since the customer was last active",
    "purchases_total": "%s purchases in all",
    "spend_total": "%s spent in all",
    "average_order_value": "%s per purchase on average",
    "purchases_30d": "%s purchases in the last 30 days",
    "purchases_prior_60d": "%s purchases in the 60 days before that",
    "purchase_trend": "purchase rate of the last 30 days against the 60 before: %s",
    "spend_30d": "%s spent in the last 30 days",
    "spend_trend": "spend of the last 30 days against the 60 before: %s",
    "activity_30d": "%s visits, opens and purchases in the last 30 days",
    "activity_trend": "activity of the last 30 days against the 60 before: %s",
    "activity_90d": "%s visits, opens and purchases in the last 90 days",
    "activity_365d": "%s visits, opens and purchases in the last year",
    "activity_overdue": "%s activities missed since the last one, at the customer's own pace",
    "purchases_365d": "%s purchases in the last year",
    "activity_gap_days_mean": "usually %s days between visits, opens and purchases",
    "activity_gap_overdue_ratio": "quiet for %s times the customer's usual gap between activities",
    "inter_purchase_days_mean": "usually %s days between purchases",
    "purchase_overdue_ratio": "next purchase overdue: %s times the customer's usual gap",
    "purchases_per_30d": "%s purchases a month since the first one",
    "quiet_share": "no purchase for %s of the time since becoming a customer",
    "abandoned_carts_90d": "%s carts or checkouts without a purchase in 90 days",
    "failed_payments_90d": "%s failed payments in 90 days",
    "cancelled_orders_90d": "%s cancelled orders in 90 days",
    "complaints_total": "%s complaints in all",
    "complaints_90d": "%s complaints in the last 90 days",
    "days_since_last_complaint": "last complaint %s days ago",
    "csat_latest": "latest CSAT score %s",
    "csat_change": "CSAT change over the last 90 days: %s",
    "nps_latest": "latest NPS %s",
    "nps_change": "NPS change over the last 90 days: %s",
    "emails_received_90d": "%s emails received in 90 days",
    "email_open_rate_90d": "opened %s of the emails of the last 90 days",
    "email_engagement_change": "email open rate change against the 90 days before: %s",
    "email_unsubscribed": "unsubscribed from email (%s)",
    "channels_used_90d": "%s channels used in 90 days",
    "contact_center_calls_90d": "%s calls to the contact center in 90 days",
    "tenure_days": "customer for %s days",
    "sentiment_score": "sentiment of the customer's own words %s",
    "age": "%s years old",
    "gender": "gender %s",
    "country": "country %s",
}
CATEGORICAL = ("gender", "country")


class ChurnDefinition(Strict):
    activity_event_types: list[str] = Field(min_length=1, description="What an active customer does")
    # who is scored, and so who the training snapshots hold: `active` customers (activity in the active_days
    # before the date) or `all` who ever bought or were active before it (a shop of occasional buyers)
    population: Literal["active", "all"] = "active"
    active_days: int = Field(180, ge=1, le=3650, description="population active: activity in these days before")
    horizon_days: int = Field(90, ge=1, le=730, description="Churned: no activity in these days after the snapshot")


class Snapshots(Strict):
    count: int = Field(6, ge=2, le=60, description="Training snapshot dates (at most, with min_count)")
    # a history too short for `count` snapshots gets as many as fit, down to this many (unset: exactly count)
    min_count: int | None = Field(None, ge=2, le=60)
    every_days: int = Field(30, ge=1, le=365, description="Days between snapshot dates")
    held_out: int = Field(2, ge=1, description="The latest snapshots held out for validation (time-based split)")
    # the first snapshot comes this many days after the first activity at least (population active: at least
    # active_days, so its whole active window lies in the history)
    min_history_days: int = Field(90, ge=0, le=3650)
    # the latest snapshot: horizon_days before the end of the history (so its label is observed), or this date
    last: date | None = None

    @property
    def fewest(self) -> int:
        return self.min_count or self.count

    @model_validator(mode="after")
    def _some_left_to_train(self) -> Snapshots:
        if self.min_count is not None and self.min_count > self.count:
            raise KeyProblem("min_count", f"min_count ({self.min_count}) must not exceed count ({self.count})")
        if self.held_out >= self.fewest:
            which = "min_count" if self.min_count is not None else "count"
            raise KeyProblem("held_out", f"held_out ({self.held_out}) must be less than {which} ({self.fewest}): "
                             "the earlier snapshots are the training data")
        return self


class Grid(Strict):
    """Hyperparameter values to search; every combination is tried (keep it small: each is a model fit)."""
    max_depth: list[int] = Field(default_factory=lambda: [4], min_length=1)
    max_iter: list[int] = Field(default_factory=lambda: [40], min_length=1)
    step_size: list[float] = Field(default_factory=lambda: [0.1], min_length=1)
    reg_param: list[float] = Field(default_factory=lambda: [0.01], min_length=1)
    elastic_net_param: list[float] = Field(default_factory=lambda: [0.0], min_length=1)


Learner = Literal["gbt", "logistic_regression"]


class Model(Strict):
    name: str = Field("cdp_churn", pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", description="Registered model name")
    experiment: str = Field("cdp-churn", min_length=1)
    # the learners fitted and compared on the held-out snapshots (the better one on compare_on is registered)
    learners: list[Learner] = Field(default_factory=lambda: ["gbt", "logistic_regression"], min_length=1)
    class_weights: bool = True
    # the grid's candidates are fitted on this share of the training customers and compared on the rest
    train_ratio: float = Field(0.75, gt=0.1, lt=1.0)
    compare_on: Literal["pr_auc", "roc_auc"] = "pr_auc"
    # a challenger must beat the champion by this much: the same model retrained on the same data stays challenger
    min_improvement: float = Field(0.001, ge=0, lt=1)
    seed: int = 7
    grid: Grid = Grid()

    @field_validator("learners")
    @classmethod
    def _each_once(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a learner is listed twice")
        return value


class RiskBand(Strict):
    name: str = Field(min_length=1)
    min_probability: float = Field(ge=0, le=1)


class Scoring(Strict):
    as_of: Literal["latest_event", "run_time"] | date = "latest_event"
    # the zone whose calendar days as_of and the snapshot dates are: a date D means the end of D there
    timezone: str = "UTC"
    # first band whose min_probability the churn probability reaches, highest first
    risk_bands: list[RiskBand] = Field(min_length=1)
    top_drivers: int = Field(3, ge=1, le=10)
    driver_candidates: int = Field(8, ge=1, le=35, description="Most important features tried as drivers")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}'; use an IANA name such as UTC or Europe/Madrid") from None
        return value

    @field_validator("risk_bands")
    @classmethod
    def _descending_to_zero(cls, value: list[RiskBand]) -> list[RiskBand]:
        mins = [b.min_probability for b in value]
        if any(b >= a for a, b in zip(mins, mins[1:], strict=False)) or mins[-1] != 0:
            raise ValueError("risk bands must go from the highest min_probability down to a last band with "
                             "min_probability 0, so every probability has a band")
        if len({b.name for b in value}) != len(value):
            raise ValueError("a risk band name is used twice")
        return value

    @property
    def band_names(self) -> list[str]:
        return [b.name for b in self.risk_bands]


class Value(Strict):
    time_unit_days: float = Field(7.0, gt=0, description="BG/NBD's time unit (7: weeks, as in Fader et al.)")
    horizon_days: int = Field(365, ge=1, le=3650, description="Expected purchases and value over these days")


Channel = Literal["email", "phone", "sms", "post"]


class When(Strict):
    risk_bands: list[str] | None = None
    min_expected_value: float | None = None
    max_expected_value: float | None = None
    complaint_within_days: int | None = Field(None, ge=1)
    preferred_channels: list[str] | None = None


class Action(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    channel: Channel
    description: str = Field(min_length=1)
    when: When = When()


class Actions(Strict):
    # channel -> the gold.customer_profile boolean column saying the customer agreed to be contacted there
    consent_columns: dict[Channel, str] = Field(min_length=1)
    rules: list[Action] = Field(min_length=1, description="First match wins")
    no_action: str = Field("no_consented_channel", pattern=r"^[a-z][a-z0-9_]*$")

    @model_validator(mode="after")
    def _channels_have_consent(self) -> Actions:
        for i, rule in enumerate(self.rules):
            if rule.channel not in self.consent_columns:
                raise KeyProblem(f"rules.{i}.channel", f"channel '{rule.channel}' has no consent column; add it "
                                 f"under consent_columns (known: {', '.join(self.consent_columns)}): an action is "
                                 "never taken on a channel without the customer's consent")
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise KeyProblem("rules", "an action name is used twice")
        return self


class ChurnConfig(Strict):
    definition: ChurnDefinition
    snapshots: Snapshots = Snapshots()
    features: list[str] = Field(min_length=1)
    model: Model = Model()
    scoring: Scoring
    value: Value = Value()
    actions: Actions

    @field_validator("features")
    @classmethod
    def _known_features(cls, value: list[str]) -> list[str]:
        import difflib

        for name in value:
            if name not in FEATURES:
                close = difflib.get_close_matches(name, FEATURES, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise ValueError(f"unknown feature '{name}'; {hint}features are: {', '.join(FEATURES)}")
        if len(set(value)) != len(value):
            raise ValueError("a feature is listed twice")
        return value

    @model_validator(mode="after")
    def _rules_name_bands(self) -> ChurnConfig:
        bands = self.scoring.band_names
        for i, rule in enumerate(self.actions.rules):
            for band in rule.when.risk_bands or []:
                if band not in bands:
                    raise KeyProblem(f"actions.rules.{i}.when.risk_bands",
                                     f"unknown risk band '{band}'; bands are: {', '.join(bands)} (scoring.risk_bands)")
        return self


def churn_config_path(settings: Settings) -> Path:
    return conf_file("churn.yaml", settings)


def load_churn_config(settings: Settings | None = None, path: str | Path | None = None) -> ChurnConfig:
    """<conf_dir>/churn.yaml (or `path`) validated; one-line ConfigError on any mistake."""
    config = load_yaml_model(conf_file("churn.yaml", settings, path), ChurnConfig, HINT)
    assert isinstance(config, ChurnConfig)
    return config


def checked_churn_config(settings: Settings, sources, as_written: ChurnConfig | None = None) -> ChurnConfig:
    """conf/churn.yaml loaded (or `as_written`, loaded already) and its activity event types checked against what
    the sources produce (a typo would otherwise match nothing and call every customer churned); what `cdp check`
    calls before Spark starts."""
    config = as_written if as_written is not None else load_churn_config(settings)
    known = known_event_types(sources)
    if known is not None:
        _check_names([("definition.activity_event_types", config.definition.activity_event_types)], known,
                     churn_config_path(settings), "event type", "no source produces")
    return config
