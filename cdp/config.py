"""Typed configuration: conf/base.yaml + conf/<env>.yaml + --set overrides, validated at load."""

from __future__ import annotations

import difflib
import os
import types
import typing
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cdp.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONF_DIR = PROJECT_ROOT / "conf"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paths(Strict):
    landing: str = Field(description="Where source exports arrive (one folder per channel)")
    ground_truth: str = Field(description="Generator answers; read only by evaluations and tests")
    lakehouse: str = Field(description="Root of all Delta tables: <lakehouse>/<layer>/<table>")
    checkpoints: str = Field(description="Spark checkpoint directory (GraphFrames connected components)")
    reports: str = Field(description="Rendered reports (data docs, evaluation)")


class SparkSettings(Strict):
    master: str = "local[*]"
    app_name: str = "cdp"
    # auto: fetch Delta (and the optional packages found in the Ivy cache) through spark.jars.packages;
    # provided: the cluster or spark-submit --packages supplies the JARs, so we add none.
    packages: Literal["auto", "provided"] = "auto"
    ivy_dir: str = ".ivy2"   # a relative one is the installation's (the project folder), not the data folder's
    optional_packages: list[str] = Field(default_factory=list)
    log_level: Literal["ERROR", "WARN", "INFO", "DEBUG"] = "WARN"
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)


class SynthSettings(Strict):
    customers: int = Field(5000, ge=1)
    seed: int = 7
    start: date = date(2024, 1, 1)
    end: date = date(2025, 12, 31)
    chunk_size: int = Field(10_000, ge=100)
    workers: int = Field(1, ge=1)
    # share of extra hostile records (cdp.synth.hostile: rows the quarantine must stop); 0 = none
    hostile_share: float = Field(0.0, ge=0.0, le=0.05)


class IngestSettings(Strict):
    sources_dir: str = Field("sources", description="Folder of source definitions, relative to the conf folder")
    max_value_chars: int = Field(10_000, ge=1, description="Longer values are quarantined as oversized")
    parallelism: int = Field(4, ge=1, le=64, description="Sources landed at the same time")


class SilverSettings(Strict):
    default_phone_region: str = Field("ES", pattern=r"^[A-Z]{2}$", description="Region for numbers without a country code")
    email_gmail_rules: bool = True      # gmail: dots in the local part do not matter
    email_strip_plus_tags: bool = True  # name+tag@domain -> name@domain
    # The plausible time window of an event (conf/sources/<source>.yaml history_starts overrides the start): a time
    # outside it is a defect of its value (implausible_time:<column>), like one that does not parse
    history_starts: date = date(1970, 1, 1)
    future_tolerance_hours: int = Field(24, ge=0, description="An event time this far ahead of the run is still plausible")
    # A source whose batch has more than this share of its rows quarantined fails the silver step (nothing of that
    # batch goes forward): a wholesale rejection is a configuration to fix, not data to drop
    max_quarantine_share: float = Field(0.5, gt=0, le=1)

    @field_validator("default_phone_region")
    @classmethod
    def _known_phone_region(cls, region: str) -> str:
        from cdp.ingest.validation import phone_region_problem  # pure Python; no Spark

        problem = phone_region_problem(region)
        if problem:
            raise ValueError(problem)
        return region


class GraphSettings(Strict):
    # auto: GraphFrames when its JAR is on the classpath, else the built-in DataFrame algorithm.
    engine: Literal["auto", "graphframes", "dataframe"] = "auto"
    # GraphFrames' connectedComponents algorithm; the built-in engine runs two_phase (large-star / small-star) for
    # two_phase and randomized_contraction, and its earlier min-label propagation for graphx
    algorithm: Literal["two_phase", "randomized_contraction", "graphx"] = "two_phase"
    max_iterations: int = Field(50, ge=1)
    # Built-in engine: how each round's labels are cut from their lineage. local = executor storage (fast);
    # reliable = the checkpoint directory (survives a lost executor: use it on shared clusters).
    checkpoint: Literal["local", "reliable"] = "local"


class IdentityRunSettings(Strict):
    # auto: incremental when the last identity run can be built on (same identity configuration, its records
    # version still readable), else full; full: re-resolve every record; incremental: fail (one line) if it cannot
    mode: Literal["auto", "full", "incremental"] = "auto"
    # train the probabilistic model again (a full run); otherwise the saved one is reused until the probabilistic
    # configuration changes
    retrain: bool = False


class MlflowSettings(Strict):
    tracking_uri: str = Field("mlflow.db", description="a URI, or a SQLite file path relative to the project")
    artifact_root: str = "mlruns"


class CatalogSettings(Strict):
    # None: tables are read by path only. A name (schema, or catalog.schema on Unity Catalog): the publish step
    # registers every existing table of `layers` there as an external Delta table, e.g. cdp_gold.customer_profile.
    database: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
    layers: list[Literal["silver", "gold", "audit", "quarantine"]] = Field(default_factory=lambda: ["gold"])


class LockSettings(Strict):
    """The lakehouse lock (cdp.lock): one writer at a time."""
    lease_seconds: int = Field(120, ge=10, description="A holder whose heartbeat is older than this is gone")
    heartbeat_seconds: int = Field(15, ge=1, description="How often the holder renews its lease")
    wait_seconds: int = Field(0, ge=0, description="How long a second run waits for the lock (0: stop at once)")


class ErasureSettings(Strict):
    """GDPR erasure (cdp forget, cdp.privacy): how long the files of versions before the erasure are kept."""
    # 0: the erased rows leave every file and the log at once; time travel to before the erasure ends, and a reader
    # or writer still working on an older version fails. > 0: they stay readable that long (a later VACUUM ends it)
    vacuum_retention_hours: float = Field(0, ge=0, description="VACUUM retention after an erasure, hours")


class PrivacySettings(Strict):
    erasure: ErasureSettings = ErasureSettings()


class Settings(Strict):
    env: str
    conf_dir: str
    paths: Paths
    spark: SparkSettings = SparkSettings()
    synth: SynthSettings = SynthSettings()
    ingest: IngestSettings = IngestSettings()
    silver: SilverSettings = SilverSettings()
    graph: GraphSettings = GraphSettings()
    identity: IdentityRunSettings = IdentityRunSettings()
    mlflow: MlflowSettings = MlflowSettings()
    catalog: CatalogSettings = CatalogSettings()
    lock: LockSettings = LockSettings()
    privacy: PrivacySettings = PrivacySettings()

    def path(self, value: str) -> str:
        """Resolve a configured path: URIs (s3a://, abfss://, dbfs:/) as they are, relative ones from the
        folder that holds conf/ (the project root), so a job behaves the same from any working directory."""
        if "://" in value or value.startswith("dbfs:"):
            return value
        p = Path(value)
        return str(p if p.is_absolute() else (Path(self.conf_dir).resolve().parent / p).resolve())

    def ivy_path(self) -> str:
        """The JAR cache: a relative spark.ivy_dir is the project's (where `make setup` filled it), whichever
        configuration folder is used, so a company's own conf folder elsewhere needs no second download."""
        value = self.spark.ivy_dir
        if "://" in value or Path(value).is_absolute():
            return value
        return str((PROJECT_ROOT / value).resolve())

    def conf_path(self, value: str) -> str:
        """A path of the configuration itself (source definitions): relative ones from the conf folder."""
        p = Path(value)
        return str(p if p.is_absolute() else (Path(self.conf_dir) / p).resolve())


# ---------------------------------------------------------------- one-line error messages

SETTINGS_HINT = "see conf/base.yaml for the keys that exist"
_SHORT_LIMIT = 60  # characters of a value quoted in an error message
# Human words for the field patterns pydantic would otherwise quote as a regular expression.
_PATTERN_HINTS = {
    r"^[a-z][a-z0-9_]*$": "use lowercase letters, digits and '_', starting with a letter",
    r"^[A-Z]{2}$": "use a two-letter upper-case ISO-3166 code such as ES",
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$": "give a schema name such as cdp_gold (or catalog.schema)",
}


def short(value: object, limit: int = _SHORT_LIMIT) -> str:
    """repr of a scalar, on one line and at most `limit` characters (long values end in '...')."""
    text = repr(value)
    if len(text) <= limit:
        return text
    quote = text[-1] if text[:1] in "'\"" else ""
    return text[:limit - 3 - len(quote)] + "..." + quote


class KeyProblem(ValueError):
    """Raised by a model validator to blame one key (relative to the model) instead of the model as a whole."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML would silently keep the last)."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: construct_mapping reports it
                continue
            if repeated:
                raise ConfigError(f"line {key_node.start_mark.line + 1}: key {short(key)} is given twice in the same "
                                  "mapping; keep one")
        return super().construct_mapping(node, deep)


# The configuration files a step reads, and what each configures (a missing one is named with this).
CONF_FILES = {
    "identity.yaml": "identity resolution: match rules, custom attributes, guards, probabilistic matching",
    "journeys.yaml": "the customer journeys: sessions, stages, incomplete purchases, funnels, paths",
    "attribution.yaml": "purchase attribution: the lookback window and models",
    "profile.yaml": "the Customer 360 profile: age bands, RFM segments, sentiment, the history's tracked columns",
    "segments.yaml": "the customer segments (conditions over the profile)",
    "churn.yaml": "churn prediction, customer value and retention actions",
    "pii.yaml": "the BI copies of the gold tables with PII hashed or masked",
}


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        if path.name in CONF_FILES:
            raise ConfigError(f"{path}: not found; this file configures {CONF_FILES[path.name]}: copy the project's "
                              f"conf/{path.name} there and adapt it")
        if path.name == "base.yaml":
            raise ConfigError(f"{path}: not found; every configuration folder needs base.yaml (copy the project's "
                              "conf/ folder, or give --conf-dir the folder that holds it)")
        raise ConfigError(f"{path}: configuration file not found (choose an env that has conf/<env>.yaml, or create it)")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}  # a SafeLoader
    except ConfigError as exc:
        raise ConfigError(f"{path} {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise ConfigError(f"{path}{where}: not valid YAML ({problem}); check the indentation and quoting there") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level (key: value lines), not {type(data).__name__}")
    return data


def _merge(base: dict, overlay: dict, origin: dict[str, str], source: str, prefix: str = "") -> dict:
    """Deep-merge overlay into base, remembering which file set each dotted key (for error messages)."""
    out = dict(base)
    for key, value in overlay.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out[key] = _merge(out.get(key) if isinstance(out.get(key), dict) else {}, value, origin, source, dotted + ".")
        else:
            out[key] = value
            origin[dotted] = source
        origin.setdefault(dotted, source)
    return out


def parse_override(item: str) -> dict[str, Any]:
    """'spark.master=local[2]' -> {'spark': {'master': 'local[2]'}}; the value is read as YAML (numbers, booleans)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set synth.customers=1000")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    parts = key.strip().split(".")
    # spark.conf keys contain dots themselves: spark.conf.spark.sql.shuffle.partitions=4
    if parts[:2] == ["spark", "conf"] and len(parts) > 2:
        return {"spark": {"conf": {".".join(parts[2:]): str(value)}}}
    nested: dict[str, Any] = value
    for part in reversed(parts):
        nested = {part: nested}
    return nested


def load_settings(env: str | None = None, overrides: list[str] | None = None, conf_dir: str | Path | None = None) -> Settings:
    """Load base.yaml, the env overlay and --set overrides; one clear ConfigError on any mistake."""
    env = env or os.environ.get("CDP_ENV") or "local"
    cdir = Path(conf_dir or os.environ.get("CDP_CONF_DIR") or DEFAULT_CONF_DIR)
    origin: dict[str, str] = {}
    base_file, env_file = cdir / "base.yaml", cdir / f"{env}.yaml"
    merged = _merge({}, _read_yaml(base_file), origin, str(base_file))
    if env != "base":
        merged = _merge(merged, _read_yaml(env_file), origin, str(env_file))
    for item in overrides or []:
        merged = _merge(merged, parse_override(item), origin, f"--set {item}")
    merged.update(env=env, conf_dir=str(cdir))
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin, str(env_file), Settings, SETTINGS_HINT)) from None


_TYPE_TAGS = {"str", "int", "float", "bool", "none", "list", "dict"}


def _key_parts(loc: tuple) -> list:
    """The user's path in a pydantic error location: drop union-member and validator tags such as 'str',
    'function-after[...]' and the '[key]' marker of a bad dictionary key."""
    return [p for p in loc if not (isinstance(p, str) and (p in _TYPE_TAGS or "[" in p))]


def _strip_optional(tp):
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        return members[0] if len(members) == 1 else tp
    return tp


def _keys_at(model: type[BaseModel] | None, parts: list) -> list[str]:
    """Field names of the (sub)model found by walking `parts` from `model`; [] when not a model."""
    tp = model
    for part in parts:
        tp = _strip_optional(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return []
            tp = field.annotation
        elif typing.get_origin(tp) in (list, tuple, dict):
            tp = typing.get_args(tp)[-1]
        else:
            return []
    tp = _strip_optional(tp)
    if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
        return []
    internal = {"env", "conf_dir"} if tp.__name__ == "Settings" else set()  # set by load_settings, not by users
    return [k for k in tp.model_fields if k not in internal]


# Words YAML authors use for allowed literal values (column types mostly).
_SYNONYMS = {"float": "double", "integer": "int", "bigint": "long", "str": "string", "text": "string",
             "bool": "boolean", "datetime": "timestamp"}


def _suggest(word: str, choices: list[str]) -> str:
    if _SYNONYMS.get(word.lower()) in choices:
        return f"did you mean {_SYNONYMS[word.lower()]!r}? "
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {match[0]!r}? " if match else ""


def _value_hint(err: dict) -> str:
    """What to do about a bad scalar value, for the error types a YAML author meets."""
    kind, value = err["type"], err.get("input")
    if kind == "string_type" and isinstance(value, (bool, int, float)):
        return "quote it in the YAML, e.g. \"true\" or \"+10:00\" (YAML reads some unquoted values as numbers or booleans)"
    if kind == "string_pattern_mismatch":
        return _PATTERN_HINTS.get(str(err.get("ctx", {}).get("pattern")), "")
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "give a whole number"
    if kind in ("bool_parsing", "bool_type"):
        return "use true or false"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "give a mapping (indented key: value lines)"
    if kind == "list_type":
        return "give a list (lines starting with '- ')"
    if kind == "literal_error" and isinstance(value, str):
        expected = [e.strip(" '") for e in str(err.get("ctx", {}).get("expected", "")).replace(" or ", ", ").split(",")]
        return _suggest(value, expected).strip()
    return ""


def _describe(exc: ValidationError, origin: dict[str, str], default_source: str,
              model: type[BaseModel] | None = None, hint: str | None = SETTINGS_HINT) -> str:
    """One line for the first validation error: the file that set the key, the dotted key, what is wrong and
    what to do. Never prints a mapping or a list, and shortens long values."""
    errors = exc.errors()
    # a misspelt key shows up as "unknown key" plus "required key missing": the first says more
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    parts = _key_parts(err["loc"])
    problem = err.get("ctx", {}).get("error")
    if isinstance(problem, KeyProblem):
        parts = [*parts, *problem.key.split(".")]
    key = ".".join(str(p) for p in parts)
    source = origin.get(key, default_source)
    tail = f"; {hint}" if hint else ""
    if err["type"] == "extra_forbidden":
        allowed = _keys_at(model, parts[:-1])
        where = f"under '{'.'.join(str(p) for p in parts[:-1])}'" if len(parts) > 1 else "at the top level"
        known = f"keys allowed {where}: {', '.join(allowed)}" if allowed else "check the spelling"
        return f"{source}: unknown key '{key}'; {_suggest(str(parts[-1]), allowed)}{known}{tail}"
    if err["type"] == "missing":
        return f"{source}: required key '{key}' is missing; add it{tail}"
    msg = " ".join(err["msg"].removeprefix("Value error, ").split())  # one line, whatever a validator wrote
    if "[key]" in err["loc"]:
        return f"{source}: key '{key}' is not allowed here: {msg}; {_value_hint(err)}".rstrip("; ")
    value = err.get("input")
    if not isinstance(value, (dict, list, tuple, set)):
        what = f"has a bad value {short(value)}: {msg}"
    else:  # never print a whole mapping or list
        what = msg if isinstance(problem, ValueError) else f"is not valid: {msg}"
    fix = "" if isinstance(problem, ValueError) else _value_hint(err)
    where = f"key '{key}' " if key else ""
    return f"{source}: {where}{what}{'; ' + fix if fix else ''}"


def load_yaml_model(path: Path, model: type[BaseModel], hint: str | None = None) -> BaseModel:
    """Validate one YAML file against a model, with the same one-line errors as the main config; `hint` ends
    the message about an unknown or missing key (where to look up the keys this kind of file takes)."""
    data = _read_yaml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, {}, str(path), model, hint)) from None


def conf_file(name: str, settings: Settings | None = None, path: str | Path | None = None) -> Path:
    """Where a step's own configuration file is: `path` when given, else <settings.conf_dir>/<name>."""
    if path is not None:
        return Path(path)
    if settings is None:
        raise ValueError("give settings or path")
    return Path(settings.conf_dir) / name
