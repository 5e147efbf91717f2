"""Journey settings: conf/journeys.yaml (what a purchase is; sessions, stages, abandonment, funnels, paths are
added by the journey step). Validated at load: one line naming the file and the key on a mistake."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pyspark.sql import Column
from pyspark.sql import functions as F

from cdp.config import Settings, Strict, load_yaml_model

HINT = "see the comments in the project's conf/journeys.yaml"


class Purchases(Strict):
    """A purchase is a touchpoint of one of these event types with an amount above zero (an order, a store ticket);
    the web `purchase` event is a funnel step, not a second purchase."""

    event_types: list[str] = Field(min_length=1, description="Event types that are purchases when they carry an amount")


class JourneyConfig(Strict):
    purchases: Purchases


def is_purchase(config: JourneyConfig) -> Column:
    """True for a touchpoint that is a purchase (an event type of purchases.event_types with amount > 0)."""
    return F.col("event_type").isin(config.purchases.event_types) & F.coalesce(F.col("amount") > 0, F.lit(False))


def journey_config_path(settings: Settings) -> Path:
    return Path(settings.conf_dir) / "journeys.yaml"


def load_journey_config(settings: Settings | None = None, path: str | Path | None = None) -> JourneyConfig:
    """<conf_dir>/journeys.yaml (or `path`) validated; one-line ConfigError on any mistake."""
    if path is None:
        if settings is None:
            raise ValueError("give settings or path")
        path = journey_config_path(settings)
    return load_yaml_model(Path(path), JourneyConfig, HINT)
