"""Source definitions: one YAML file per source in conf/sources/ (format, location, schema). No code.

Everything that can be checked without data is checked when the file loads (load_sources): the keys and
their types by the models, and the rest by SourceSpec.problems(); each mistake is one ConfigError line
"<file>: key '<dotted.key>' <what is wrong>; <what to do>".
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr

from cdp.config.checks import (
    did_you_mean,
    landing_path_problem,
    reader_option_problem,
    short,
    timestamp_format_problem,
    timezone_problem,
)
from cdp.config.identity import identity_config_path, load_identity_config
from cdp.config.loading import Strict, load_yaml_model
from cdp.config.pii_categories import PiiCategory
from cdp.config.settings import Settings
from cdp.errors import ConfigError

ColumnType = Literal["string", "int", "long", "double", "boolean", "date", "timestamp"]
SOURCE_HINT = "see README.md, section 'Sources: bring your own', or conf/sources/crm_customers.yaml"


OnBadValue = Literal["quarantine_row", "null_and_flag"]


class ColumnSpec(Strict):
    name: str
    type: ColumnType = "string"
    required: bool = False
    description: str = ""
    pii: PiiCategory | None = None   # the personal data the column holds (cdp.config.pii_categories)
    # a present value that does not parse (its type; an email or phone that does not standardise): the row goes
    # to quarantine, or the value becomes NULL and the row goes on flagged; unset = bad_value_action's default
    on_bad_value: OnBadValue | None = None

    def bad_value_action(self, record_key: str) -> OnBadValue:
        """on_bad_value, or its default: quarantine_row for the record key and required columns, else null_and_flag."""
        if self.on_bad_value is not None:
            return self.on_bad_value
        return "quarantine_row" if self.required or self.name == record_key else "null_and_flag"


INTERACTION_FIELDS = ("amount", "currency", "product_id", "category", "campaign_id", "csat", "nps", "stars",
                      "text", "reason", "outcome")
IDENTITY_FIELDS = ("email", "phone", "first_name", "last_name", "full_name", "birth_date", "gender", "street",
                   "postal_code", "city", "region", "country", "loyalty_id", "device_id", "cookie_id",
                   "facebook_handle", "twitter_handle", "instagram_handle", "review_handle")
# Column types a mapped field may have: silver casts these (ANSI on), so one bad string would fail the run;
# declared with these types, a bad value is quarantined instead.
_NUMBER = ("int", "long", "double")
FIELD_TYPES = {
    "amount": _NUMBER, "csat": _NUMBER, "nps": _NUMBER, "stars": _NUMBER, "birth_date": ("date", "timestamp"),
}
TIME_TYPES = ("timestamp", "date")
# The columns silver.orders / silver.order_lines take by name (cdp.silver.canonical.ORDER_COLUMNS / ORDER_LINE_COLUMNS).
DETAIL_COLUMNS = {
    "orders": ("order_id", "order_ts", "status", "payment_status", "payment_method", "currency", "total_amount",
               "customer_email", "customer_phone", "loyalty_id", "device_id", "ship_city", "ship_postal_code",
               "ship_country"),
    "order_lines": ("order_line_id", "order_id", "line_number", "product_id", "product_name", "category",
                    "quantity", "unit_price", "currency"),
}
# Names the pipeline adds next to the declared columns (landing, bronze lineage, silver checks).
RESERVED_COLUMNS = frozenset({"_rescued_data", "_corrupt_record", "_landing_defect", "_raw", "_source_file",
                              "_ingested_at", "_run_id", "_record_hash", "_defect", "_type_defect", "_defects", "_dq_reason", "_rank",
                              "_fingerprint", "_metadata"})
# Delta rejects these in column names; '.' would be read as a struct field.
_BAD_NAME_CHARS = " ,;{}()\n\t=.`"


class ValueSpec(Strict):
    """A value taken from a column (optionally recoded through `map`) or a constant `value`."""

    column: str | None = None
    value: str | None = None
    map: dict[str, str] = Field(default_factory=dict)
    default: str | None = None


class InteractionMapping(Strict):
    event_time: str
    event_type: ValueSpec
    fields: dict[Literal[INTERACTION_FIELDS], str] = Field(default_factory=dict)  # type: ignore[valid-type]
    # the event types of this source that are purchases when they carry an amount (journeys.yaml purchases.min_amount)
    purchases: list[str] = Field(default_factory=list)


class HandleByPlatform(Strict):
    handle: str
    platform: str


class IdentityMapping(Strict):
    # when the source saw these identifiers; none for an export without a time column: when it was landed
    observed_at: str | None = None
    # a built-in identity field (IDENTITY_FIELDS) or a custom attribute of conf/identity.yaml -> the column
    fields: dict[str, str] = Field(default_factory=dict)
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
    # how far back the source's history goes: an event time before this day is implausible (quarantined as
    # implausible_time:<column>); unset: silver.history_starts (1970-01-01)
    history_starts: date | None = None
    columns: list[ColumnSpec]
    silver: SilverMapping = SilverMapping()
    # the custom identity attributes (conf/identity.yaml) this source may map, set by load_sources
    _custom_attributes: dict = PrivateAttr(default_factory=dict)
    # the file the source was read from (what an error tells the user to change), set by load_source
    _path: str | None = PrivateAttr(default=None)

    @property
    def path_of_definition(self) -> str:
        """The source's YAML file, or a description of where sources are declared when it was built in code."""
        return self._path or f"the definition of source {self.name}"

    def column_index(self, name: str) -> int | None:
        return next((i for i, c in enumerate(self.columns) if c.name == name), None)

    @property
    def custom_attributes(self) -> dict:
        """name -> CustomAttribute for the custom attributes the source maps."""
        fields = self.silver.identity.fields if self.silver.identity else {}
        return {n: a for n, a in self._custom_attributes.items() if n in fields}

    def mapped_column_keys(self) -> list[tuple[str, str]]:
        """(dotted key in the file, column) for every column the silver mapping names."""
        m, out = self.silver, []
        if m.interaction:
            out.append(("silver.interaction.event_time", m.interaction.event_time))
            if m.interaction.event_type.column is not None:
                out.append(("silver.interaction.event_type.column", m.interaction.event_type.column))
            out += [(f"silver.interaction.fields.{f}", c) for f, c in m.interaction.fields.items()]
        if m.identity:
            if m.identity.observed_at is not None:
                out.append(("silver.identity.observed_at", m.identity.observed_at))
            out += [(f"silver.identity.fields.{f}", c) for f, c in m.identity.fields.items()]
            if m.identity.handle_by_platform:
                hp = m.identity.handle_by_platform
                out += [("silver.identity.handle_by_platform.handle", hp.handle),
                        ("silver.identity.handle_by_platform.platform", hp.platform)]
        return out

    @property
    def event_time_columns(self) -> list[str]:
        """The columns silver reads as when something happened (the interaction's event time, when the identifiers
        were observed, an order's time): their values must fall in the source's plausible time window."""
        m, out = self.silver, []
        if m.interaction:
            out.append(m.interaction.event_time)
        if m.identity and m.identity.observed_at:
            out.append(m.identity.observed_at)
        if m.detail == "orders":
            out.append("order_ts")
        declared = {c.name: c.type for c in self.columns}
        return [c for c in dict.fromkeys(out) if declared.get(c) in TIME_TYPES]

    @property
    def mapped_columns(self) -> list[str]:
        return [c for _, c in self.mapped_column_keys()]

    def column_type(self, name: str) -> str:
        return next(c.type for c in self.columns if c.name == name)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required or c.name == self.record_key]

    # ------------------------------------------------------------ checks that span keys

    def problems(self) -> list[tuple[str, str]]:
        """(dotted key, "<what is wrong>; <what to do>") for every mistake the models alone do not catch,
        in the order of the file."""
        out: list[tuple[str, str]] = []
        if not self.channel.strip():
            out.append(("channel", "is empty; give the channel the source belongs to, e.g. store"))
        problem = landing_path_problem(self.path)
        if problem:
            out.append(("path", problem))
        for key, value in self.options.items():
            problem = reader_option_problem(self.format, key, value)
            if problem:
                out.append((f"options.{key}", problem))
        out += self._column_problems()
        problem = timestamp_format_problem(self.timestamp_format)
        if problem:
            out.append(("timestamp_format", problem))
        problem = timezone_problem(self.timezone)
        if problem:
            out.append(("timezone", problem))
        out += self._mapping_problems()
        return out

    def _column_problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        first: dict[str, int] = {}
        if not self.columns:
            out.append(("columns", "is empty; declare the source's columns, at least the record_key one"))
        for i, c in enumerate(self.columns):
            bad = sorted({ch for ch in c.name if ch in _BAD_NAME_CHARS})
            if not c.name.strip():
                out.append((f"columns.{i}.name", "is empty; give the column's name as the export spells it"))
            elif bad:
                out.append((f"columns.{i}.name", f"{short(c.name)} contains {', '.join(repr(ch) for ch in bad)}, which "
                            "Delta column names cannot hold; rename the column in the export"))
            elif c.name in RESERVED_COLUMNS:
                out.append((f"columns.{i}.name", f"{short(c.name)} is a name the pipeline adds itself; "
                            "rename the column in the export"))
            if c.name in first:
                out.append((f"columns.{i}.name", f"declares column {short(c.name)} a second time "
                            f"(first at columns.{first[c.name]}); remove or rename one"))
            if c.on_bad_value == "null_and_flag" and (c.required or c.name == self.record_key):
                what = "the record key" if c.name == self.record_key else "a required column"
                out.append((f"columns.{i}.on_bad_value", f"is null_and_flag on {short(c.name)}, {what}, which a row "
                            "cannot go on without; remove the key (its default is quarantine_row) or set quarantine_row"))
            first.setdefault(c.name, i)
        if self.columns and self.record_key not in first:
            out.append(("record_key", f"names column {short(self.record_key)}, which is not declared under columns; "
                        f"{self._closest(self.record_key)}"))
        return out

    def _closest(self, name: str, types: tuple[str, ...] | None = None) -> str:
        """What to do about an undeclared column: the closest declared one (of a type that fits), or the list."""
        names = [c.name for c in self.columns if types is None or c.type in types]
        hint = did_you_mean(name, names)
        listed = f"use one of: {short(', '.join(names), 120)[1:-1]}" if names else "declare one of a type that fits"
        return hint or f"declare it under columns or {listed}"

    def _mapping_problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        declared = set(self.column_names)
        if self.silver.identity:
            out += self._identity_field_problems(self.silver.identity)
        for key, col in self.mapped_column_keys():
            field = key.rsplit(".", 1)[-1]
            if not col.strip():
                out.append((key, "is empty; give the name of a declared column"))
            elif col not in declared:
                types = TIME_TYPES if field in ("event_time", "observed_at") else FIELD_TYPES.get(field)
                out.append((key, f"names column {short(col)}, which is not declared under columns; "
                            f"{self._closest(col, types)}"))
            elif field in ("event_time", "observed_at") and self.column_type(col) not in TIME_TYPES:
                out.append((key, f"names column {short(col)} of type {self.column_type(col)}; declare it type: timestamp "
                            "(or date) so it is parsed with timestamp_format and timezone"))
            elif field in FIELD_TYPES and self.column_type(col) not in FIELD_TYPES[field]:
                want = " or ".join(FIELD_TYPES[field])
                out.append((key, f"names column {short(col)} of type {self.column_type(col)}; declare it type: {want} "
                            "(a value that does not parse is then quarantined instead of failing the run)"))
        if self.silver.interaction:
            out += self._event_type_problems(self.silver.interaction.event_type)
            out += self._purchase_problems()
        detail = self.silver.detail
        if detail:
            missing = [c for c in DETAIL_COLUMNS[detail] if c not in declared]
            if missing:
                out.append(("silver.detail", f"{detail} needs column(s) {', '.join(missing)}, which are not declared; "
                            f"the export must carry them under these names ({', '.join(DETAIL_COLUMNS[detail])})"))
        return out

    def _identity_field_problems(self, m: IdentityMapping) -> list[tuple[str, str]]:
        known = (*IDENTITY_FIELDS, *self._custom_attributes)
        return [(f"silver.identity.fields.{f}", f"is not an identity field; {did_you_mean(f, known) or 'use one of: ' + ', '.join(known)}"
                 " (an attribute of your own is declared under custom_attributes in conf/identity.yaml)")
                for f in m.fields if f not in known]

    def _purchase_problems(self) -> list[tuple[str, str]]:
        """A purchase event type the source cannot produce (a closed set: a constant, or a map with a default)."""
        m, produced = self.silver.interaction, known_event_types([self])
        out: list[tuple[str, str]] = []
        for i, name in enumerate(m.purchases):
            if produced is not None and name not in produced:
                hint = did_you_mean(name, sorted(produced))
                out.append((f"silver.interaction.purchases.{i}", f"names event type {short(name)}, which this source "
                            f"does not produce; {hint + ' ' if hint else ''}it produces: {', '.join(sorted(produced))}"))
            if "amount" not in m.fields:
                out.append(("silver.interaction.purchases", "declares purchases, but no column is mapped to amount "
                            "(silver.interaction.fields.amount): a purchase is a touchpoint carrying an amount"))
                break
        return out

    @staticmethod
    def _event_type_problems(v: ValueSpec) -> list[tuple[str, str]]:
        key = "silver.interaction.event_type"
        example = "e.g. {value: store_purchase} or {column: status, map: {...}, default: other}"
        if (v.column is None) == (v.value is None):
            return [(key, f"gives {'both' if v.column is not None else 'neither'} 'column' and 'value'; "
                     f"give exactly one, {example}")]
        out: list[tuple[str, str]] = []
        if v.value is not None:
            if not v.value.strip():
                out.append((f"{key}.value", "is empty; give the event type every row gets, e.g. store_purchase"))
            for extra in ("map", "default"):
                if getattr(v, extra):
                    out.append((f"{key}.{extra}", "applies only with 'column'; remove it or take the type from a column"))
        for raw, target in v.map.items():
            if not raw.strip():
                out.append((f"{key}.map", "has an empty source value; remove it or give the value it recodes"))
            elif not target.strip():
                out.append((f"{key}.map.{raw}", "is empty; give the event type this value stands for"))
        if v.default is not None and not v.default.strip():
            out.append((f"{key}.default", "is empty; remove it (unmapped values are kept) or give an event type"))
        return out


def known_event_types(sources) -> set[str] | None:
    """Every event type the source specs can give silver.interactions, or None
    when one takes it from a column it does not fully recode (no map, or a map without a default: the set is open)."""
    known: set[str] = set()
    for spec in sources:
        mapping = spec.silver.interaction
        if mapping is None:
            continue
        event_type = mapping.event_type
        if event_type.value is not None:
            known.add(event_type.value)
        elif event_type.map and event_type.default is not None:
            known.update(event_type.map.values())
            known.add(event_type.default)
        else:  # unmapped values pass through as they are (cdp.silver.canonical.value_of)
            return None
    return known


def load_source(path: Path, custom_attributes: dict | None = None) -> SourceSpec:
    """One source definition, fully checked; a ConfigError of one line on the first mistake.
    custom_attributes: name -> CustomAttribute of conf/identity.yaml, which the identity mapping may name."""
    spec = load_yaml_model(path, SourceSpec, SOURCE_HINT)
    assert isinstance(spec, SourceSpec)
    spec._custom_attributes = dict(custom_attributes or {})
    spec._path = str(path)
    problems = spec.problems()
    if problems:
        key, message = problems[0]
        raise ConfigError(f"{path}: key '{key}' {message}")
    return spec


def declared_custom_attributes(settings: Settings) -> dict:
    """The custom identity attributes of <conf_dir>/identity.yaml (none when the file is absent)."""
    path = identity_config_path(settings)
    return load_identity_config(path=path).custom_attributes if path.is_file() else {}


def load_sources(settings: Settings, only: list[str] | None = None) -> list[SourceSpec]:
    """All source specs in ingest.sources_dir, sorted by name; `only` restricts to those names."""
    folder = Path(settings.conf_path(settings.ingest.sources_dir))
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ConfigError(f"{folder}: no source definitions (*.yaml) found; set ingest.sources_dir or add one")
    specs: list[SourceSpec] = []
    seen: dict[str, Path] = {}
    custom = declared_custom_attributes(settings)
    for f in files:
        spec = load_source(f, custom)
        if spec.name in seen:
            raise ConfigError(f"{f}: key 'name' {short(spec.name)} is already the name of {seen[spec.name]}; "
                              "give each source its own name")
        seen[spec.name] = f
        specs.append(spec)
    specs.sort(key=lambda s: s.name)
    names = [s.name for s in specs]
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ConfigError(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(names)}")
        specs = [s for s in specs if s.name in only]
    return specs
