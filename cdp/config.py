"""Typed configuration: conf/base.yaml + conf/<env>.yaml + --set overrides, validated at load."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
    ivy_dir: str = ".ivy2"
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


class IngestSettings(Strict):
    sources_dir: str = "conf/sources"
    max_value_chars: int = Field(10_000, ge=1, description="Longer values are quarantined as oversized")
    parallelism: int = Field(4, ge=1, le=64, description="Sources landed at the same time")


class SilverSettings(Strict):
    default_phone_region: str = Field("ES", pattern=r"^[A-Z]{2}$", description="Region for numbers without a country code")
    email_gmail_rules: bool = True      # gmail: dots in the local part do not matter
    email_strip_plus_tags: bool = True  # name+tag@domain -> name@domain


class GraphSettings(Strict):
    # auto: GraphFrames when its JAR is on the classpath, else the built-in DataFrame algorithm.
    engine: Literal["auto", "graphframes", "dataframe"] = "auto"
    algorithm: Literal["two_phase", "randomized_contraction", "graphx"] = "two_phase"
    max_iterations: int = Field(50, ge=1)
    # Built-in engine: how each round's labels are cut from their lineage. local = executor storage (fast);
    # reliable = the checkpoint directory (survives a lost executor: use it on shared clusters).
    checkpoint: Literal["local", "reliable"] = "local"


class MlflowSettings(Strict):
    tracking_uri: str = Field("mlflow.db", description="a URI, or a SQLite file path relative to the project")
    artifact_root: str = "mlruns"


class Settings(Strict):
    env: str
    conf_dir: str
    paths: Paths
    spark: SparkSettings = SparkSettings()
    synth: SynthSettings = SynthSettings()
    ingest: IngestSettings = IngestSettings()
    silver: SilverSettings = SilverSettings()
    graph: GraphSettings = GraphSettings()
    mlflow: MlflowSettings = MlflowSettings()

    def path(self, value: str) -> str:
        """Resolve a configured path: URIs (s3a://, abfss://, dbfs:/) as they are, relative ones from the
        folder that holds conf/ (the project root), so a job behaves the same from any working directory."""
        if "://" in value or value.startswith("dbfs:"):
            return value
        p = Path(value)
        return str(p if p.is_absolute() else (Path(self.conf_dir).resolve().parent / p).resolve())


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found (choose an env that has conf/<env>.yaml, or create it)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
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
        raise ConfigError(_describe(exc, origin, str(env_file))) from None


def _describe(exc: ValidationError, origin: dict[str, str], default_source: str) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    source = origin.get(key, default_source)
    if err["type"] == "extra_forbidden":
        return f"{source}: unknown key '{key}' (check the spelling; see conf/base.yaml for the keys that exist)"
    if err["type"] == "missing":
        return f"{source}: required key '{key}' is missing"
    return f"{source}: key '{key}' has a bad value {err.get('input')!r}: {err['msg']}"


def load_yaml_model(path: Path, model: type[BaseModel]) -> BaseModel:
    """Validate one YAML file against a model, with the same one-line errors as the main config."""
    data = _read_yaml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, {}, str(path))) from None
