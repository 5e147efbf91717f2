"""Source definitions: one YAML file per source in conf/sources/ (format, location, schema). No code."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from cdp.config import Settings, Strict, load_yaml_model
from cdp.errors import ConfigError

ColumnType = Literal["string", "int", "long", "double", "boolean", "date", "timestamp"]


class ColumnSpec(Strict):
    name: str
    type: ColumnType = "string"
    required: bool = False
    description: str = ""


class SourceSpec(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="bronze table name")
    channel: str
    description: str = ""
    format: Literal["csv", "json", "parquet"]
    path: str = Field(description="glob relative to paths.landing")
    options: dict[str, str] = Field(default_factory=dict)
    record_key: str
    timestamp_format: str = "iso"
    timezone: str = "UTC"
    columns: list[ColumnSpec]

    @model_validator(mode="after")
    def _key_is_a_column(self) -> SourceSpec:
        names = [c.name for c in self.columns]
        if self.record_key not in names:
            raise ValueError(f"record_key '{self.record_key}' is not one of the columns")
        if len(set(names)) != len(names):
            raise ValueError("a column is declared twice")
        return self

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required or c.name == self.record_key]


def load_sources(settings: Settings, only: list[str] | None = None) -> list[SourceSpec]:
    """All source specs in ingest.sources_dir, sorted by name; `only` restricts to those names."""
    folder = Path(settings.path(settings.ingest.sources_dir))
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ConfigError(f"{folder}: no source definitions (*.yaml) found; set ingest.sources_dir or add one")
    specs = [load_yaml_model(f, SourceSpec) for f in files]
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{folder}: source name(s) defined twice: {', '.join(dupes)}")
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ConfigError(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(names)}")
        specs = [s for s in specs if s.name in only]
    return specs
