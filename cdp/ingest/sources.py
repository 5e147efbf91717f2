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


INTERACTION_FIELDS = ("amount", "currency", "product_id", "category", "campaign_id", "csat", "nps", "stars",
                      "text", "reason", "outcome")
IDENTITY_FIELDS = ("email", "phone", "first_name", "last_name", "full_name", "birth_date", "gender", "street",
                   "postal_code", "city", "region", "country", "loyalty_id", "device_id", "cookie_id",
                   "facebook_handle", "twitter_handle", "instagram_handle", "review_handle")


class ValueSpec(Strict):
    """A value taken from a column (optionally recoded through `map`) or a constant `value`."""

    column: str | None = None
    value: str | None = None
    map: dict[str, str] = Field(default_factory=dict)
    default: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> ValueSpec:
        if (self.column is None) == (self.value is None):
            raise ValueError("give exactly one of 'column' or 'value'")
        return self


class InteractionMapping(Strict):
    event_time: str
    event_type: ValueSpec
    fields: dict[Literal[INTERACTION_FIELDS], str] = Field(default_factory=dict)  # type: ignore[valid-type]


class HandleByPlatform(Strict):
    handle: str
    platform: str


class IdentityMapping(Strict):
    observed_at: str
    fields: dict[Literal[IDENTITY_FIELDS], str] = Field(default_factory=dict)  # type: ignore[valid-type]
    handle_by_platform: HandleByPlatform | None = None
    # event streams: rows carrying the same identifiers are one identity record (first/last seen kept)
    distinct: bool = False


class SilverMapping(Strict):
    interaction: InteractionMapping | None = None
    identity: IdentityMapping | None = None
    detail: Literal["orders", "order_lines"] | None = None


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
    silver: SilverMapping = SilverMapping()

    @model_validator(mode="after")
    def _key_is_a_column(self) -> SourceSpec:
        names = [c.name for c in self.columns]
        if self.record_key not in names:
            raise ValueError(f"record_key '{self.record_key}' is not one of the columns")
        if len(set(names)) != len(names):
            raise ValueError("a column is declared twice")
        unknown = sorted(set(self.mapped_columns) - set(names))
        if unknown:
            raise ValueError(f"silver mapping names undeclared column(s): {', '.join(unknown)}")
        return self

    @property
    def mapped_columns(self) -> list[str]:
        m, cols = self.silver, []
        if m.interaction:
            cols += [m.interaction.event_time, *m.interaction.fields.values()]
            cols += [m.interaction.event_type.column] if m.interaction.event_type.column else []
        if m.identity:
            cols += [m.identity.observed_at, *m.identity.fields.values()]
            if m.identity.handle_by_platform:
                cols += [m.identity.handle_by_platform.handle, m.identity.handle_by_platform.platform]
        return cols

    def column_type(self, name: str) -> str:
        return next(c.type for c in self.columns if c.name == name)

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
