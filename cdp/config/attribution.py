"""Attribution settings: conf/attribution.yaml (lookback window, models, time-decay half-life, Markov states,
which touchpoints earn credit). Validated at load: one line naming the file and the key on a mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from cdp.config.loading import Strict, load_yaml_model
from cdp.config.settings import Settings, conf_file

HINT = "see the comments in the project's conf/attribution.yaml"

Model = Literal["first_touch", "last_touch", "linear", "time_decay", "markov"]
MODELS: tuple[str, ...] = Model.__args__
MarkovState = Literal["channel", "channel:event_type"]


class AttributionConfig(Strict):
    lookback_days: int = Field(30, ge=1, le=3660, description="A touchpoint earns credit for a purchase at most "
                                                                 "this many days after it")
    stop_at_previous_purchase: bool = Field(True, description="A purchase's touchpoints start after the "
                                                              "customer's previous purchase")
    excluded_event_types: list[str] = Field(default_factory=list, description="Event types that never earn credit")
    models: list[Model] = Field(default_factory=lambda: list(MODELS), min_length=1)
    time_decay_half_life_days: float = Field(7.0, gt=0, description="A touchpoint this many days older than "
                                                                     "another earns half its weight")
    markov_state: MarkovState = Field("channel", description="What a state of the Markov chain is")

    @field_validator("models")
    @classmethod
    def _each_model_once(cls, models: list[str]) -> list[str]:
        twice = sorted({m for m in models if models.count(m) > 1})
        if twice:
            raise ValueError(f"lists {', '.join(repr(m) for m in twice)} twice; keep each model once")
        return models


def attribution_config_path(settings: Settings) -> Path:
    return conf_file("attribution.yaml", settings)


def load_attribution_config(settings: Settings | None = None, path: str | Path | None = None) -> AttributionConfig:
    """<conf_dir>/attribution.yaml (or `path`) validated; one-line ConfigError on any mistake."""
    path = conf_file("attribution.yaml", settings, path)
    config = load_yaml_model(Path(path), AttributionConfig, HINT)
    assert isinstance(config, AttributionConfig)
    return config
