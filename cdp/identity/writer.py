"""Identity resolution, the writer: read the identity records and the previous map, run `resolve`, check the
output against the gold contracts, write the gold identity tables, and summarise the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.config import Settings
from cdp.identity.config import IdentityConfig, load_identity_config
from cdp.identity.probabilistic import MatchingRun
from cdp.identity.resolve import IdentityTables, Progress, resolve, stopwatch
from cdp.io import Lakehouse
from cdp.quality.gold import gate_tables
from cdp.spark import cut_lineage
from cdp.tables import (
    IDENTITY_CAPPED_VALUES,
    IDENTITY_CHANGES,
    IDENTITY_CLUSTER_SIZES,
    IDENTITY_JUNK_VALUES,
    IDENTITY_LINKS,
    IDENTITY_MAP,
    IDENTITY_RECORDS,
    IDENTITY_REVIEW,
)


@dataclass(frozen=True)
class IdentityResult:
    run_id: str
    records: int
    anonymous: int = 0
    matching: MatchingRun | None = None
    edges_by_rule: dict[str, int] = field(default_factory=dict)   # links kept in gold.identity_links, by rule
    seconds: dict[str, float] = field(default_factory=dict)       # wall time per phase
    clusters: int = 0
    singletons: int = 0
    largest_cluster: int = 0
    junk_values: int = 0
    capped_values: int = 0
    review_clusters: int = 0
    new_customers: int = 0
    merges: int = 0
    splits: int = 0

    @property
    def edges(self) -> int:
        return sum(self.edges_by_rule.values())


def previous_map(lake: Lakehouse) -> DataFrame | None:
    if not lake.exists(IDENTITY_MAP):
        return None
    # materialised: this run overwrites the table the plan would otherwise still read
    return lake.read(IDENTITY_MAP).select("record_id", "customer_id", "minted_from").transform(cut_lineage)


def write_identity_tables(lake: Lakehouse, tables: IdentityTables, run_id: str, replace_changes: bool = True) -> None:
    """Write every gold identity table. The changes go first, then the map: a run that crashed in between
    recomputes the same changes and replaces them; a re-run of a run whose map is already written
    (replace_changes=False) keeps the changes it recorded."""
    if replace_changes:
        if lake.exists(IDENTITY_CHANGES):
            lake.replace_where(tables.changes, IDENTITY_CHANGES, f"run_id = '{run_id}'")
        else:
            lake.overwrite(tables.changes, IDENTITY_CHANGES)
    for table, frame in tables.frames().items():
        if table != IDENTITY_CHANGES:
            lake.overwrite(frame, table)


def resolve_identities(lake: Lakehouse, settings: Settings, run_id: str, now: datetime,
                       config: IdentityConfig | None = None, previous: DataFrame | None | bool = True,
                       progress: Progress | None = None) -> IdentityResult:
    """Resolve every identity record into customers and (over)write the gold identity tables.

    previous=True seeds ids with the current gold.identity_map (stable ids); None/False = full rebuild.
    """
    config = config or load_identity_config(settings)
    prev = previous_map(lake) if previous is True else (previous or None)
    prev_run = lake.read(IDENTITY_MAP).select(F.max("run_id")).first()[0] if previous is True and prev is not None else None
    records = lake.read(IDENTITY_RECORDS)
    tables = resolve(records, prev, config, settings, run_id=run_id, now=now, progress=progress)
    lap = stopwatch(tables.seconds, progress)
    # checkpointed, not cached: some frames read the identity tables written below
    checked = tables.with_frames(gate_tables(lake, settings, tables.frames(), run_id, "identity", cut_lineage))
    write_identity_tables(lake, checked, run_id, replace_changes=prev is None or prev_run != run_id)
    lap("gold tables and their contracts")
    return summarize(lake, run_id, records.count(), matching=tables.matching, seconds=tables.seconds)


def summarize(lake: Lakehouse, run_id: str, records: int, matching: MatchingRun | None = None,
              seconds: dict[str, float] | None = None) -> IdentityResult:
    """The run's figures, read back from the tables it wrote (small aggregates)."""
    sizes = [(r["size"], r["clusters"]) for r in lake.read(IDENTITY_CLUSTER_SIZES).collect()]  # one row per size
    by_rule = {r["rule"]: r["n"] for r in lake.read(IDENTITY_LINKS).groupBy("rule").agg(F.count("*").alias("n")).collect()}
    kinds = {r["change_type"]: r["n"] for r in lake.read(IDENTITY_CHANGES).where(F.col("run_id") == run_id)
             .groupBy("change_type").agg(F.count("*").alias("n")).collect()}
    mapped = sum(s * n for s, n in sizes)
    return IdentityResult(
        run_id=run_id, records=records, anonymous=records - mapped, matching=matching, seconds=seconds or {},
        edges_by_rule=dict(sorted(by_rule.items())),
        clusters=sum(n for _, n in sizes), singletons=sum(n for s, n in sizes if s == 1),
        largest_cluster=max((s for s, _ in sizes), default=0),
        junk_values=lake.row_count(IDENTITY_JUNK_VALUES), capped_values=lake.row_count(IDENTITY_CAPPED_VALUES),
        review_clusters=lake.row_count(IDENTITY_REVIEW),
        new_customers=kinds.get("new", 0), merges=kinds.get("merge", 0), splits=kinds.get("split", 0),
    )


def explain_customer(lake: Lakehouse, customer_id: str) -> tuple[DataFrame, DataFrame]:
    """A customer's identity records (with their standardised identifiers) and the links that joined them."""
    members = lake.read(IDENTITY_MAP).where(F.col("customer_id") == customer_id).select("record_id", "customer_id")
    records = members.join(lake.read(IDENTITY_RECORDS), "record_id").orderBy("observed_at", "record_id")
    links = lake.read(IDENTITY_LINKS).where(F.col("customer_id") == customer_id).orderBy("rule", "src", "dst")
    return records, links
