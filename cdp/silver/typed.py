"""Bronze strings -> declared types. A value that is present but does not parse is a defect
(`bad_type:<col>` / `bad_timestamp:<col>`), so the row goes to quarantine instead of turning into a null."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.frames import first_failing
from cdp.ingest.sources import SourceSpec
from cdp.silver.standardize import parse_bool, to_amount, to_date_safe, to_utc_timestamp


def typed_value(spec: SourceSpec, name: str) -> Column:
    kind, raw = spec.column_type(name), F.col(name)
    if kind == "string":
        return raw
    if kind in ("int", "long"):
        return F.trim(raw).try_cast(kind)
    if kind == "double":
        return to_amount(raw)
    if kind == "boolean":
        return parse_bool(raw)
    if kind == "date":
        return to_date_safe(raw)
    ts = to_utc_timestamp(raw, spec.timestamp_format, spec.timezone)
    return ts if spec.timestamp_format == "iso" else F.coalesce(ts, to_utc_timestamp(raw, "iso", spec.timezone))


def type_defect(spec: SourceSpec) -> Column:
    """The first declared column whose non-blank value does not parse as its type, or null."""
    checks = []
    for c in spec.columns:
        if c.type == "string":
            continue
        label = "bad_timestamp" if c.type in ("date", "timestamp") else "bad_type"
        present = F.col(c.name).isNotNull() & (F.trim(F.col(c.name)) != "")
        checks.append((present & typed_value(spec, c.name).isNull(), f"{label}:{c.name}"))
    return first_failing(checks)


def with_types(spec: SourceSpec):
    """Add `_type_defect`, then replace every declared column by its typed value (blank strings become null)."""
    def step(df: DataFrame) -> DataFrame:
        df = df.withColumn("_type_defect", type_defect(spec))
        typed = [
            (typed_value(spec, c.name) if c.type != "string" else F.when(F.trim(F.col(c.name)) != "", F.col(c.name))).alias(c.name)
            for c in spec.columns
        ]
        keep = [c for c in df.columns if c not in spec.column_names]
        return df.select(*typed, *keep)
    return step
