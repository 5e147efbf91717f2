"""Journey settings: conf/journeys.yaml (what a purchase is, sessions, stages, abandonment, funnels, paths).
Validated at load: one line naming the file and the key on a mistake. Needs no Spark (`cdp check` runs it first)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from cdp.config.checks import did_you_mean, likely_typo, short
from cdp.config.loading import KeyProblem, Strict, load_yaml_model
from cdp.config.settings import Settings, conf_file
from cdp.config.sources import known_event_types
from cdp.errors import ConfigError

HINT = "see the comments in the project's conf/journeys.yaml"
STAGES = ("awareness", "consideration", "purchase", "service", "loyalty", "churn_risk")
# The stage of a touchpoint whose event type no stage lists: new event types never fail a run.
OTHER_STAGE = "other"


def _distinct(values: list[str], what: str) -> list[str]:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"names {what} {', '.join(repr(v) for v in repeated)} twice; keep one")
    if any(not v.strip() for v in values):
        raise ValueError(f"names an empty {what}; remove it")
    return values


class Purchases(Strict):
    """A purchase is a touchpoint of a purchase event type carrying at least `min_amount` (an order, a store ticket).
    The sources declare theirs (silver.interaction.purchases in conf/sources/<source>.yaml); `event_types` adds
    others (of a source that passes its event types through). The web `purchase` event is a funnel step, not a
    second purchase."""

    event_types: list[str] = Field(default_factory=list, description=(
        "Event types that are purchases when they carry an amount, besides those the sources declare"))
    min_amount: float = Field(0.01, ge=0, description=(
        "A purchase carries at least this amount: a free order (a replacement, a 100% voucher) is not a purchase; "
        "0 counts it"))


class Sessions(Strict):
    inactivity_gap_minutes: int = Field(30, ge=1, le=24 * 60, description=(
        "A digital touchpoint more than this many minutes after the customer's previous digital one starts a new session"))
    digital_channels: list[str] = Field(
        default_factory=lambda: ["clickstream", "email", "social", "review_site"],
        description="Channels whose touchpoints are sessionized by the gap (one session may span them); "
                    "a touchpoint of any other channel is a session of its own")

    @field_validator("digital_channels")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return _distinct(value, "channel")


class StageOverride(Strict):
    """Touchpoints of these event types whose reason is one of `reasons` belong to `stage`, whatever their type's
    stage (a complaint call is a churn-risk signal, not service)."""

    event_types: list[str] = Field(min_length=1, description="Event types the override applies to")
    reasons: list[str] = Field(min_length=1, description="Values of the touchpoint's reason column")
    stage: Literal[STAGES]  # type: ignore[valid-type]


def _listed(*event_types: str):
    return lambda: list(event_types)


class Stages(Strict):
    """Journey stage -> the event types in it. An event type is in one stage at most; one in none is 'other'.
    The defaults are the project's conf/journeys.yaml (its comments say why)."""

    awareness: list[str] = Field(default_factory=_listed("email_sent", "email_open", "social_post"),
                                 description="The customer hears of us")
    consideration: list[str] = Field(default_factory=_listed("email_click", "page_view", "product_view", "login",
                                                             "add_to_cart", "checkout_start"),
                                     description="The customer looks at what we sell")
    purchase: list[str] = Field(default_factory=_listed("purchase", "order_placed", "store_visit", "payment_failed"),
                                description="The customer buys, or tries to")
    service: list[str] = Field(default_factory=_listed("call_inbound", "call_outbound", "order_returned",
                                                       "survey_csat", "survey_nps", "review", "suggestion",
                                                       "profile_updated"),
                               description="Contact after the sale: support, feedback, account")
    loyalty: list[str] = Field(default_factory=_listed("loyalty_enrolled"),
                               description="The customer commits to the brand")
    churn_risk: list[str] = Field(default_factory=_listed("order_cancelled", "email_unsubscribe", "email_bounce"),
                                  description="Signals that the customer may leave")
    reason_overrides: list[StageOverride] = Field(
        default_factory=lambda: [StageOverride(event_types=["call_inbound", "call_outbound"],
                                               reasons=["complaint", "cancellation"], stage="churn_risk"),
                                 StageOverride(event_types=["call_outbound"], reasons=["telesales"],
                                               stage="consideration")],
        description="Checked in order before the event-type mapping; the first that matches gives the stage")

    @model_validator(mode="after")
    def _one_stage_per_event_type(self) -> Stages:
        seen: dict[str, str] = {}
        for stage in STAGES:
            for event_type in getattr(self, stage):
                if event_type in seen:
                    raise KeyProblem(stage, f"names event type {event_type!r}, which stage {seen[event_type]!r} "
                                            "already lists; an event type belongs to one stage")
                seen[event_type] = stage
        return self


class Abandonment(Strict):
    window_hours: float = Field(24, gt=0, description=(
        "A cart is abandoned when no completing event of the customer follows its last cart event within this time"))
    # empty: the company has no carts (an order history alone), so no cart is ever abandoned
    cart_event_types: list[str] = Field(default_factory=lambda: ["add_to_cart", "checkout_start"],
                                        description="Events that fill a cart or start a checkout")
    completing_event_types: list[str] = Field(default_factory=lambda: ["purchase", "order_placed"], min_length=1,
                                              description="Events that complete a cart (web purchase, an order)")
    failed_payment_event_types: list[str] = Field(default_factory=lambda: ["payment_failed"],
                                                  description="Orders whose payment failed")
    cancelled_order_event_types: list[str] = Field(default_factory=lambda: ["order_cancelled"],
                                                   description="Orders the customer cancelled")

    @model_validator(mode="after")
    def _disjoint(self) -> Abandonment:
        both = sorted(set(self.cart_event_types) & set(self.completing_event_types))
        if both:
            raise KeyProblem("completing_event_types", f"names {', '.join(repr(b) for b in both)}, which "
                             "cart_event_types also lists; a cart event cannot complete itself")
        return self


class Funnel(Strict):
    steps: list[str] = Field(default_factory=lambda: ["product_view", "add_to_cart", "checkout_start", "purchase"],
                             min_length=1, description="Event types a session must reach in this order")
    period: Literal["day", "week", "month"] = Field("month", description="Sessions are counted by the period they start in")

    @field_validator("steps")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return _distinct(value, "step")


class Paths(Strict):
    length: int = Field(5, ge=1, le=20, description="Touchpoints in a path: the last ones before the outcome")
    top_n: int = Field(20, ge=1, description="Most frequent paths kept per outcome")
    silent_days: int = Field(90, ge=1, description=(
        "A customer whose last touchpoint is more than this many days before the end of the data went silent"))
    event_type_channels: list[str] = Field(default_factory=lambda: ["clickstream", "ecommerce"], description=(
        "Channels whose path elements are channel:event_type; any other channel's element is the channel alone"))
    collapse_repeats: bool = Field(True, description="Consecutive equal elements count once (purchases never collapse)")

    @field_validator("event_type_channels")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return _distinct(value, "channel")


class JourneyConfig(Strict):
    purchases: Purchases = Purchases()
    sessions: Sessions = Sessions()
    stages: Stages = Stages()
    abandonment: Abandonment = Abandonment()
    funnel: Funnel = Funnel()
    paths: Paths = Paths()


def purchase_event_types(config: JourneyConfig, sources) -> list[str]:
    """purchases.event_types and every event type a source declares a purchase (silver.interaction.purchases)."""
    declared = [t for spec in sources if spec.silver.interaction for t in spec.silver.interaction.purchases]
    return sorted({*config.purchases.event_types, *declared})


def with_source_purchases(config: JourneyConfig, sources) -> JourneyConfig:
    """The config with purchases.event_types completed by what the sources declare."""
    purchases = config.purchases.model_copy(update={"event_types": purchase_event_types(config, sources)})
    return config.model_copy(update={"purchases": purchases})


def journey_config_path(settings: Settings) -> Path:
    return conf_file("journeys.yaml", settings)


def load_journey_config(settings: Settings | None = None, path: str | Path | None = None) -> JourneyConfig:
    """<conf_dir>/journeys.yaml (or `path`) validated; one-line ConfigError on any mistake."""
    path = conf_file("journeys.yaml", settings, path)
    return load_yaml_model(Path(path), JourneyConfig, HINT)


# ---------------------------------------------------------------- event types the sources can produce

def named_event_types(config: JourneyConfig) -> Iterator[tuple[str, list[str]]]:
    """(dotted key, event types) for every list of event types in the config, in the order of the file."""
    yield "purchases.event_types", config.purchases.event_types
    for stage in STAGES:
        yield f"stages.{stage}", getattr(config.stages, stage)
    for i, override in enumerate(config.stages.reason_overrides):
        yield f"stages.reason_overrides.{i}.event_types", override.event_types
    a = config.abandonment
    for key in ("cart_event_types", "completing_event_types", "failed_payment_event_types",
                "cancelled_order_event_types"):
        yield f"abandonment.{key}", getattr(a, key)
    yield "funnel.steps", config.funnel.steps


def check_event_types(config: JourneyConfig, known: set[str] | None, path: str | Path) -> None:
    """ConfigError naming `path` and the key when the config names an event type no source produces but one of
    them is a few letters away (a typo would otherwise silently match nothing); nothing to check when `known` is
    None (a source passes values through). A name far from every known one is a type this company does not have:
    it matches nothing, harmlessly (the defaults name the demo's channels: a shop with only tills needs no edit)."""
    if known is not None:
        _check_names(named_event_types(config), known, path, "event type", "no source produces")


def unproduced(named, known: set[str] | None) -> list[str]:
    """The names of `named` ((key, names) pairs) that no source produces: they match nothing (`cdp check` says so)."""
    if known is None:
        return []
    return sorted({n for _, names in named for n in names if n not in known})


def known_channels(sources) -> set[str]:
    """The channels of the source specs that feed silver.interactions."""
    return {spec.channel for spec in sources if spec.silver.interaction is not None}


def named_channels(config: JourneyConfig) -> list[tuple[str, list[str]]]:
    return [("sessions.digital_channels", config.sessions.digital_channels),
            ("paths.event_type_channels", config.paths.event_type_channels)]


def check_channels(config: JourneyConfig, known: set[str], path: str | Path) -> None:
    """ConfigError naming `path` and the key when sessions or paths name a channel no source has but one is a few
    letters away (see check_event_types)."""
    _check_names(named_channels(config), known, path, "channel", "no source has")


def _check_names(named, known: set[str], path: str | Path, what: str, why: str) -> None:
    for key, names in named:
        for name in names:
            if name not in known and likely_typo(name, known):
                hint = did_you_mean(name, sorted(known))
                raise ConfigError(f"{path}: key '{key}' names {what} {short(name)}, which {why}; "
                                  f"{hint + ' ' if hint else ''}known: {', '.join(sorted(known))}")


def checked_journey_config(settings: Settings, sources, as_written: JourneyConfig | None = None) -> JourneyConfig:
    """conf/journeys.yaml loaded (or `as_written`, loaded already), its event types and channels checked against
    `sources` (load_sources(settings)) and its purchase event types completed by what they declare; what
    `cdp check` calls before Spark starts."""
    loaded = as_written if as_written is not None else load_journey_config(settings)
    config, path = with_source_purchases(loaded, sources), journey_config_path(settings)
    check_event_types(config, known_event_types(sources), path)
    check_channels(config, known_channels(sources), path)
    return config
