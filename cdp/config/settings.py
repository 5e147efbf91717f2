"""Typed configuration: conf/base.yaml + conf/<env>.yaml + --set overrides, validated at load."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from cdp.config.checks import phone_region_problem
from cdp.config.loading import SETTINGS_HINT, Strict, _describe, _read_yaml
from cdp.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONF_DIR = PROJECT_ROOT / "conf"


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


def conf_file(name: str, settings: Settings | None = None, path: str | Path | None = None) -> Path:
    """Where a step's own configuration file is: `path` when given, else <settings.conf_dir>/<name>."""
    if path is not None:
        return Path(path)
    if settings is None:
        raise ValueError("give settings or path")
    return Path(settings.conf_dir) / name
