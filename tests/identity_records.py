"""Hand-built identity records for the identity tests: a row of silver.identity_records in a few words."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cdp.config.identity_attributes import IDENTITY_ATTRIBUTES
from cdp.tables import LINEAGE

NOW = datetime(2025, 7, 1, tzinfo=timezone.utc)
# a run after the generator's default window (2024-01-01..2025-12-31): silver's future check keeps every generated row
AFTER_GENERATED = datetime(2026, 1, 2, tzinfo=timezone.utc)
T0 = datetime(2025, 1, 1)
TYPES = {"observed_at": "timestamp", "birth_date": "date", "_ingested_at": "timestamp",
         "custom_attributes": "map<string,string>"}
COLUMNS = ["record_id", "source", "channel", "source_record_key", "observed_at", *IDENTITY_ATTRIBUTES,
           "custom_attributes", *LINEAGE]
SCHEMA = ", ".join(f"`{c}` {TYPES.get(c, 'string')}" for c in COLUMNS)


def rec(record_id: str, i: int = 0, **values) -> dict:
    """One identity record observed i days after T0; unspecified columns are null."""
    source = values.pop("source", "crm_customers")
    row = {c: None for c in COLUMNS}
    row.update(record_id=record_id, source=source, channel=source.split("_")[0], source_record_key=record_id,
               observed_at=T0 + timedelta(days=i), **values)
    return row


def frame(spark, rows):
    return spark.createDataFrame([tuple(r[c] for c in COLUMNS) for r in rows], SCHEMA)


def variant(config, junk=None, **update):
    """The identity config with some settings changed."""
    if junk:
        update["junk"] = config.junk.model_copy(update=junk)
    return config.model_copy(update=update)


def edge_set(edges) -> set[tuple[str, str, str]]:
    return {(r.src, r.dst, r.rule) for r in edges.collect()}


def labels(components) -> list[tuple[str, str]]:
    """(record_id, component) pairs, sorted: the same labels, not just the same partition."""
    return sorted((r.record_id, r.component) for r in components.select("record_id", "component").collect())


def groups(components) -> list[list[str]]:
    out: dict[str, set[str]] = {}
    for r in components.collect():
        out.setdefault(r.component, set()).add(r.record_id)
    return sorted(sorted(g) for g in out.values())
