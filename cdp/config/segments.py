"""Segments as configuration: conf/segments.yaml names each segment and its Spark SQL condition over
gold.customer_profile's columns. Validated at load (one line naming the file and the key); cdp.profile.segments
then has Spark analyse the conditions against the profile's columns before any customer is assigned."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from cdp.config.loading import KeyProblem, Strict, load_yaml_model
from cdp.config.settings import Settings, conf_file

HINT = "see the comments in the project's conf/segments.yaml"


class Segment(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Lowercase snake_case, unique in the file")
    description: str = Field(min_length=1, description="What the segment is for; shown to BI users")
    condition: str = Field(description="Spark SQL boolean expression over gold.customer_profile's columns")

    @field_validator("condition")
    @classmethod
    def _not_blank(cls, condition: str) -> str:
        if not condition.strip():
            raise ValueError("a segment needs a condition: a Spark SQL boolean expression over the profile's columns")
        return condition.strip()


class SegmentsConfig(Strict):
    segments: list[Segment] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> SegmentsConfig:
        seen: set[str] = set()
        for i, segment in enumerate(self.segments):
            if segment.name in seen:
                raise KeyProblem(f"segments.{i}.name", f"segment name '{segment.name}' is used twice; names must be unique")
            seen.add(segment.name)
        return self


def segments_path(settings: Settings) -> Path:
    return conf_file("segments.yaml", settings)


def load_segments(settings: Settings | None = None, path: str | Path | None = None) -> SegmentsConfig:
    """<conf_dir>/segments.yaml (or `path`) validated; one-line ConfigError on any mistake. The conditions are
    checked against the profile by cdp.profile.segments.check_segment_conditions."""
    path = conf_file("segments.yaml", settings, path)
    return load_yaml_model(Path(path), SegmentsConfig, HINT)
